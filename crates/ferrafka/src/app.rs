//! The [`App`]: settings plus routes, validated once, then run by the server or the CLI.

use crate::instrumentation::{Health, Metrics, Monitor, Probes, Subscriber};
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use crate::admin::{Admin, TopicSpec};
use crate::config::{Config, ConfigError, ENV_VAR, Environment, Problem, Source};
use crate::declaratives::{self, Declarations};
use crate::doctor::AppView;
use crate::error::Result;
use crate::kafka;
pub use crate::kafka::ClientProperties;
use crate::producer::Producer;
use crate::routing::{self, Router, SubscriptionGroup};
use crate::web::tracking::{self, Sampler};

/// A ferrafka application: what to consume and how.
///
/// ```
/// use ferrafka::{App, ConsumeResult, Consumer, Context, Messages};
///
/// struct Printer;
/// impl Consumer for Printer {
///     async fn consume(&mut self, _ctx: &mut Context, messages: &Messages) -> ConsumeResult {
///         for m in messages {
///             println!("{}:{} {:?}", m.partition(), m.offset(), m.payload());
///         }
///         Ok(())
///     }
/// }
///
/// let app = App::builder()
///     .setup(|c| {
///         c.client_id("shop").kafka("bootstrap.servers", "127.0.0.1:9092").concurrency(4);
///     })
///     .routes(|r| {
///         r.topic("system_events").consumer(|| Printer);
///         r.consumer_group("analytics", |g| {
///             g.topic("visits").consumer(|| Printer).max_messages(500);
///         });
///     })
///     .build();
/// assert!(app.validate().is_ok());
/// ```
pub struct App {
    config: Arc<Config>,
    groups: Vec<SubscriptionGroup>,
    declared: Vec<TopicSpec>,
    problems: Vec<Problem>,
    producer_kafka: ClientProperties,
    admin_kafka: ClientProperties,
    producer: OnceLock<Producer>,
    monitor: Monitor,
    /// What the HTTP endpoint serves, when `http_port` is set.
    probes: Option<Probes>,
    /// What the reports for `web` are built from, when `reporting` is on.
    sampler: Option<Sampler>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("client_id", &self.config.client_id)
            .field("subscription_groups", &self.groups.len())
            .field("problems", &self.problems.len())
            .finish_non_exhaustive()
    }
}

/// Builds an [`App`].
///
/// The environment (`FERRAFKA_ENV`) is read when the builder is created, so `setup` already
/// starts from the environment's profile and can read [`Config::env`].
#[must_use]
pub struct AppBuilder {
    config: Config,
    router: Router,
    vars: Vec<(String, String)>,
    declarations: Declarations,
    subscribers: Vec<Box<dyn Subscriber>>,
}

impl Default for AppBuilder {
    /// The same as [`App::builder`]: reads the process environment.
    fn default() -> Self {
        App::builder()
    }
}

impl std::fmt::Debug for AppBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppBuilder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The environment named by the last `FERRAFKA_ENV` in `vars`, if any.
fn env_in(vars: &[(String, String)]) -> Option<Environment> {
    vars.iter()
        .rev()
        .find(|(k, _)| k == ENV_VAR)
        .map(|(_, v)| Environment::from_name(v))
}

impl AppBuilder {
    fn with_vars(vars: Vec<(String, String)>) -> Self {
        let env = env_in(&vars).unwrap_or(Environment::Development);
        AppBuilder {
            config: Config::for_env(env),
            router: Router::default(),
            vars,
            declarations: Declarations::default(),
            subscribers: Vec::new(),
        }
    }

    /// The environment the app is built for.
    pub fn env(&self) -> &Environment {
        self.config.env()
    }

    /// Changes settings; may be called more than once.
    pub fn setup(mut self, setup: impl FnOnce(&mut Config)) -> Self {
        self.config.layer = Source::Setup;
        setup(&mut self.config);
        self
    }

    /// Adds routes; may be called more than once.
    pub fn routes(mut self, routes: impl FnOnce(&mut Router)) -> Self {
        routes(&mut self.router);
        self
    }

    /// Declares topics nobody here consumes and the defaults of every declaration; may be
    /// called more than once. See [`crate::declaratives`].
    pub fn declarations(mut self, declare: impl FnOnce(&mut Declarations)) -> Self {
        declare(&mut self.declarations);
        self
    }

