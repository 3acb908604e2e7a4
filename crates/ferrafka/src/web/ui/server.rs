//! [`Web`]: the router, its state and handlers, and serving it on `web_bind`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use maud::Markup;

use super::auth::{self, WebAuth};
use super::data::{self, From, KnownTopics};
use super::live::{self, Fleet, SharedFleet};
use super::pages;
use super::rfc3339;
use super::safety;
use super::snapshot::PayloadFormat;
use super::state::{DeadLetterSource, Page, Shared, WebTopics, Writes, blocking};
use crate::admin::Admin;
use crate::app::App;
use crate::config::{ConfigError, Problem};
use crate::error::{Error, Result};
use crate::producer::Producer;

/// The web UI of an app: see [the module](super).
pub struct Web {
    kafka: BTreeMap<String, String>,
    bind: SocketAddr,
    auth: WebAuth,
    masked: BTreeSet<String>,
    routes: KnownTopics,
    reports_topic: String,
    base: String,
    sample_interval: Duration,
    topics: WebTopics,
    read_only: bool,
    producer_kafka: BTreeMap<String, String>,
}

impl std::fmt::Debug for Web {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Web")
            .field("bind", &self.bind)
            .field("auth", &self.auth)
            .field("reports_topic", &self.reports_topic)
            .field("base", &self.base)
            .field("read_only", &self.read_only)
            .finish_non_exhaustive()
    }
}

/// The router of `app`'s web UI (see [`Web::router`]).
pub fn router(app: &App) -> Result<Router> {
    Web::new(app)?.router()
}

impl Web {
    /// The web UI of `app`: its admin client's properties, `web_bind`, `web_auth` (or
    /// `FERRAFKA_WEB_AUTH`), `web_masked_topics`, `reports_topic` and its routes' consumer
    /// groups.
    pub fn new(app: &App) -> Result<Self> {
        let config = app.config();
        let auth =
            WebAuth::resolve(&config.web_auth).map_err(|p| ConfigError { problems: vec![p] })?;
        let mut routes = KnownTopics::new();
        let mut masked: BTreeSet<String> = config.web_masked_topics.iter().cloned().collect();
        let mut topics = WebTopics {
            errors: config.errors_topic.clone(),
            commands: config.commands_topic.clone(),
            audit: config.audit_topic.clone(),
            dead_letters: BTreeMap::new(),
        };
        for sg in app.subscription_groups() {
            for t in &sg.topics {
                if t.web_masked {
                    masked.insert(t.name.to_string());
                }
                if let Some(dlq) = t.dead_letter_queue() {
                    let source = DeadLetterSource {
                        consumer_group: sg.consumer_group().to_string(),
                        topic: t.name.to_string(),
                    };
                    let sources = topics.dead_letters.entry(dlq.topic.clone()).or_default();
                    if !sources.contains(&source) {
                        sources.push(source);
                    }
                }
                routes
                    .entry(sg.consumer_group().to_string())
                    .or_default()
                    .insert(t.name.to_string());
            }
        }
        Ok(Web {
            kafka: app.clients().admin().values(),
            bind: config.web_bind,
            auth,
            masked,
            routes,
            reports_topic: config.reports_topic.clone(),
            base: String::new(),
            sample_interval: config.report_interval,
            topics,
            read_only: config.web_read_only,
            producer_kafka: app.clients().producer().values(),
        })
    }

    /// Reads reports from this topic instead of the app's `reports_topic`.
    pub fn reports_topic(mut self, topic: impl Into<String>) -> Self {
        self.reports_topic = topic.into();
        self
    }

    /// The path the router is mounted under (e.g. `/ops` for `Router::nest("/ops", …)`), so
    /// links and assets point there. Empty by default.
    pub fn base_path(mut self, base: impl Into<String>) -> Self {
        self.base = base.into().trim_end_matches('/').to_string();
        self
    }

    /// How often the trends are sampled (default: the app's `report_interval`; 720 samples are kept).
    pub fn sample_interval(mut self, interval: Duration) -> Self {
        self.sample_interval = interval.max(Duration::from_millis(100));
        self
    }

    /// Serves on this address instead of `web_bind`.
    pub fn bind(mut self, address: SocketAddr) -> Self {
        self.bind = address;
        self
    }

    /// Whether the explorer hides `topic`'s payloads (`web_masked_topics`, or the route's
    /// `web_masked`).
    pub fn is_masked(&self, topic: &str) -> bool {
        self.masked.contains(topic)
    }

