//! An embedded Kafka-protocol broker for examples, tests and benchmarks.
//!
//! [`EmbeddedBroker::start`] runs [tansu](https://crates.io/crates/tansu-broker) 0.6.0 with memory
//! storage on its own thread and tokio runtime, listening on a free loopback port and advertising
//! `127.0.0.1`. Dropping the handle stops the broker and discards its data.
//!
//! Known gaps of tansu 0.6.0 that callers must live with: no topic auto-creation (create topics
//! through an admin client first), no CreatePartitions, no legacy AlterConfigs, and with memory
//! storage the high watermark is the base offset of the last record batch plus one. The last gap
//! has a sharp edge: a fetch from an offset inside a multi-message batch returns nothing, so a
//! consumer that resumes, seeks or restarts mid-batch stalls. Producers that feed this broker
//! should send one message per batch ([`EmbeddedBroker::producer_properties`]), which makes every
//! offset a batch start and the watermark right. Real Kafka has neither problem.
//!
//! ```no_run
//! let broker = ferrafka_broker::EmbeddedBroker::start().expect("broker starts");
//! println!("bootstrap.servers={}", broker.bootstrap_servers());
//! ```

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
