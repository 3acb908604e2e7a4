//! Starting the transactional producers at boot, or refusing to start.

use std::sync::Arc;

use super::{INIT_TIMEOUT, TransactionalProducers};
use crate::app::App;
use crate::error::{Error, Result, error_chain};
use crate::routing::SubscriptionGroup;

/// The transactional producers for `groups`' transactional routes (none without such a
/// route), every one initialised: a predecessor with the same ids is fenced and its open
/// transactions aborted now. A broker without transactions (the embedded one) is refused here,
/// naming the routes and the setting.
pub(crate) fn boot(
    app: &App,
    groups: &[SubscriptionGroup],
) -> Result<Option<Arc<TransactionalProducers>>> {
    let routes: Vec<String> = groups
        .iter()
        .flat_map(|g| g.topics())
        .filter(|t| t.active && t.transactional)
        .map(|t| format!("{}/{}", t.consumer_group, t.name))
        .collect();
    if routes.is_empty() {
        return Ok(None);
    }
    let config = app.config();
    let base = config
        .transactional_id
        .as_deref()
        .expect("validated: transactional routes need a transactional_id");
    let pool = TransactionalProducers::new(
        base,
        config.concurrency,
        &app.producer_kafka_values(),
        app.monitor().clone(),
    );
    let routes = routes.join(", ");
    pool.init_all(INIT_TIMEOUT).map_err(|(id, e)| Error::Server {
        reason: format!(
            "the transactional route(s) {routes} need Kafka transactions, and the broker \
             refused to initialise them for transactional.id {id}: {}. The embedded broker \
             has no transactions: run transactional routes on Apache Kafka, or remove \
             `.transactional(true)` from {routes}",
            error_chain(&e)
        ),
        source: None,
    })?;
    tracing::info!(routes = %routes, producers = ?pool.ids(), "transactional producers ready");
    Ok(Some(Arc::new(pool)))
}
