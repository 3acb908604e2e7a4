//! The [`App`]: settings plus routes, validated once, then run by the server or the CLI.

use std::sync::{Arc, OnceLock};

use crate::admin::TopicSpec;
use crate::config::{Config, ConfigError, Problem};
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
#[derive(Default)]
#[must_use]
pub struct AppBuilder {
    config: Config,
    router: Router,
    declarations: Declarations,
}

impl std::fmt::Debug for AppBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppBuilder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl AppBuilder {
    /// Changes settings; may be called more than once.
    pub fn setup(mut self, setup: impl FnOnce(&mut Config)) -> Self {
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

    /// Finishes the app, reading `FERRAFKA_KAFKA_*` variables from the process environment.
    /// Problems are kept and reported by [`App::validate`] (the CLI exits with code 1).
    pub fn build(self) -> App {
        self.build_with_env(std::env::vars())
    }

    /// Finishes the app with the given environment variables instead of the process's.
    pub fn build_with_env<I: IntoIterator<Item = (String, String)>>(mut self, vars: I) -> App {
        self.config.apply_env(vars);
        let mut problems = Vec::new();
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
        App {
            config: Arc::new(self.config),
            groups,
            declared,
            problems,
            producer: OnceLock::new(),
        }
    }
}

impl App {
    /// Starts building an app.
    pub fn builder() -> AppBuilder {
        AppBuilder::default()
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
    /// properties, plus the producer's own.
    pub fn producer_kafka(&self) -> std::collections::BTreeMap<String, String> {
        let mut kafka: std::collections::BTreeMap<String, String> = self
            .config
            .kafka
            .iter()
            .filter(|(k, _)| !crate::config::CONSUMER_ONLY.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        kafka
            .entry("client.id".into())
            .or_insert_with(|| self.config.client_id.clone());
        kafka.extend(
            self.config
                .producer_kafka
                .iter()
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        kafka
    }

    /// The app-wide producer, created on first use.
    pub fn producer(&self) -> Result<Producer> {
        if let Some(p) = self.producer.get() {
            return Ok(p.clone());
        }
        let created = Producer::new(&self.producer_kafka())?;
        Ok(self.producer.get_or_init(|| created).clone())
    }

    /// Starts a server for the routes admitted by `filters` and returns at once.
    pub fn start(&self, filters: &Filters) -> Result<RunningServer> {
        RunningServer::start(self, filters)
    }
}
