//! The broker's accept loop: tansu's Kafka protocol services over [`MemoryStorage`].
//!
//! tansu's `Broker::builder()` only builds brokers over its own storage container, and
//! `Broker::listen` prints a banner and progress spinners. This loop uses tansu's public
//! `services` stack instead, on a listener bound before the broker starts (so port 0 works and
//! no other process can take the port in between).

use std::time::{Duration, SystemTime};

use rama::{Context, Service};
use tansu_broker::coordinator::group::administrator::Controller;
use tansu_broker::service::services;
use tansu_storage::{BrokerRegistrationRequest, Storage, StorageContainer};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinSet;
use url::Url;

use crate::storage::MemoryStorage;

/// The node id the broker registers and advertises.
const NODE_ID: i32 = 111;
/// The cluster id clients see.
pub(crate) const CLUSTER_ID: &str = "ferrafka-embedded";
/// How often the storage may expire old state; tansu's broker uses the same period.
const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(600);

/// Memory storage advertising `advertised`, registered as this broker's only node.
pub(crate) async fn memory_storage(advertised: &Url) -> Result<MemoryStorage, String> {
    let engine = StorageContainer::builder()
        .cluster_id(CLUSTER_ID)
        .node_id(NODE_ID)
        .advertised_listener(advertised.clone())
        .storage(Url::parse("memory://tansu/").expect("valid storage url"))
        .schema_registry(None)
        .lake_house(None)
        .silent(true)
        .build()
        .await
        .map_err(|e| format!("memory storage: {e:?}"))?;
    let storage = MemoryStorage::new(engine);
    storage
        .register_broker(BrokerRegistrationRequest {
            broker_id: NODE_ID,
            cluster_id: CLUSTER_ID.into(),
            incarnation_id: uuid::Uuid::new_v4(),
            rack: None,
        })
        .await
        .map_err(|e| format!("register broker: {e:?}"))?;
    Ok(storage)
}

/// Serves Kafka clients on `listener` until `shutdown` fires (or its sender is dropped).
pub(crate) async fn serve(
    listener: TcpListener,
    storage: MemoryStorage,
    mut shutdown: oneshot::Receiver<()>,
) -> Result<(), String> {
    let groups =
        Controller::with_storage(storage.clone()).map_err(|e| format!("coordinator: {e:?}"))?;
    let mut connections = JoinSet::new();
    let mut maintenance = tokio::time::interval(MAINTENANCE_INTERVAL);
    loop {
        tokio::select! {
            _ = &mut shutdown => return Ok(()),
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    // Running out of file descriptors or a reset during accept must not stop
                    // the broker; the client retries.
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let service = services(CLUSTER_ID, groups.clone(), storage.clone(), None)
                    .map_err(|e| format!("protocol services: {e:?}"))?;
                connections.spawn(async move {
                    if let Err(e) = service.serve(Context::default(), stream).await {
                        tracing::debug!(%peer, error = ?e, "connection closed");
                    }
                });
            }
            _ = maintenance.tick() => {
                if let Err(e) = storage.maintain(SystemTime::now()).await {
                    tracing::debug!(error = ?e, "storage maintenance");
                }
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}
