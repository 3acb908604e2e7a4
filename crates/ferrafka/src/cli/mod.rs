//! The command line a user's binary gets by calling [`run`] with its app.
//!
//! `server` runs the consumers (`--reload` re-executes the binary when it is rebuilt); `info`
//! prints routes and effective settings; `topics` manages the declared topics ([`topics`]) and
//! reads any topic without a consumer group (`topics read`, [`read`]);
//! `doctor` checks the app against the production checklist ([`doctor`]). Exit codes: 0 ok, 1 configuration or startup error, 2 when the
//! shutdown timeout forced the stop or, for `topics --detailed-exitcode`, when changes were
//! planned or applied (clap also uses 2 for a command line it cannot parse).

pub mod doctor;
pub mod read;
pub mod topics;

mod logging;
mod patterns;
mod reload;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::app::App;
use crate::kafka::ClientProperties;
use crate::server::{Filters, ServerExit};

/// Command line of a ferrafka app.
#[derive(Debug, Parser)]
#[command(version, about = "A ferrafka Kafka processing app")]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the consumers until SIGINT or SIGTERM.
    Server(ServerArgs),
    /// Print the app's routes and effective settings (secrets redacted).
    Info,
    /// Manage the declared topics (plan, migrate, create, delete, reset, repartition, align,
    /// list, lock, check) and read any topic without a consumer group (read).
    Topics(topics::TopicsArgs),
    /// Check the app (and with --live its cluster) against the development-vs-production
    /// checklist; exits non-zero on errors, so a deploy pipeline can run it.
    Doctor(doctor::DoctorArgs),
    /// Serve the web UI: every process reporting to the reports topic, consumer groups, topics
    /// and the cluster, read-only (`web_bind`, default 127.0.0.1:3000).
    Web(WebArgs),
}

/// Arguments of `web`.
#[derive(Debug, Default, clap::Args)]
pub struct WebArgs {
    /// Listen on this address instead of `web_bind`; any non-loopback one needs `web_auth`.
    #[arg(long, value_name = "ADDR")]
    pub bind: Option<std::net::SocketAddr>,
}

/// Arguments of `server`. Each list takes comma-separated names and may be repeated.
#[derive(Debug, Default, clap::Args)]
pub struct ServerArgs {
    /// Run only these consumer groups.
    #[arg(long, value_name = "NAMES", value_delimiter = ',')]
    pub include_consumer_groups: Vec<String>,
    /// Skip these consumer groups.
    #[arg(long, value_name = "NAMES", value_delimiter = ',')]
    pub exclude_consumer_groups: Vec<String>,
    /// Run only these subscription groups.
    #[arg(long, value_name = "NAMES", value_delimiter = ',')]
    pub include_subscription_groups: Vec<String>,
    /// Skip these subscription groups.
    #[arg(long, value_name = "NAMES", value_delimiter = ',')]
    pub exclude_subscription_groups: Vec<String>,
    /// Consume only these topics.
    #[arg(long, value_name = "NAMES", value_delimiter = ',')]
    pub include_topics: Vec<String>,
    /// Skip these topics.
    #[arg(long, value_name = "NAMES", value_delimiter = ',')]
    pub exclude_topics: Vec<String>,
    /// Development: when this executable is rebuilt, stop gracefully and re-execute it with the
    /// same arguments. Refused in production.
    #[arg(long)]
    pub reload: bool,
    /// Allow `--reload` with FERRAFKA_ENV=production (not recommended).
    #[arg(long, requires = "reload")]
    pub allow_reload_in_production: bool,
    /// In production, start even when `doctor`'s static checks find errors (they are logged).
    #[arg(long)]
    pub allow_doctor_errors: bool,
}

impl ServerArgs {
    /// The route filters these arguments describe.
    pub fn filters(&self) -> Filters {
        Filters {
            include_consumer_groups: self.include_consumer_groups.clone(),
            exclude_consumer_groups: self.exclude_consumer_groups.clone(),
            include_subscription_groups: self.include_subscription_groups.clone(),
            exclude_subscription_groups: self.exclude_subscription_groups.clone(),
            include_topics: self.include_topics.clone(),
            exclude_topics: self.exclude_topics.clone(),
        }
    }
}