    /// Subscribes to the server's [`Event`](crate::instrumentation::Event)s; may be called
    /// more than once (subscribers are called in this order). See [`crate::instrumentation`].
    pub fn subscribe(mut self, subscriber: impl Subscriber) -> Self {
        self.subscribers.push(Box::new(subscriber));
        self
    }

    /// Finishes the app, applying the `FERRAFKA_KAFKA_*` variables of the environment the
    /// builder was created with. Problems are kept and reported by [`App::validate`] (the CLI
    /// exits with code 1).
    pub fn build(self) -> App {
        let vars = self.vars.clone();
        self.finish(vars)
    }

    /// Finishes the app with the given environment variables instead of the ones the builder
    /// was created with. A `FERRAFKA_ENV` among them must name the environment the builder
    /// already uses (`setup` ran for it); prefer [`App::builder_with_env`].
    pub fn build_with_env<I: IntoIterator<Item = (String, String)>>(self, vars: I) -> App {
        self.finish(vars.into_iter().collect())
    }

    fn finish(mut self, vars: Vec<(String, String)>) -> App {
        let mut problems = Vec::new();
        if let Some(env) = env_in(&vars).filter(|e| e != self.config.env()) {
            problems.push(Problem::new(
                ENV_VAR,
                env.name(),
                &format!(
                    "needs to name the environment the app was set up for ({}): `setup` and \
                     the profile defaults already used that one",
                    self.config.env()
                ),
                "pass the variables to `App::builder_with_env(vars)` instead of `build_with_env`",
            ));
        }
        self.config.apply_env(vars);
        self.config.check(&mut problems);
        tracking::check_settings(&self.config, &mut problems);
        tracking::declare_topics(&self.config, &mut self.declarations);
        kafka::check_framework_owned(&self.config, &mut problems);
        kafka::check_group_protocol(&self.config, &mut problems);
        let groups = routing::resolve(&self.config, &self.router.groups, &mut problems);
        let routed = routing::routed_topics(&self.config, &self.router.groups);
        let declared =
            declaratives::resolve(&self.config, &routed, &self.declarations, &mut problems);
        if groups.iter().all(|g| g.subscription().is_empty()) {
            problems.push(Problem::new(
                "routes",
                "none",
                "needs at least one active topic with a consumer",
                "add `r.topic(\"name\").consumer(|| MyConsumer)` in `routes`",
            ));
        }
        let producer_kafka = kafka::producer(&self.config);
        let admin_kafka = kafka::admin(&self.config);
        check_client_properties(&groups, &producer_kafka, &mut problems);
        let probes = (self.config.http_port != 0).then(|| Probes {
            metrics: Metrics::new(),
            health: Health::new(self.config.stall_timeout),
        });
        if let Some(p) = &probes {
            self.subscribers.push(Box::new(p.metrics.clone()));
            self.subscribers.push(Box::new(p.health.clone()));
        }
        let sampler = self
            .config
            .reporting
            .then(|| Sampler::new(self.config.stall_timeout));
        if let Some(s) = &sampler {
            self.subscribers.push(Box::new(s.clone()));
        }
        App {
            config: Arc::new(self.config),
            groups,
            declared,
            problems,
            producer_kafka,
            admin_kafka,
            producer: OnceLock::new(),
            monitor: Monitor::new(self.subscribers),
            probes,
            sampler,
        }
    }
}

/// Has librdkafka judge the properties of every consumer and of the producer. The admin's
/// properties are the consumers' app-wide ones: checking them again would only add "admin" to
/// every verdict.
fn check_client_properties(
    groups: &[SubscriptionGroup],
    producer: &ClientProperties,
    problems: &mut Vec<Problem>,
) {
    let mut clients: Vec<(String, ClientProperties)> = groups
        .iter()
        .map(|sg| {
            let label = format!("subscription group {}/{}", sg.consumer_group, sg.name);
            (
                label,
                ClientProperties::from_parts(&sg.kafka, &sg.kafka_sources),
            )
        })
        .collect();
    clients.push(("producer".into(), producer.clone()));
    kafka::check_clients(&clients, problems);
}

impl App {
    /// Starts building an app for the process environment (`FERRAFKA_ENV`, `FERRAFKA_KAFKA_*`).
    pub fn builder() -> AppBuilder {
        AppBuilder::with_vars(std::env::vars().collect())
    }

