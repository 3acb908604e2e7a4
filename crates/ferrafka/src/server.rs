//! The server: runs a listener thread per subscription group and a worker runtime for the
//! consumers, and shuts everything down gracefully.
//!
//! Shutdown order: stop fetching, let in-flight batches finish within `shutdown_timeout`,
//! run `shutdown` hooks, commit synchronously, leave the groups, flush the producer. Batches
//! still running at the deadline are abandoned unmarked (they run again after a restart) and the
//! exit is reported as [`ServerExit::Forced`].

use crate::instrumentation::{AppState, Event, Health, Monitor};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use crate::app::App;
use crate::connection::{self, ListenerExit, ListenerSetup};
use crate::error::{Error, Result};
pub(crate) use crate::processing::stop::StopSignal;
use crate::producer::Producer;
use crate::routing::SubscriptionGroup;
use crate::web::commands::listener::CommandListener;
use crate::web::tracking::{self, Reporter};

/// Which consumer groups, subscription groups and topics a server runs; empty lists mean all.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    /// Run only these consumer groups.
    pub include_consumer_groups: Vec<String>,
    /// Skip these consumer groups.
    pub exclude_consumer_groups: Vec<String>,
    /// Run only these subscription groups.
    pub include_subscription_groups: Vec<String>,
    /// Skip these subscription groups.
    pub exclude_subscription_groups: Vec<String>,
    /// Consume only these topics.
    pub include_topics: Vec<String>,
    /// Skip these topics.
    pub exclude_topics: Vec<String>,
}

impl Filters {
    fn admits(include: &[String], exclude: &[String], name: &str) -> bool {
        (include.is_empty() || include.iter().any(|n| n == name))
            && !exclude.iter().any(|n| n == name)
    }

    /// The subscription groups left after filtering, each with only its admitted topics active.
    pub fn apply(&self, groups: &[SubscriptionGroup]) -> Vec<SubscriptionGroup> {
        groups
            .iter()
            .filter(|sg| {
                Self::admits(
                    &self.include_consumer_groups,
                    &self.exclude_consumer_groups,
                    &sg.consumer_group,
                )
            })
            .filter(|sg| {
                Self::admits(
                    &self.include_subscription_groups,
                    &self.exclude_subscription_groups,
                    &sg.name,
                )
            })
            .map(|sg| {
                let mut sg = sg.clone();
                sg.topics.retain(|t| {
                    // A pattern route is named by its route name or its regular expression.
                    let names = [Some(&*t.name), t.pattern().map(|p| p.name())];
                    let named = |list: &[String]| {
                        names.iter().flatten().any(|n| list.iter().any(|l| l == n))
                    };
                    (self.include_topics.is_empty() || named(&self.include_topics))
                        && !named(&self.exclude_topics)
                });
                sg
            })
            .filter(|sg| !sg.subscription().is_empty())
            .collect()
    }
}

/// How a server ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerExit {
    /// Every batch finished and was committed.
    Clean,
    /// The shutdown timeout forced the stop: some batches were abandoned and will be redone.
    Forced,
}

/// Stops a running server from anywhere (a signal handler, another thread, a test).
#[derive(Debug, Clone)]
pub struct Stopper(Arc<StopSignal>);

impl Stopper {
    /// Starts the graceful shutdown; returns at once.
    pub fn stop(&self) {
        self.0.raise();
    }

    /// Quiet mode: finish running batches, start no new ones, keep the partitions (no
    /// rebalance) until [`Stopper::stop`]. What a rolling deploy sends before the real stop.
    pub fn quiet(&self) {
        self.0.quiet();
    }

    /// Resolves once the stop was requested, from anywhere (a command of the commands topic
    /// too): what a command-line `server` waits for besides its signals.
    #[cfg(feature = "cli")]
    pub(crate) async fn stop_requested(&self) {
        self.0.raised().await;
    }
}

