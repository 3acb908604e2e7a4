//! `ferrafka-broker`: the embedded development broker as a standalone process, so several apps
//! and tools can share it.
//!
//! ```text
//! cargo run -p ferrafka-broker -- --port 9092
//! ```
//!
//! It keeps everything in memory and stops on Ctrl-C or SIGTERM; see the crate docs for which
//! Kafka behaviours it provides.

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;

use clap::Parser;
use ferrafka_broker::EmbeddedBroker;
use tokio::signal::unix::{SignalKind, signal};

/// Command line of the development broker.
#[derive(Debug, Parser)]
#[command(
    version,
    about = "ferrafka's in-memory Kafka-protocol development broker"
)]
struct Args {
    /// Address to listen on; 0.0.0.0 accepts connections from other machines.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// Port to listen on; 0 picks a free one.
    #[arg(long, default_value_t = 9092)]
    port: u16,
    /// Address clients are told to connect to (default: --host, or 127.0.0.1 for 0.0.0.0).
    #[arg(long)]
    advertised_host: Option<IpAddr>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let broker =
        match EmbeddedBroker::start_on(SocketAddr::new(args.host, args.port), args.advertised_host)
        {
            Ok(broker) => broker,
            Err(e) => {
                eprintln!("ferrafka-broker: {e}");
                return ExitCode::FAILURE;
            }
        };
    println!("bootstrap.servers={}", broker.bootstrap_servers());
    println!("in-memory development broker; data is lost on exit. Ctrl-C or SIGTERM stops it.");
    if let Err(e) = wait_for_stop_signal() {
        eprintln!("ferrafka-broker: cannot wait for signals: {e}");
        return ExitCode::FAILURE;
    }
    drop(broker);
    println!("stopped");
    ExitCode::SUCCESS
}

/// Blocks until the process receives SIGINT (Ctrl-C) or SIGTERM.
fn wait_for_stop_signal() -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    runtime.block_on(async {
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        Ok(())
    })
}