    /// Refuses every write (republish, commands) when `read_only`, instead of following
    /// `web_read_only`.
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// Authenticates with this instead of `web_auth`.
    pub fn auth(mut self, auth: WebAuth) -> Self {
        self.auth = auth;
        self
    }

    /// Refuses a non-loopback address without authentication: it would show the fleet's
    /// messages to the whole network.
    pub fn check_bind(&self) -> std::result::Result<(), ConfigError> {
        if self.bind.ip().is_loopback() || self.auth.is_set() {
            return Ok(());
        }
        Err(ConfigError {
            problems: vec![Problem::new(
                "web_bind",
                &self.bind.to_string(),
                "a non-loopback address serves the UI, and the messages it shows, to the network; \
                 it needs `web_auth`",
                "bind a loopback address (127.0.0.1:3000, the default), or set `web_auth` \
                 (`c.web_auth(WebAuth::token(..))`, or FERRAFKA_WEB_AUTH=token:<T> or \
                 basic:<user>:<password>)",
            )],
        })
    }

    /// The router: pages, assets, auth when set. Starts reading the reports topic and sampling
    /// on threads of their own, which stop once every clone of the router is dropped.
    pub fn router(self) -> Result<Router> {
        let auth = self.auth.clone();
        let shared = self.shared()?;
        let mut router = routes()
            .layer(axum::middleware::from_fn_with_state(
                shared.clone(),
                safety::guard_writes,
            ))
            .with_state(shared);
        if auth.is_set() {
            router = router.layer(axum::middleware::from_fn_with_state(auth, auth::require));
        }
        Ok(router)
    }

    /// What the handlers share; starts the background threads.
    pub(super) fn shared(self) -> Result<Shared> {
        let admin = Admin::new(&self.kafka)?.with_timeout(Duration::from_secs(5));
        let fleet: SharedFleet = Arc::new(Mutex::new(Fleet::default()));
        let alive = Arc::new(());
        let thread_failed = |what: &str, e: std::io::Error| Error::Server {
            reason: format!("cannot start the web UI's {what}"),
            source: Some(e),
        };
        live::spawn_reader(
            fleet.clone(),
            self.reports_topic.clone(),
            self.kafka.clone(),
            Arc::downgrade(&alive),
        )
        .map_err(|e| thread_failed("reports reader", e))?;
        spawn_sampler(fleet.clone(), self.sample_interval, Arc::downgrade(&alive))
            .map_err(|e| thread_failed("sampler", e))?;
        let writes = match self.read_only {
            true => None,
            false => Some(Writes {
                producer: Producer::new(&self.producer_kafka)?,
                csrf: Arc::from(safety::new_csrf_token()),
            }),
        };
        Ok(Shared {
            fleet,
            admin: Arc::new(admin),
            kafka: Arc::new(self.kafka),
            masked: Arc::new(self.masked),
            routes: Arc::new(self.routes),
            topics: Arc::new(self.topics),
            writes,
            base: Arc::from(self.base.as_str()),
            _alive: alive,
        })
    }

    /// Serves the UI on `web_bind` until the future is dropped; refuses a non-loopback
    /// address without `web_auth` before binding.
    pub async fn serve(self) -> Result<()> {
        self.check_bind()?;
        let bind = self.bind;
        let router = self.router()?;
        let listener = tokio::net::TcpListener::bind(bind)
            .await
            .map_err(|e| Error::Server {
                reason: format!("cannot listen on web_bind {bind}"),
                source: Some(e),
            })?;
        tracing::info!(address = %bind, "web UI listening");
        // The peer address goes into the audit of every write.
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .map_err(|e| Error::Server {
            reason: "the web UI stopped".into(),
            source: Some(e),
        })
    }
}

/// Every route of the UI: the pages of this file, then each part's own. Writes are `POST`
/// routes; the guard in [`router`](Web::router) covers every route listed here.
fn routes() -> Router<Shared> {
    Router::new()
        .route("/", get(dashboard))
        .route("/processes", get(processes))
        .route("/processes/{id}", get(process))
        .route("/groups", get(groups))
        .route("/groups/{group}", get(group))
        .route("/topics", get(topics))
        .route("/topics/{topic}", get(topic))
        .route("/topics/{topic}/{partition}", get(browse))
        .route("/cluster", get(cluster))
        .route("/health", get(health))
        .route("/assets/ui.css", get(css))
        .route("/assets/ui.js", get(js))
        .merge(super::errors::routes())
        .merge(super::dead_letters::routes())
        .merge(super::operations::routes())
}