/// How long the boot check waits for cluster metadata.
const BOOT_CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// Checks that every topic the server will subscribe to exists. A consumer subscribed to a
/// missing topic only notices it after the next metadata refresh, which can take minutes, so
/// in production a missing topic stops the boot; elsewhere it is a warning.
fn check_topics_exist(app: &App, groups: &[SubscriptionGroup]) -> Result<()> {
    let production = app.config().env().is_production();
    let mut routed: Vec<String> = groups
        .iter()
        .flat_map(|g| g.active_topics())
        .map(str::to_string)
        .collect();
    if app.config().reporting {
        // Reporting never stops consumption, but a missing topic means no report at all.
        routed.push(app.config().reports_topic.clone());
        routed.push(app.config().errors_topic.clone());
        routed.push(app.config().commands_topic.clone());
    }
    routed.sort();
    routed.dedup();
    let existing = app
        .admin()
        .map(|a| a.with_timeout(BOOT_CHECK_TIMEOUT))
        .and_then(|a| a.cluster_info());
    let info = match existing {
        Ok(info) => info,
        // Rejected credentials or certificates never heal: stop in every environment.
        Err(e @ Error::Connection { .. }) => return Err(e),
        Err(e) if production => return Err(e),
        Err(e) => {
            tracing::warn!(error = %crate::error::error_chain(&e), "cannot check that the routed topics exist; going on");
            return Ok(());
        }
    };
    let missing: Vec<String> = routed
        .into_iter()
        .filter(|name| !info.topics.iter().any(|t| &t.name == name))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let error = Error::MissingTopics { topics: missing };
    if production {
        return Err(error);
    }
    tracing::warn!("{error} (a warning outside production)");
    Ok(())
}

/// What the command line tells the boot checks.
#[derive(Debug, Clone, Default)]
pub(crate) struct BootOptions {
    /// `server --reload`.
    pub(crate) reload: bool,
    /// `--allow-reload-in-production`.
    pub(crate) reload_allowed: bool,
    /// `--allow-doctor-errors`: log doctor's errors instead of refusing to start.
    pub(crate) allow_doctor_errors: bool,
}

/// In production, runs `doctor`'s static checks: errors stop the boot unless overridden,
/// everything else is logged.
fn run_doctor(app: &App, boot: &BootOptions) -> Result<()> {
    if !app.config().env().is_production() {
        return Ok(());
    }
    let mut opts = crate::doctor::DoctorOptions {
        reload: boot.reload,
        reload_allowed: boot.reload_allowed,
        ..Default::default()
    };
    if let Some(path) = std::env::var_os("FERRAFKA_TOPICS_LOCK") {
        opts.lock_file = path.into();
    }
    let report = crate::doctor::run_static(app, &opts);
    use crate::doctor::Severity;
    for f in report.with_severity(Severity::Warning) {
        tracing::warn!(id = f.id, subject = %f.subject, fix = %f.fix, "doctor: {}", f.found);
    }
    for f in report.with_severity(Severity::Info) {
        tracing::info!(id = f.id, subject = %f.subject, "doctor: {}", f.found);
    }
    let errors: Vec<String> = report
        .with_severity(Severity::Error)
        .map(|f| format!("  {} {}: {} (fix: {})", f.id, f.subject, f.found, f.fix))
        .collect();
    if errors.is_empty() {
        return Ok(());
    }
    if boot.allow_doctor_errors || !app.config().doctor_errors_block_boot {
        for line in &errors {
            tracing::error!("doctor (overridden, starting anyway): {}", line.trim());
        }
        return Ok(());
    }
    Err(Error::Doctor { findings: errors })
}

/// A started server.
#[derive(Debug)]
pub struct RunningServer {
    stop: Arc<StopSignal>,
    listeners: Vec<(String, JoinHandle<ListenerExit>)>,
    runtime: Option<tokio::runtime::Runtime>,
    producer: Producer,
    monitor: Monitor,
    health: Option<Health>,
    process_id: String,
    reporter: Option<Reporter>,
    commands: Option<CommandListener>,
}

impl App {
    /// Starts a server for the routes admitted by `filters` and returns at once.
    pub fn start(&self, filters: &Filters) -> Result<RunningServer> {
        RunningServer::start(self, filters)
    }
}

