//! Declarative topics against an embedded broker, no Kafka needed:
//!
//! ```text
//! cargo run -p example-topics
//! ```
//!
//! Declares a consumed topic inline on its route and a dead-letter topic in the declarations
//! block, then runs `topics plan`, `topics migrate`, `topics plan` again (nothing to do),
//! `topics list`, and `topics lock` + `topics check` with a lock file in a temp directory.

use std::process::ExitCode;

use clap::Parser;
use ferrafka::cli::topics::{execute, exit_code};
use ferrafka::cli::{Cli, Command};
use ferrafka::{App, ConsumeResult, Consumer, Context, Messages};

struct Orders;

impl Consumer for Orders {
    async fn consume(&mut self, _ctx: &mut Context, messages: &Messages) -> ConsumeResult {
        for m in messages {
            println!("order {:?}", m.payload());
        }
        Ok(())
    }
}

fn main() -> ExitCode {
    let broker = ferrafka_broker::EmbeddedBroker::start().expect("embedded broker starts");
    let bootstrap = broker.bootstrap_servers();
    let app = App::builder()
        .setup(|c| {
            c.client_id("shop").kafka("bootstrap.servers", bootstrap);
        })
        .declarations(|d| {
            // Every declaration starts from these.
            d.defaults(|t| t.replication_factor(1).setting("cleanup.policy", "delete"));
            // Nobody here consumes the dead-letter topic, so it is declared in the block.
            d.topic("orders-dlq", |t| {
                t.partitions(1).setting("retention.ms", "604800000")
            });
        })
        .routes(|r| {
            r.topic("orders")
                .consumer(|| Orders)
                .config(|t| t.partitions(3).setting("retention.ms", "86400000"));
        })
        .build();

    let lock = std::env::temp_dir().join(format!("example-topics-{}.lock", std::process::id()));
    let lock = lock.to_string_lossy().into_owned();
    let steps: [&[&str]; 6] = [
        &["plan", "--detailed-exitcode"],
        &["migrate"],
        &["plan", "--detailed-exitcode"],
        &["list"],
        &["lock", "--lock-file", &lock],
        &["check", "--lock-file", &lock],
    ];
    for words in steps {
        let mut argv = vec!["example-topics", "topics"];
        argv.extend_from_slice(words);
        let Command::Topics(args) = Cli::parse_from(&argv).command else {
            unreachable!("parsed a topics command");
        };
        println!("$ {}", argv[1..].join(" "));
        let mut out = std::io::stdout().lock();
        let result = execute(&app, &args, &mut out);
        let code = exit_code(&result, args.detailed_exitcode);
        if let Err(e) = &result {
            eprintln!("error: {e}");
            return ExitCode::from(code);
        }
        println!("(exit {code})\n");
    }
    let _ = std::fs::remove_file(&lock);
    ExitCode::SUCCESS
}