fn spawn_sampler(
    fleet: SharedFleet,
    interval: Duration,
    alive: std::sync::Weak<()>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("ferrafka-web-sampler".into())
        .spawn(move || {
            while alive.upgrade().is_some() {
                live::lock(&fleet).sample(crate::messages::now_ms());
                std::thread::sleep(interval);
            }
        })
}

async fn dashboard(State(s): State<Shared>) -> Markup {
    pages::dashboard(&s.base, &s.snapshot())
}

async fn processes(State(s): State<Shared>) -> Markup {
    pages::processes(&s.base, &s.snapshot())
}

async fn process(State(s): State<Shared>, Path(id): Path<String>) -> Markup {
    pages::process(&s.base, &s.snapshot(), &id, s.csrf())
}

async fn groups(State(s): State<Shared>) -> Page {
    let base = s.base.clone();
    let known = data::known_topics(&s.routes, &s.snapshot());
    let view = blocking(move || data::groups(&s.admin, &known)).await?;
    Ok(pages::groups(&base, &view))
}

async fn group(State(s): State<Shared>, Path(name): Path<String>) -> Page {
    let (base, csrf) = (s.base.clone(), s.csrf().map(str::to_string));
    let view = blocking(move || {
        let fleet = s.snapshot();
        let known = data::known_topics(&s.routes, &fleet);
        data::group(&s.admin, &name, &known, &fleet)
    })
    .await?;
    Ok(pages::group(&base, &view, csrf.as_deref()))
}

async fn topics(State(s): State<Shared>) -> Page {
    let base = s.base.clone();
    let (view, _) = blocking(move || data::cluster(&s.admin)).await?;
    Ok(pages::topics(&base, &view))
}

async fn topic(State(s): State<Shared>, Path(name): Path<String>) -> Page {
    let base = s.base.clone();
    let view = blocking(move || data::topic(&s.admin, &name)).await?;
    Ok(pages::topic(&base, &view))
}

/// `?offset=N`, `?time=RFC3339`, `?format=json|text|hex`.
#[derive(serde::Deserialize, Default)]
struct BrowseQuery {
    offset: Option<String>,
    time: Option<String>,
    format: Option<String>,
}

async fn browse(
    State(s): State<Shared>,
    Path((topic, partition)): Path<(String, i32)>,
    Query(q): Query<BrowseQuery>,
) -> Page {
    let bad = |text: String| (StatusCode::BAD_REQUEST, text).into_response();
    let format = match q.format.as_deref().filter(|f| !f.is_empty()) {
        None => PayloadFormat::Json,
        Some(name) => PayloadFormat::from_name(name)
            .ok_or_else(|| bad(format!("format {name:?}: use json, text or hex\n")))?,
    };
    let from = match (
        q.offset.as_deref().filter(|o| !o.is_empty()),
        q.time.as_deref().filter(|t| !t.is_empty()),
    ) {
        (Some(o), _) => From::Offset(
            o.parse::<i64>()
                .ok()
                .filter(|o| *o >= 0)
                .ok_or_else(|| bad(format!("offset {o:?}: use a whole number, 0 or more\n")))?,
        ),
        (None, Some(t)) => From::Time(parse_time(t).ok_or_else(|| {
            bad(format!(
                "time {t:?}: use RFC 3339, e.g. 2026-01-01T00:00:00Z\n"
            ))
        })?),
        (None, None) => From::Last,
    };
    let masked = s.masked.contains(&topic);
    let base = s.base.clone();
    let view =
        blocking(move || data::browse(&s.admin, &s.kafka, &topic, partition, from, format, masked))
            .await?;
    Ok(pages::browse(&base, &view))
}

fn parse_time(text: &str) -> Option<SystemTime> {
    let ms = rfc3339::to_millis(text)?;
    u64::try_from(ms)
        .ok()
        .map(|ms| SystemTime::UNIX_EPOCH + Duration::from_millis(ms))
}

async fn cluster(State(s): State<Shared>) -> Page {
    let base = s.base.clone();
    let (view, _) = blocking(move || data::cluster(&s.admin)).await?;
    Ok(pages::cluster(&base, &view))
}

async fn health(State(s): State<Shared>) -> Page {
    let base = s.base.clone();
    let view = blocking(move || {
        let now = crate::messages::now_ms();
        let (fleet, lagging) = {
            let f = live::lock(&s.fleet);
            (f.snapshot(now), f.lagging(now))
        };
        let (cluster, _) = data::cluster(&s.admin);
        data::health(&fleet, lagging, &cluster)
    })
    .await?;
    Ok(pages::health(&base, &view))
}

async fn css() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("assets/ui.css"),
    )
}

async fn js() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("assets/ui.js"),
    )
}