/// Parses the process's arguments and runs the command against `app`.
pub fn run(app: App) -> ExitCode {
    run_with(app, Cli::parse())
}

/// Runs an already parsed command line against `app`, logging in the app's `log_format`
/// (see [`init_logging`]).
pub fn run_with(app: App, cli: Cli) -> ExitCode {
    logging::install(app.config().log_format);
    match cli.command {
        Command::Info => {
            print!("{}", info(&app));
            if let Some(matches) = patterns::current_matches(&app) {
                print!("{matches}");
            }
            ExitCode::SUCCESS
        }
        Command::Server(args) => match server(&app, &args) {
            Served::Exit(code) => code,
            Served::Reload(exe) => {
                // Release the producer and everything else before the image is replaced.
                drop(app);
                let error = reload::reexec(&exe);
                logging::report_failure(&format!("cannot re-execute {}: {error}", exe.display()));
                ExitCode::from(1)
            }
        },
        Command::Topics(args) => topics::main(&app, &args),
        Command::Doctor(args) => doctor::main(&app, &args),
        Command::Web(args) => web(&app, &args),
    }
}

/// The log filter when `RUST_LOG` is unset: ferrafka and the app at `info`, librdkafka's own
/// lines and the embedded broker's (tansu) at `warn`.
pub const DEFAULT_LOG_FILTER: &str = "info,librdkafka=warn,tansu=warn";

/// How `server` ended.
enum Served {
    /// Exit with this code.
    Exit(ExitCode),
    /// Stopped gracefully because the executable changed: run it.
    Reload(std::path::PathBuf),
}

/// Installs a `tracing` subscriber that prints to stderr, filtered by `RUST_LOG` (default
/// [`DEFAULT_LOG_FILTER`]), as text or JSON as `FERRAFKA_LOG_FORMAT` says (text when it is
/// unset or names no format). Text has ANSI colours only when stderr is a terminal and
/// `NO_COLOR` is unset or empty. Does nothing if a subscriber is installed already.
///
/// [`run`] installs it itself, in the app's `log_format` (which the variable overrides); call
/// this only to log before `run`.
pub fn init_logging() {
    let format = std::env::var(crate::config::LOG_FORMAT_VAR)
        .ok()
        .and_then(|name| crate::config::LogFormat::from_name(&name))
        .unwrap_or_default();
    logging::install(format);
}

/// `web`: serves the UI until SIGINT or SIGTERM.
fn web(app: &App, args: &WebArgs) -> ExitCode {
    let mut web = match crate::web::Web::new(app) {
        Ok(web) => web,
        Err(e) => return fail(&e),
    };
    if let Some(bind) = args.bind {
        web = web.bind(bind);
    }
    if let Err(e) = web.check_bind() {
        return fail(&e);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(&e),
    };
    runtime.block_on(async {
        tokio::select! {
            served = web.serve() => match served {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(&e),
            },
            () = stop_signal() => ExitCode::SUCCESS,
        }
    })
}

async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

