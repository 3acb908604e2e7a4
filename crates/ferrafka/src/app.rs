//! The [`App`]: settings plus routes, validated once, then run by the server or the CLI.

use std::sync::{Arc, OnceLock};

use std::collections::BTreeMap;

use crate::admin::TopicSpec;
use crate::config::{CONSUMER_ONLY, Config, ConfigError, ENV_VAR, Environment, Problem, Source};
use crate::declaratives::{self, Declarations};
use crate::error::Result;
use crate::producer::Producer;
use crate::routing::{self, Router, SubscriptionGroup};
use crate::server::{Filters, RunningServer};

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
    producer: OnceLock<Producer>,
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
        let groups = routing::resolve(&self.config, &self.router.groups, &mut problems);
        let declared = declaratives::resolve(
            &self.config,
            &self.router.groups,
            &self.declarations,
            &mut problems,
        );
        if groups.iter().all(|g| g.active_topics().is_empty()) {
            problems.push(Problem::new(
                "routes",
                "none",
                "needs at least one active topic with a consumer",
                "add `r.topic(\"name\").consumer(|| MyConsumer)` in `routes`",
            ));
        }
        let producer = producer_kafka(&self.config);
        crate::kafka_check::check_clients(&groups, &producer, &mut problems);
        App {
            config: Arc::new(self.config),
            groups,
            declared,
            problems,
            producer: OnceLock::new(),
        }
    }
}

/// The producer's librdkafka properties with their layers: the shared ones without
/// consumer-only properties, the producer's own, then environment variables.
fn producer_kafka(config: &Config) -> BTreeMap<String, (String, Source)> {
    let mut kafka = BTreeMap::new();
    kafka.insert(
        "client.id".to_string(),
        (config.client_id.clone(), config.source("client_id")),
    );
    let shared = config
        .kafka
        .iter()
        .filter(|(k, _)| !CONSUMER_ONLY.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), (v.clone(), config.source(&format!("kafka.{k}")))));
    kafka.extend(shared);
    kafka.extend(config.producer_kafka.iter().map(|(k, v)| {
        let source = config.source(&format!("producer_kafka.{k}"));
        (k.clone(), (v.clone(), source))
    }));
    kafka.extend(
        config
            .env_kafka
            .iter()
            .filter(|(k, _)| !CONSUMER_ONLY.contains(&k.as_str()))
            .map(|(k, (v, var))| (k.clone(), (v.clone(), Source::EnvVar(var.clone())))),
    );
    kafka
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

    /// The librdkafka properties of the producer: the shared ones without consumer-only
    /// properties, plus the producer's own, plus environment variables.
    pub fn producer_kafka(&self) -> BTreeMap<String, String> {
        producer_kafka(&self.config)
            .into_iter()
            .map(|(k, (v, _))| (k, v))
            .collect()
    }

    /// [`App::producer_kafka`] with the layer each value came from.
    pub fn producer_kafka_sources(&self) -> BTreeMap<String, (String, Source)> {
        producer_kafka(&self.config)
    }

    /// The app-wide producer, created on first use.
    pub fn producer(&self) -> Result<Producer> {
        if let Some(p) = self.producer.get() {
            return Ok(p.clone());
        }
        let created = Producer::lazy(&self.producer_kafka());
        Ok(self.producer.get_or_init(|| created).clone())
    }

    /// Starts a server for the routes admitted by `filters` and returns at once.
    pub fn start(&self, filters: &Filters) -> Result<RunningServer> {
        RunningServer::start(self, filters)
    }
}
