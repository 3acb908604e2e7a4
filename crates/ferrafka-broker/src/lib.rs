//! A Kafka-protocol development broker for examples, tests, benchmarks and local apps.
//!
//! [`EmbeddedBroker::start`] runs [tansu](https://crates.io/crates/tansu-broker) 0.6.0's
//! protocol services over in-memory storage on a thread and tokio runtime of its own, on a free
//! loopback port. Dropping the handle stops the broker and discards its data. The
//! `ferrafka-broker` binary runs the same broker standalone for several apps and tools:
//! `cargo run -p ferrafka-broker -- --port 9092` (options `--host`, `--advertised-host`; it
//! prints `bootstrap.servers=…` and stops on Ctrl-C or SIGTERM).
//!
//! ```no_run
//! let broker = ferrafka_broker::EmbeddedBroker::start().expect("broker starts");
//! println!("bootstrap.servers={}", broker.bootstrap_servers());
//! ```
//!
//! # What it provides
//!
//! - **Produce** with any codec (none, gzip, snappy, lz4, zstd) and any batching.
//! - **Fetch from any offset**, including one inside a multi-record batch or the last offset of
//!   the partition: the records from exactly that offset on. tansu 0.6.0's memory engine alone
//!   skips the rest of the batch; this crate's storage serves the containing batch cut to start
//!   at the offset (that one batch is re-encoded uncompressed). A fetch at the high watermark
//!   waits up to `fetch.wait.max.ms` and returns nothing until a record arrives.
//! - **Exact offsets**: the high watermark in fetch responses and `ListOffsets` latest count
//!   every record (tansu's engine alone answers the last batch's base offset plus one);
//!   `ListOffsets` earliest is the log start.
//! - Consumer groups with the classic protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup,
//!   OffsetCommit, OffsetFetch), eager assignors (range, roundrobin).
//! - Admin: CreateTopics, DeleteTopics, Metadata, IncrementalAlterConfigs, DeleteGroups, and in
//!   part DescribeConfigs, ListGroups and DescribeGroups (below).
//!
//! # What it does not provide
//!
//! - **No topic auto-creation**: create topics first (e.g. ferrafka's `topics migrate`).
//! - **No CreatePartitions** (answers UnsupportedFeature), **no legacy AlterConfigs**.
//! - **DescribeConfigs** lists only explicitly set topic settings (flagged as defaults) and
//!   nothing for brokers.
//! - **ListGroups** lists only groups with committed offsets; **DescribeGroups** returns an empty
//!   protocol and empty member client ids, hosts and assignments; deleting a group that has
//!   members succeeds.
//! - **Group coordinator faults**: with cooperative-sticky, a partition can be assigned to a new
//!   member while its previous owner still holds it (when the new consumer starts before the old
//!   one stops); static membership (`group.instance.id`) rebalances the member every few
//!   seconds and is unusable; SIGKILLed members keep their partitions well past the session
//!   timeout. Measure those on a real cluster or librdkafka's mock cluster.
//! - **Fetch latency**: tansu's fetch service sleeps for half of the remaining
//!   `fetch.wait.max.ms` after every fetch, even one that found data, so consumers with
//!   librdkafka's default (500 ms) wait ~250 ms per fetch; `fetch.wait.max.ms=10` removes most
//!   of it. Every fetch lists all batches of the partition, so fetches slow down as a topic
//!   grows, most with one-record batches.
//! - A fetch beyond the high watermark returns nothing instead of OFFSET_OUT_OF_RANGE, so
//!   `auto.offset.reset` never triggers for too-large offsets. `ListOffsets` by timestamp
//!   answers the base offset of the first batch *stored* after the time (batch granularity,
//!   storage time rather than record time), and -1 like Kafka when none was (tansu says 0).
//! - One node, memory only: no persistence, replication, TLS or SASL. Idempotent producers and
//!   the KIP-848 consumer protocol are tansu's, untested here. Transactions: tansu accepts
//!   `init_transactions`, but a transactional pipeline on it never finished, so ferrafka refuses
//!   transactional routes on this broker (known by its cluster id, `ferrafka-embedded`).
//!
//! `docs/embedded-broker.md` in the repository has the measurements behind these notes.

mod bounds;
mod server;
mod storage;
mod trim;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use url::Url;

/// Why the embedded broker could not start.
#[derive(Debug)]
pub struct StartError(String);

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "embedded broker failed to start: {}", self.0)
    }
}

impl std::error::Error for StartError {}

/// A running in-process broker with memory storage; stopped when dropped.
#[derive(Debug)]
pub struct EmbeddedBroker {
    addr: SocketAddr,
    advertised: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl EmbeddedBroker {
    /// Starts a broker on a free loopback port. It accepts connections when this returns.
    pub fn start() -> Result<Self, StartError> {
        Self::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), None)
    }

    /// Starts a broker listening on `listen` (port 0 picks a free one) that tells clients to
    /// connect to `advertised_host` (default: the listen address, or `127.0.0.1` when that is
    /// unspecified, e.g. `0.0.0.0`).
    pub fn start_on(
        listen: SocketAddr,
        advertised_host: Option<IpAddr>,
    ) -> Result<Self, StartError> {
        let listener = TcpListener::bind(listen)
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .map_err(|e| StartError(format!("bind {listen}: {e}")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| StartError(format!("local address: {e}")))?;
        let host = advertised_host.unwrap_or(if addr.ip().is_unspecified() {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            addr.ip()
        });
        let advertised = SocketAddr::new(host, addr.port());
        let (started_tx, started_rx) = mpsc::channel::<Result<(), String>>();
        let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(format!("broker-{}", addr.port()))
            .spawn(move || run_broker(listener, advertised, started_tx, shutdown_rx))
            .map_err(|e| StartError(format!("spawn thread: {e}")))?;
        let broker = Self {
            addr,
            advertised,
            shutdown: Some(shutdown_tx),
            thread: Some(thread),
        };
        started_rx
            .recv()
            .map_err(|_| StartError("broker thread exited".into()))?
            .map_err(StartError)?;
        Ok(broker)
    }

    /// The `bootstrap.servers` value for clients of this broker, e.g. `127.0.0.1:40123`.
    pub fn bootstrap_servers(&self) -> String {
        self.advertised.to_string()
    }

    /// The socket address the broker listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for EmbeddedBroker {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The broker thread: a runtime of its own serving until the handle is dropped.
fn run_broker(
    listener: TcpListener,
    advertised: SocketAddr,
    started: mpsc::Sender<Result<(), String>>,
    shutdown: tokio::sync::oneshot::Receiver<()>,
) {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("broker-worker")
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = started.send(Err(format!("tokio runtime: {e}")));
            return;
        }
    };
    runtime.block_on(async move {
        let url = Url::parse(&format!("tcp://{advertised}")).expect("valid listener url");
        let setup = async {
            let listener = tokio::net::TcpListener::from_std(listener)
                .map_err(|e| format!("listener: {e}"))?;
            Ok::<_, String>((listener, server::memory_storage(&url).await?))
        };
        let (listener, storage) = match setup.await {
            Ok(ready) => ready,
            Err(e) => {
                let _ = started.send(Err(e));
                return;
            }
        };
        let _ = started.send(Ok(()));
        if let Err(e) = server::serve(listener, storage, shutdown).await {
            tracing::error!(error = %e, "embedded broker stopped on its own");
        }
    });
    // Dropping the runtime aborts every connection task of the broker.
    runtime.shutdown_timeout(Duration::from_secs(1));
}