fn fail(error: &(dyn std::error::Error + 'static)) -> ExitCode {
    logging::report_failure(&crate::error::error_chain(error));
    ExitCode::from(1)
}

/// SIGTSTP's number on Linux; tokio has no named constructor for it.
const SIGTSTP: i32 = 20;

fn server(app: &App, args: &ServerArgs) -> Served {
    let mut watch = None;
    if args.reload {
        if app.config().env().is_production() && !args.allow_reload_in_production {
            logging::report_failure(reload::REFUSED_IN_PRODUCTION);
            return Served::Exit(ExitCode::from(1));
        }
        // Resolved now: once the file is replaced, the running image's path reads "(deleted)".
        match std::env::current_exe() {
            Ok(exe) => watch = Some(exe),
            Err(e) => return Served::Exit(fail(&e)),
        }
    }
    let boot = crate::server::BootOptions {
        reload: args.reload,
        reload_allowed: args.allow_reload_in_production,
        allow_doctor_errors: args.allow_doctor_errors,
    };
    let running = match crate::server::RunningServer::start_with(app, &args.filters(), &boot) {
        Ok(r) => r,
        Err(e) => return Served::Exit(fail(&e)),
    };
    let stopper = running.stopper();
    let signals = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    let signals = match signals {
        Ok(rt) => rt,
        Err(e) => return Served::Exit(fail(&e)),
    };
    let (changed_tx, mut changed) = tokio::sync::mpsc::unbounded_channel::<()>();
    let _watcher = match &watch {
        Some(exe) => {
            if app.config().env().is_production() {
                tracing::warn!("reload mode in production (--allow-reload-in-production)");
            }
            tracing::info!(executable = %exe.display(), "reload mode: watching the executable");
            match reload::watch(exe.clone(), move || {
                let _ = changed_tx.send(());
            }) {
                Ok(w) => Some(w),
                Err(e) => {
                    running.stop();
                    running.wait();
                    return Served::Exit(fail(&e));
                }
            }
        }
        None => None,
    };
    let reload = until_stop(
        &signals,
        &stopper,
        &mut changed,
        app.config().shutdown_timeout,
    );
    let exit = running.wait();
    match (reload, watch) {
        (true, Some(exe)) => {
            if exit == ServerExit::Forced {
                tracing::warn!("reloading after a forced stop: abandoned batches will run again");
            }
            Served::Reload(exe)
        }
        _ => Served::Exit(match exit {
            ServerExit::Clean => ExitCode::SUCCESS,
            ServerExit::Forced => ExitCode::from(2),
        }),
    }
}

/// Waits for SIGTERM, SIGINT or a changed executable (SIGTSTP turns quiet mode on meanwhile),
/// then starts the graceful stop; true when the executable changed (reload).
fn until_stop(
    signals: &tokio::runtime::Runtime,
    stopper: &crate::server::Stopper,
    changed: &mut tokio::sync::mpsc::UnboundedReceiver<()>,
    shutdown_timeout: std::time::Duration,
) -> bool {
    signals.block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler installs");
        let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler installs");
        let mut tstp = signal(SignalKind::from_raw(SIGTSTP)).expect("SIGTSTP handler installs");
        let reason = loop {
            tokio::select! {
                _ = term.recv() => break "SIGTERM",
                _ = int.recv() => break "SIGINT",
                Some(()) = changed.recv() => break "executable changed",
                () = stopper.stop_requested() => break "stop requested (a command)",
                _ = tstp.recv() => {
                    tracing::info!("SIGTSTP: quiet mode until SIGTERM");
                    stopper.quiet();
                }
            }
        };
        tracing::info!(reason, timeout = ?shutdown_timeout, "shutdown requested");
        stopper.stop();
        reason == "executable changed"
    })
}

fn table(header: [&str; 3]) -> comfy_table::Table {
    let mut t = comfy_table::Table::new();
    t.load_style(comfy_table::presets::ASCII_BORDERS_ONLY_CONDENSED)
        .set_header(header);
    t
}

fn indented(table: &comfy_table::Table, by: &str) -> String {
    table
        .lines()
        .map(|l| format!("{by}{}\n", l.trim_end()))
        .collect()
}

