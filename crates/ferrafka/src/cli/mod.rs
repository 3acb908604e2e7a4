//! The command line a user's binary gets by calling [`run`] with its app.
//!
//! `server` runs the consumers; `info` prints routes and effective settings; `topics` manages
//! the declared topics ([`topics`]). Exit codes: 0 ok, 1 configuration or startup error, 2 when
//! the shutdown timeout forced the stop or, for `topics --detailed-exitcode`, when changes were
//! planned or applied (clap also uses 2 for a command line it cannot parse).

pub mod topics;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::app::App;
use crate::config::redact;
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
    /// Manage the declared topics: plan, migrate, create, delete, reset, repartition, align,
    /// list, lock, check.
    Topics(topics::TopicsArgs),
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

/// Runs an already parsed command line against `app`.
pub fn run_with(app: App, cli: Cli) -> ExitCode {
    init_logging();
    match cli.command {
        Command::Info => {
            print!("{}", info(&app));
            ExitCode::SUCCESS
        }
        Command::Server(args) => server(&app, &args.filters()),
        Command::Topics(args) => topics::main(&app, &args),
    }
}

/// Installs a `tracing` subscriber that prints to stderr, filtered by `RUST_LOG` (default
/// `info`, with librdkafka's own lines at `warn`). Does nothing if one is installed already.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,librdkafka=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn fail(error: &(dyn std::error::Error + 'static)) -> ExitCode {
    eprintln!(
        "ferrafka: {}",
        crate::processing::executor::error_chain(error)
    );
    ExitCode::from(1)
}

fn server(app: &App, filters: &Filters) -> ExitCode {
    let running = match app.start(filters) {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    let stopper = running.stopper();
    let signals = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    let signals = match signals {
        Ok(rt) => rt,
        Err(e) => return fail(&e),
    };
    signals.block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler installs");
        let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler installs");
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        tracing::info!(signal = name, timeout = ?app.config().shutdown_timeout, "shutdown requested");
        stopper.stop();
    });
    match running.wait() {
        ServerExit::Clean => ExitCode::SUCCESS,
        ServerExit::Forced => ExitCode::from(2),
    }
}

/// The text `info` prints.
pub fn info(app: &App) -> String {
    use std::fmt::Write;
    let c = app.config();
    let (_, librdkafka) = rdkafka::util::get_rdkafka_version();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "ferrafka {} (librdkafka {librdkafka})",
        env!("CARGO_PKG_VERSION")
    );
    let _ = writeln!(
        out,
        "environment: {}{}",
        c.env(),
        if c.env().is_production() {
            ""
        } else {
            " (non-production)"
        }
    );
    let _ = writeln!(out, "client_id: {}", c.client_id);
    let _ = writeln!(out, "default consumer group: {}", c.default_group_id());
    let _ = writeln!(out, "concurrency: {}", c.concurrency);
    let _ = writeln!(
        out,
        "max_messages: {}  max_wait_time: {:?}",
        c.max_messages, c.max_wait_time
    );
    let _ = writeln!(out, "shutdown_timeout: {:?}", c.shutdown_timeout);
    let _ = writeln!(
        out,
        "pause_timeout: {:?}  pause_max_timeout: {:?}  exponential: {}",
        c.pause_timeout, c.pause_max_timeout, c.pause_with_exponential_backoff
    );
    if let Err(e) = app.validate() {
        let _ = writeln!(out, "{e}");
    }
    for sg in app.subscription_groups() {
        let _ = writeln!(
            out,
            "\nconsumer group {} / subscription group {}",
            sg.consumer_group, sg.name
        );
        for t in &sg.topics {
            let _ = writeln!(
                out,
                "  topic {}{}: max_messages={} max_wait_time={:?}{}",
                t.name,
                if t.active { "" } else { " (inactive)" },
                t.max_messages,
                t.max_wait_time,
                if t.manual_offset_management {
                    " manual_offsets"
                } else {
                    ""
                }
            );
        }
        let _ = writeln!(out, "  kafka:");
        for (k, v) in &sg.kafka {
            let _ = writeln!(out, "    {k}={}", redact(k, v));
        }
    }
    let _ = writeln!(out, "\nproducer kafka:");
    for (k, v) in app.producer_kafka() {
        let _ = writeln!(out, "  {k}={}", redact(&k, &v));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
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