    /// Starts building an app for the given environment variables instead of the process's
    /// (for tests): `FERRAFKA_ENV` picks the profile `setup` starts from, `FERRAFKA_KAFKA_*`
    /// are applied at `build`.
    pub fn builder_with_env<I: IntoIterator<Item = (String, String)>>(vars: I) -> AppBuilder {
        AppBuilder::with_vars(vars.into_iter().collect())
    }

    /// Every problem found in the settings and routes, or `Ok`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError {
                problems: self.problems.clone(),
            })
        }
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.config
    }

    pub(crate) fn config_arc(&self) -> Arc<Config> {
        self.config.clone()
    }

    /// The resolved subscription groups, one librdkafka consumer each.
    pub fn subscription_groups(&self) -> &[SubscriptionGroup] {
        &self.groups
    }

    /// The declared topics, sorted by name, with defaults applied.
    pub fn declared_topics(&self) -> &[TopicSpec] {
        &self.declared
    }

    /// The librdkafka properties of the app's clients besides its consumers (whose properties
    /// each [`SubscriptionGroup`] carries), each value with the layer it came from.
    pub fn clients(&self) -> Clients<'_> {
        Clients { app: self }
    }

    /// The producer's librdkafka properties, which the transactional producers share.
    pub(crate) fn producer_kafka_values(&self) -> BTreeMap<String, String> {
        self.producer_kafka.values()
    }

    /// The producer's properties with their layers, as the kafka module built them.
    #[cfg(feature = "cli")]
    pub(crate) fn producer_properties(&self) -> &ClientProperties {
        &self.producer_kafka
    }

    /// The admin's properties with their layers, as the kafka module built them.
    #[cfg(feature = "cli")]
    pub(crate) fn admin_properties(&self) -> &ClientProperties {
        &self.admin_kafka
    }

    /// The app's event subscribers.
    pub(crate) fn monitor(&self) -> &Monitor {
        &self.monitor
    }

    /// What the reports for `web` are built from, when `reporting` is on.
    pub(crate) fn sampler(&self) -> Option<&Sampler> {
        self.sampler.as_ref()
    }

    /// What the HTTP endpoint serves, when `http_port` is set.
    pub(crate) fn probes(&self) -> Option<&Probes> {
        self.probes.as_ref()
    }

    /// Runs doctor, the production checklist, on this app and returns its report. With
    /// [`DoctorOptions::live`](crate::doctor::DoctorOptions::live) it also checks the cluster
    /// and blocks; call it from synchronous code (or `spawn_blocking`).
    pub fn doctor(&self, options: &crate::doctor::DoctorOptions) -> crate::doctor::Report {
        crate::doctor::run(self, options)
    }

    /// An admin client with the app's properties (`app.clients().admin()`).
    pub fn admin(&self) -> Result<Admin> {
        Admin::new(&self.admin_kafka.values())
    }

    /// The app-wide producer, created on first use.
    pub fn producer(&self) -> Result<Producer> {
        if let Some(p) = self.producer.get() {
            return Ok(p.clone());
        }
        let created = Producer::monitored(&self.producer_kafka.values(), self.monitor.clone());
        Ok(self.producer.get_or_init(|| created).clone())
    }
}

/// The librdkafka properties of an app's producer and admin client: [`App::clients`].
#[derive(Debug, Clone, Copy)]
pub struct Clients<'a> {
    app: &'a App,
}

impl<'a> Clients<'a> {
    /// The producer's: the app-wide properties without consumer-only ones, plus the
    /// producer's own, plus `FERRAFKA_KAFKA_*` variables.
    pub fn producer(&self) -> &'a ClientProperties {
        &self.app.producer_kafka
    }

    /// The admin client's: `client.id` and every app-wide property (security settings and
    /// `FERRAFKA_KAFKA_*` variables included).
    pub fn admin(&self) -> &'a ClientProperties {
        &self.app.admin_kafka
    }
}

impl AppView for App {
    fn config(&self) -> &Config {
        App::config(self)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        App::validate(self)
    }

    fn subscription_groups(&self) -> &[SubscriptionGroup] {
        App::subscription_groups(self)
    }

    fn declared_topics(&self) -> &[TopicSpec] {
        App::declared_topics(self)
    }

    fn producer_kafka(&self) -> BTreeMap<String, String> {
        self.producer_kafka.values()
    }

    fn producer_kafka_sources(&self) -> BTreeMap<String, (String, Source)> {
        self.producer_kafka.with_sources().clone()
    }

    fn admin_kafka(&self) -> BTreeMap<String, String> {
        self.admin_kafka.values()
    }
}
