//! What the `example-basics` binaries share, so each of them shows only its feature: a broker
//! to run against, fresh topics, producing test data, and waiting with a deadline.
//!
//! The broker is the embedded one (in this process, memory only, gone when the program ends)
//! unless `FERRAFKA_KAFKA_BOOTSTRAP_SERVERS` names one.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use ferrafka::admin::{Admin, TopicSpec};
use ferrafka::{Producer, Record};

/// What an example's body fails with: any error, printed on the way out.
pub type Error = Box<dyn std::error::Error>;

/// A broker to run an example against, with an admin client and a runtime for the async calls
/// made outside the app (creating topics, producing).
pub struct Sandbox {
    /// `bootstrap.servers` of the broker.
    pub bootstrap: String,
    /// Admin client of the broker.
    pub admin: Admin,
    /// Runs async calls from `main`; the app runs on a runtime of its own.
    pub runtime: tokio::runtime::Runtime,
    /// The embedded broker, when no other was configured; dropped (stopped) last.
    _embedded: Option<ferrafka_broker::EmbeddedBroker>,
}

impl Sandbox {
    /// Connects to `FERRAFKA_KAFKA_BOOTSTRAP_SERVERS`, or starts the embedded broker.
    pub fn start() -> Result<Self, Error> {
        let (bootstrap, embedded) = match std::env::var("FERRAFKA_KAFKA_BOOTSTRAP_SERVERS") {
            Ok(servers) => (servers, None),
            Err(_) => {
                let broker = ferrafka_broker::EmbeddedBroker::start()?;
                (broker.bootstrap_servers(), Some(broker))
            }
        };
        Ok(Sandbox {
            admin: Admin::connect(&bootstrap)?,
            runtime: tokio::runtime::Runtime::new()?,
            bootstrap,
            _embedded: embedded,
        })
    }

    /// Creates the topic `<name>-<process id>` and returns its name: a fresh topic per run, so
    /// a second run against the same broker starts from nothing.
    pub fn fresh_topic(&self, name: &str, partitions: i32) -> Result<String, Error> {
        let topic = format!("{name}-{}", std::process::id());
        let spec = TopicSpec::new(topic.as_str(), partitions);
        self.runtime.block_on(self.admin.ensure_topic(&spec))?;
        Ok(topic)
    }

    /// A producer of this broker, for test data (apps use the one of `ctx.producer()`).
    pub fn producer(&self) -> Result<Producer, Error> {
        Ok(Producer::new(
            &[("bootstrap.servers".into(), self.bootstrap.clone())].into(),
        )?)
    }

    /// Produces `(key, payload)` pairs to `topic` and waits until the broker has them all.
    pub fn produce_keyed(&self, topic: &str, records: &[(String, String)]) -> Result<(), Error> {
        let producer = self.producer()?;
        let records = records
            .iter()
            .map(|(key, payload)| Record::to(topic).key(key).payload(payload));
        self.runtime.block_on(producer.produce_many(records))?;
        Ok(())
    }
}

/// Checks `done` every 20 ms until it holds or `timeout` passed; returns whether it held.
pub fn wait_until(timeout: Duration, done: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while !done() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// Runs an example's body: on failure prints `<name>: <error>` and exits with code 1.
pub fn run(name: &str, body: impl FnOnce() -> Result<(), Error>) -> ExitCode {
    match body() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e}");
            ExitCode::FAILURE
        }
    }
}
