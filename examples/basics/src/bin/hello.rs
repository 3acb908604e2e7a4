//! The smallest ferrafka app: one topic, one consumer, batches and their order.
//!
//! ```sh
//! cargo run -p example-basics --bin hello     # embedded broker, nothing to set up
//! ```
//!
//! It produces 30 visits keyed by user id to a topic with 3 partitions: the key picks the
//! partition, so all visits of one user land in one partition, in the order they were sent.
//! The consumer receives **batches**: each batch holds messages of one partition, in offset
//! order, and the next batch of that partition starts only when this one returned. Partitions
//! run in parallel, each on its own consumer instance. Returning `Ok` marks the batch as
//! consumed (an `Err` would retry it after a pause).
//!
//! The program checks that every message was processed exactly once and that, within each
//! partition, offsets arrived in ascending order; then it prints the batches it saw.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferrafka::{App, ConsumeResult, Consumer, Context, Filters, Messages, ServerExit};

/// One processed batch: its partition and the offsets it held, in the order received.
type Batch = (i32, Vec<i64>);

/// Records every batch it processes.
struct Visits {
    batches: Arc<Mutex<Vec<Batch>>>,
}

impl Consumer for Visits {
    async fn consume(&mut self, ctx: &mut Context, messages: &Messages) -> ConsumeResult {
        let offsets = messages.iter().map(|m| m.offset()).collect();
        self.batches
            .lock()
            .unwrap()
            .push((ctx.partition(), offsets));
        Ok(()) // the whole batch is marked as consumed
    }
}

fn main() -> ExitCode {
    example_basics::run("hello", run)
}

fn run() -> Result<(), example_basics::Error> {
    let sandbox = example_basics::Sandbox::start()?;
    let topic = sandbox.fresh_topic("visits", 3)?;
    let visits: Vec<(String, String)> = (0..30)
        .map(|i| (format!("user-{}", i % 5), format!("visit {i}")))
        .collect();
    sandbox.produce_keyed(&topic, &visits)?;

    let batches = Arc::new(Mutex::new(Vec::new()));
    let app = {
        let (batches, bootstrap, topic) = (batches.clone(), sandbox.bootstrap.clone(), &topic);
        App::builder()
            .setup(|c| {
                c.client_id("hello")
                    .kafka("bootstrap.servers", bootstrap)
                    // A batch waits at most this long to fill up (1 s by default).
                    .max_wait_time(Duration::from_millis(100));
            })
            .routes(|r| {
                r.topic(topic.as_str())
                    // Small batches (100 by default), so a partition takes several.
                    .max_messages(5)
                    .consumer(move || Visits {
                        batches: batches.clone(),
                    });
            })
            .build()
    };
    let server = app.start(&Filters::default())?;
    let count = || {
        batches
            .lock()
            .unwrap()
            .iter()
            .map(|b| b.1.len())
            .sum::<usize>()
    };
    example_basics::wait_until(Duration::from_secs(30), || count() >= visits.len());
    let exit = server.shutdown();
    if exit != ServerExit::Clean {
        return Err(format!("the server did not stop cleanly: {exit:?}").into());
    }

    // Per partition, the offsets in the order they were processed.
    let batches = batches.lock().unwrap().clone();
    let mut seen: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    for (partition, offsets) in &batches {
        seen.entry(*partition).or_default().extend(offsets);
    }
    let mut stored = 0;
    for partition in 0..3 {
        // What the broker holds: offsets 0 up to the partition's high watermark.
        let (_, high) = sandbox.admin.watermarks(&topic, partition)?;
        stored += high;
        let expected: Vec<i64> = (0..high).collect();
        let got = seen.get(&partition).cloned().unwrap_or_default();
        if got != expected {
            return Err(format!(
                "partition {partition}: expected offsets {expected:?} once each, in order, \
                 got {got:?}"
            )
            .into());
        }
    }
    if stored != visits.len() as i64 {
        return Err(format!("the broker holds {stored} messages, not {}", visits.len()).into());
    }

    let sizes: Vec<String> = batches
        .iter()
        .map(|(partition, offsets)| format!("p{partition}:{}", offsets.len()))
        .collect();
    println!("batches (partition:size): {}", sizes.join(" "));
    for (partition, offsets) in &seen {
        println!("partition {partition}: {} messages", offsets.len());
    }
    println!("{stored} messages processed exactly once, in offset order within each partition");
    Ok(())
}