/// The text `info` prints: versions and build features, the environment, every effective
/// setting with the layer it came from, and each client's librdkafka properties (secrets
/// redacted).
pub fn info(app: &App) -> String {
    use std::fmt::Write;
    let c = app.config();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "ferrafka {} (librdkafka {})",
        env!("CARGO_PKG_VERSION"),
        crate::librdkafka::version()
    );
    let _ = writeln!(
        out,
        "librdkafka builtin.features: {}",
        crate::librdkafka::builtin_features().join(",")
    );
    let _ = writeln!(
        out,
        "environment: {}{}",
        c.env(),
        match c.env() {
            crate::config::Environment::Production => "",
            crate::config::Environment::Other(_) =>
                " (not a known environment: treated as non-production)",
            _ => " (non-production)",
        }
    );
    let mut settings = table(["setting", "value", "source"]);
    for (name, value) in c.setting_rows() {
        // Without its own group_id the default group takes the client id, and its layer.
        let source = match name {
            "group_id" if c.group_id.is_none() => c.source("client_id"),
            _ => c.source(name),
        };
        settings.add_row([name.to_string(), value, source.to_string()]);
    }
    let _ = writeln!(out, "\nsettings:");
    out.push_str(&indented(&settings, "  "));
    if let Err(e) = app.validate() {
        let _ = writeln!(out, "\n{e}");
    }
    for sg in app.subscription_groups() {
        let _ = writeln!(
            out,
            "\nconsumer group {} / subscription group {}",
            sg.consumer_group, sg.name
        );
        for t in &sg.topics {
            if let Some(line) = patterns::route_line(sg, t) {
                let _ = writeln!(out, "{line}");
                continue;
            }
            let _ = writeln!(
                out,
                "  topic {}{}: max_messages={} max_wait_time={:?} consumer_persistence={}{}",
                t.name,
                if t.active { "" } else { " (inactive)" },
                t.max_messages,
                t.max_wait_time,
                t.consumer_persistence,
                if t.manual_offset_management {
                    " manual_offsets"
                } else {
                    ""
                }
            );
        }
        let properties = ClientProperties::from_parts(&sg.kafka, &sg.kafka_sources);
        out.push_str(&indented(&properties_table(&properties), "  "));
    }
    let clients = [
        ("producer", app.producer_properties()),
        ("admin", app.admin_properties()),
    ];
    for (client, properties) in clients {
        let _ = writeln!(out, "\n{client}:");
        out.push_str(&indented(&properties_table(properties), "  "));
    }
    out
}

/// A client's properties as `info` shows them: secrets redacted, with their layer.
fn properties_table(properties: &ClientProperties) -> comfy_table::Table {
    let mut shown = table(["kafka property", "value", "source"]);
    for row in properties.shown() {
        shown.add_row(row);
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    /// The `partitioner` row of `info`'s producer table, and the `expected_partitioner` row
    /// of its settings, whitespace collapsed.
    fn partitioner_rows(vars: &[(&str, &str)], setup: fn(&mut crate::Config)) -> [String; 2] {
        let app = App::builder_with_env(
            vars.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Vec<_>>(),
        )
        .setup(setup)
        .routes(|r| {
            r.topic("orders").consumer(|| crate::noop::Noop);
        })
        .build();
        let text = info(&app);
        let producer = text
            .split("\nproducer:\n")
            .nth(1)
            .expect("a producer section");
        let producer = producer.split("\nadmin:\n").next().unwrap();
        let row = |section: &str, needle: &str| {
            section
                .lines()
                .find(|l| l.contains(needle))
                .unwrap_or_else(|| panic!("no {needle} in\n{text}"))
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        };
        // Only the producer partitions (a `FERRAFKA_KAFKA_*` variable reaches every client).
        let admin = text.split("\nadmin:\n").nth(1).unwrap();
        assert_eq!(admin.contains("partitioner"), !vars.is_empty(), "{text}");
        [
            row(producer, "| partitioner "),
            row(&text, "| expected_partitioner "),
        ]
    }

    #[test]
    fn info_shows_the_producer_s_partitioner_and_where_it_came_from() {
        assert_eq!(
            partitioner_rows(&[], |_| {}),
            [
                "| partitioner murmur2_random default |",
                "| expected_partitioner unset default |"
            ]
        );
        assert_eq!(
            partitioner_rows(&[], |c| {
                c.producer_kafka("partitioner", "consistent_random")
                    .expected_partitioner("consistent_random");
            }),
            [
                "| partitioner consistent_random setup |",
                "| expected_partitioner consistent_random setup |"
            ]
        );
        assert_eq!(
            partitioner_rows(&[("FERRAFKA_KAFKA_PARTITIONER", "murmur2")], |c| {
                c.producer_kafka("partitioner", "consistent_random");
            })[0],
            "| partitioner murmur2 env:FERRAFKA_KAFKA_PARTITIONER |"
        );
    }

    #[test]
    fn server_filters_parse_comma_lists() {
        let cli = Cli::parse_from([
            "app",
            "server",
            "--include-topics",
            "a,b",
            "--exclude-consumer-groups",
            "x",
        ]);
        let Command::Server(args) = cli.command else {
            panic!("expected server")
        };
        let f = args.filters();
        assert_eq!(f.include_topics, ["a", "b"]);
        assert_eq!(f.exclude_consumer_groups, ["x"]);
    }
}