impl RunningServer {
    /// Starts the server: validates, connects every subscription group, then polls.
    pub(crate) fn start(app: &App, filters: &Filters) -> Result<Self> {
        Self::start_with(app, filters, &BootOptions::default())
    }

    /// [`RunningServer::start`] with what the command line says about reload mode and the
    /// doctor override.
    pub(crate) fn start_with(app: &App, filters: &Filters, boot: &BootOptions) -> Result<Self> {
        app.validate()?;
        run_doctor(app, boot)?;
        let config = app.config_arc();
        let groups = filters.apply(app.subscription_groups());
        if groups.is_empty() {
            return Err(Error::Server {
                reason: "no active topic left to consume after filtering the routes".into(),
                source: None,
            });
        }
        check_topics_exist(app, &groups)?;
        let producer = app.producer()?;
        let transactions = crate::transaction::boot(app, &groups)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .thread_name("ferrafka-worker")
            .enable_all()
            .build()
            .map_err(|e| Error::Server {
                reason: "cannot start the worker runtime".into(),
                source: Some(e),
            })?;
        let workers = Arc::new(Semaphore::new(config.concurrency));
        let monitor = app.monitor().clone();
        let stop = Arc::new(StopSignal::new(config.shutdown_timeout, monitor.clone()));
        let identity = tracking::identity(&config);
        let process_id = identity.process_id.clone();
        if let Some(sampler) = app.sampler() {
            let labels: Vec<String> = groups
                .iter()
                .map(|g| format!("{}/{}", g.consumer_group, g.name))
                .collect();
            sampler.begin(&process_id, &labels);
        }
        let mut consumers = Vec::new();
        for group in groups {
            let label = format!("{}/{}", group.consumer_group, group.name);
            let setup = ListenerSetup {
                config: config.clone(),
                group,
                runtime: runtime.handle().clone(),
                producer: producer.clone(),
                workers: workers.clone(),
                monitor: monitor.clone(),
                transactions: transactions.clone(),
            };
            let consumer =
                connection::connect(setup.clone()).map_err(|e| e.redacted(&setup.group.kafka))?;
            consumers.push((label, consumer, setup));
        }
        let health = start_http(app, &consumers, runtime.handle())?;
        let mut listeners = Vec::new();
        for (label, consumer, setup) in consumers {
            let stop = stop.clone();
            let thread = std::thread::Builder::new()
                .name(format!("ferrafka-listener-{label}"))
                .spawn(move || connection::run(consumer, setup, stop))
                .map_err(|e| Error::Server {
                    reason: "cannot start listener thread".into(),
                    source: Some(e),
                })?;
            listeners.push((label, thread));
        }
        tracing::info!(
            listeners = listeners.len(),
            concurrency = config.concurrency,
            "server running"
        );
        monitor.emit(|| Event::AppState(AppState::Running));
        let reporter = app.sampler().map(|sampler| {
            Reporter::start(
                sampler.clone(),
                identity,
                &config,
                producer.clone(),
                monitor.clone(),
                runtime.handle(),
            )
        });
        let commands = config.reporting.then(|| {
            let listening = (stop.clone(), listeners.len());
            CommandListener::start(
                app,
                &process_id,
                listening,
                producer.clone(),
                runtime.handle(),
            )
        });
        Ok(RunningServer {
            commands,
            stop,
            listeners,
            runtime: Some(runtime),
            producer,
            monitor,
            health,
            process_id,
            reporter,
        })
    }

    /// This process's id, `<host>:<pid>:<random>`, new at every start: the key of its
    /// reports and error reports for `web` (see `docs/web.md`).
    pub fn process_id(&self) -> &str {
        &self.process_id
    }

    /// The liveness and readiness `/healthz` and `/readyz` answer with, when `http_port` is
    /// set: for an app that embeds the server and probes it from its own code.
    pub fn health(&self) -> Option<&Health> {
        self.health.as_ref()
    }

    /// A handle that stops this server.
    pub fn stopper(&self) -> Stopper {
        Stopper(self.stop.clone())
    }

