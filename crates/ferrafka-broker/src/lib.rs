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

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tansu_broker::broker::Broker;
use tansu_broker::coordinator::group::administrator::Controller;
use tansu_storage::StorageContainer;
use url::Url;

/// How long to wait for the broker to accept connections before giving up.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How many free ports to try: another process can take the port between probe and bind.
const PORT_ATTEMPTS: usize = 5;

/// Why the embedded broker could not start.
#[derive(Debug)]
pub struct StartError(String);

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "embedded broker failed to start: {}", self.0)
    }
}

impl std::error::Error for StartError {}

/// A running in-process tansu broker; stopped when dropped.
#[derive(Debug)]
pub struct EmbeddedBroker {
    addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl EmbeddedBroker {
    /// Starts a broker with memory storage on a free loopback port and waits until it accepts
    /// connections.
    pub fn start() -> Result<Self, StartError> {
        let mut last_error = String::from("no attempt made");
        for _ in 0..PORT_ATTEMPTS {
            match Self::start_on(free_port()?) {
                Ok(broker) => return Ok(broker),
                Err(e) => last_error = e.0,
            }
        }
        Err(StartError(last_error))
    }

    fn start_on(port: u16) -> Result<Self, StartError> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let url = Url::parse(&format!("tcp://127.0.0.1:{port}")).expect("valid listener url");
        let (started_tx, started_rx) = mpsc::channel::<Result<(), String>>();
        let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();

        let thread = std::thread::Builder::new()
            .name(format!("tansu-{port}"))
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("tansu-worker")
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = started_tx.send(Err(format!("tokio runtime: {e}")));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let broker =
                        Broker::<Controller<StorageContainer>, StorageContainer>::builder()
                            .node_id(111)
                            .cluster_id("ferrafka-embedded")
                            .incarnation_id(uuid::Uuid::new_v4())
                            .advertised_listener(url.clone())
                            .storage(Url::parse("memory://tansu/").expect("valid storage url"))
                            .listener(url)
                            .silent(true)
                            .build()
                            .await;
                    let mut broker = match broker {
                        Ok(b) => b,
                        Err(e) => {
                            let _ = started_tx.send(Err(format!("build: {e:?}")));
                            return;
                        }
                    };
                    let serve =
                        tokio::spawn(
                            async move { broker.serve(tokio::time::Instant::now()).await },
                        );
                    let _ = started_tx.send(Ok(()));
                    tokio::select! {
                        _ = shutdown_rx => {}
                        result = serve => {
                            tracing::error!(?result, "embedded broker stopped on its own");
                        }
                    }
                });
                // Dropping the runtime here aborts every connection task of the broker.
                runtime.shutdown_timeout(Duration::from_secs(1));
            })
            .map_err(|e| StartError(format!("spawn thread: {e}")))?;

        let mut broker = Self {
            addr,
            shutdown: Some(shutdown_tx),
            thread: Some(thread),
        };
        started_rx
            .recv()
            .map_err(|_| StartError("broker thread exited".into()))?
            .map_err(StartError)?;
        broker.wait_ready()?;
        Ok(broker)
    }

    fn wait_ready(&mut self) -> Result<(), StartError> {
        let deadline = Instant::now() + READY_TIMEOUT;
        while Instant::now() < deadline {
            if self.thread.as_ref().is_some_and(|t| t.is_finished()) {
                return Err(StartError(format!("broker on {} exited", self.addr)));
            }
            if TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(StartError(format!(
            "broker on {} not ready within {READY_TIMEOUT:?}",
            self.addr
        )))
    }

    /// The `bootstrap.servers` value for clients of this broker, e.g. `127.0.0.1:40123`.
    pub fn bootstrap_servers(&self) -> String {
        self.addr.to_string()
    }

    /// librdkafka producer properties that work around tansu's per-batch offsets (see the crate
    /// docs): one message per record batch.
    pub fn producer_properties() -> std::collections::BTreeMap<String, String> {
        std::collections::BTreeMap::from([
            ("batch.num.messages".to_string(), "1".to_string()),
            ("linger.ms".to_string(), "0".to_string()),
        ])
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

fn free_port() -> Result<u16, StartError> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| StartError(format!("no free loopback port: {e}")))
}
