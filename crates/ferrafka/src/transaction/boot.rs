//! Starting the transactional producers at boot, or refusing to start.

use std::sync::Arc;

use super::{INIT_TIMEOUT, TransactionalProducers};
use crate::app::App;
use crate::error::{Error, Result, error_chain};
use crate::routing::SubscriptionGroup;

/// The cluster id of `ferrafka-broker`'s embedded broker (its `CLUSTER_ID`).
const EMBEDDED_CLUSTER_ID: &str = "ferrafka-embedded";

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
    let refused = |why: String| Error::Server {
        reason: format!(
            "the transactional route(s) {routes} need Kafka transactions, and {why}. The \
             embedded broker has no transactions: run transactional routes on Apache Kafka, or \
             remove `.transactional(true)` from {routes}"
        ),
        source: None,
    };
    // The embedded broker (tansu) answers `init_transactions` but does not carry
    // transactions through (a pipeline on it never finished): known by its cluster id.
    if pool.cluster_id(INIT_TIMEOUT).as_deref() == Some(EMBEDDED_CLUSTER_ID) {
        return Err(refused("this is the embedded broker".into()));
    }
    pool.init_all(INIT_TIMEOUT).map_err(|(id, e)| {
        refused(format!(
            "the broker refused to initialise them for transactional.id {id}: {}",
            error_chain(&e)
        ))
    })?;
    tracing::info!(routes = %routes, producers = ?pool.ids(), "transactional producers ready");
    Ok(Some(Arc::new(pool)))
}