    /// Fault drill: raises a real librdkafka fatal error (as a fenced static member would get)
    /// in one listener's client, to watch it recover. For fault tests and game days; needs the
    /// `testing` feature, since it calls librdkafka's test-only `rd_kafka_test_fatal_error`.
    #[cfg(feature = "testing")]
    pub fn drill_fatal_error(&self) {
        self.stop.request_fatal_drill();
    }

    /// Fault drill: ends every partition executor task of every listener without a report,
    /// as a panic outside ferrafka's guards would, to watch the partitions recover (the
    /// batches they ran are retried). Needs the `testing` feature.
    #[cfg(feature = "testing")]
    pub fn drill_executor_death(&self) {
        self.stop.request_executor_drill();
    }

    /// Starts the graceful shutdown; returns at once. Call [`RunningServer::wait`] next.
    pub fn stop(&self) {
        self.stop.raise();
    }

    /// Waits for the listeners to stop (after [`RunningServer::stop`]), then flushes the producer.
    pub fn wait(mut self) -> ServerExit {
        let mut forced = false;
        for (label, thread) in self.listeners.drain(..) {
            match thread.join() {
                Ok(exit) => forced |= exit.forced,
                Err(_) => {
                    tracing::error!(subscription_group = %label, "listener thread panicked: this is a ferrafka bug, please report it");
                    forced = true;
                }
            }
        }
        let remaining = self
            .stop
            .deadline()
            .saturating_duration_since(Instant::now())
            .max(Duration::from_secs(5));
        if let Some(commands) = self.commands.take() {
            commands.finish();
        }
        if let Some(reporter) = self.reporter.take() {
            reporter.finish(remaining);
        }
        if let Err(e) = self.producer.flush(remaining) {
            tracing::error!(error = %crate::error::error_chain(&e), in_flight = self.producer.in_flight(), "producer flush incomplete at shutdown");
            forced = true;
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
        tracing::info!(forced, "server stopped");
        self.monitor.emit(|| Event::AppState(AppState::Stopped));
        if forced {
            ServerExit::Forced
        } else {
            ServerExit::Clean
        }
    }

    /// Stops and waits: the whole graceful shutdown.
    pub fn shutdown(self) -> ServerExit {
        self.stop();
        self.wait()
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        if !self.listeners.is_empty() {
            self.stop.raise();
            for (_, thread) in self.listeners.drain(..) {
                let _ = thread.join();
            }
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Binds the HTTP endpoint when `http_port` is set (a taken port fails the boot, naming the
/// settings), tells its health which listeners to expect, and serves it on `runtime`.
fn start_http<C>(
    app: &App,
    listeners: &[(String, C, ListenerSetup)],
    runtime: &tokio::runtime::Handle,
) -> Result<Option<Health>> {
    let Some(probes) = app.probes() else {
        return Ok(None);
    };
    let config = app.config();
    let address = std::net::SocketAddr::new(config.http_bind, config.http_port);
    let bound = std::net::TcpListener::bind(address).map_err(|e| Error::Server {
        reason: format!(
            "cannot serve the HTTP endpoint on {address} (settings http_bind and http_port): \
             {e}; choose a free port with `c.http_port(n)`"
        ),
        source: Some(e),
    })?;
    for (label, _, setup) in listeners {
        let interval = setup
            .group
            .kafka
            .get("max.poll.interval.ms")
            .and_then(|ms| ms.parse().ok())
            .map_or(Duration::from_secs(300), Duration::from_millis);
        probes.health.expect_listener(label, interval);
    }
    let router =
        crate::instrumentation::http::router(probes.metrics.clone(), probes.health.clone());
    crate::instrumentation::http::serve(bound, router, runtime).map_err(|e| Error::Server {
        reason: format!("cannot serve the HTTP endpoint on {address}: {e}"),
        source: Some(e),
    })?;
    tracing::info!(%address, "HTTP endpoint serving /metrics, /healthz and /readyz");
    Ok(Some(probes.health.clone()))
}
