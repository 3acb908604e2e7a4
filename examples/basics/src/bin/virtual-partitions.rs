//! Virtual partitions: parallelism inside one Kafka partition, order kept per key.
//!
//! ```sh
//! cargo run -p example-basics --bin virtual-partitions     # embedded broker, nothing to set up
//! ```
//!
//! A partition's batches normally run one at a time: one partition, one consumer at work. With
//! `.virtual_partitions(VirtualPartitions::new(GROUPS))` each batch is split into up to 3 groups by
//! message key (a stable hash; `.partitioner(f)` groups by something else, e.g. a header), and
//! the groups run in parallel, each on its own consumer instance. One key always lands in the
//! same group, and a group runs its messages in offset order: **per-key order is kept**; there
//! is no order between keys. The partition's offset advances only past messages every group
//! finished (see `docs/virtual-partitions.md`).
//!
//! It produces 60 messages with 6 keys to a topic with a single partition. The consumer sleeps
//! 5 ms per message (slow work) and counts how many groups are running at the same moment.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferrafka::{
    App, ConsumeResult, Consumer, Context, Filters, Messages, ServerExit, VirtualPartitions,
};

const MESSAGES: i64 = 60;
/// Virtual partitions: the most groups a batch is split into.
const GROUPS: usize = 3;

/// What every group's consumer instance shares.
#[derive(Default)]
struct Shared {
    seen: Mutex<Vec<(String, i64)>>,
    running: AtomicUsize,
    most_running: AtomicUsize,
    instances: AtomicUsize,
}

/// A slow consumer; one instance per virtual partition.
struct Slow(Arc<Shared>);

impl Consumer for Slow {
    async fn consume(&mut self, _ctx: &mut Context, messages: &Messages) -> ConsumeResult {
        let now = self.0.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.0.most_running.fetch_max(now, Ordering::SeqCst);
        for m in messages {
            tokio::time::sleep(Duration::from_millis(5)).await; // the slow work
            let key = m.key_str().unwrap_or_default().to_string();
            self.0.seen.lock().unwrap().push((key, m.offset()));
        }
        self.0.running.fetch_sub(1, Ordering::SeqCst);
        Ok(())
    }
}

fn main() -> ExitCode {
    example_basics::run("virtual-partitions", run)
}

fn run() -> Result<(), example_basics::Error> {
    let sandbox = example_basics::Sandbox::start()?;
    let topic = sandbox.fresh_topic("events", 1)?;
    let events: Vec<(String, String)> = (0..MESSAGES)
        .map(|i| (format!("user-{}", i % 6), format!("event {i}")))
        .collect();
    sandbox.produce_keyed(&topic, &events)?;

    let shared = Arc::new(Shared::default());
    let app = {
        let (shared, bootstrap) = (shared.clone(), sandbox.bootstrap.clone());
        App::builder()
            .setup(|c| {
                c.client_id("virtual-partitions")
                    .kafka("bootstrap.servers", bootstrap)
                    .max_wait_time(Duration::from_millis(100));
            })
            .routes(|r| {
                r.topic(topic.as_str())
                    .consumer(move || {
                        shared.instances.fetch_add(1, Ordering::SeqCst);
                        Slow(shared.clone())
                    })
                    .virtual_partitions(VirtualPartitions::new(GROUPS));
            })
            .build()
    };
    let server = app.start(&Filters::default())?;
    let seen_count = || shared.seen.lock().unwrap().len();
    example_basics::wait_until(Duration::from_secs(30), || {
        seen_count() >= MESSAGES as usize
    });
    let exit = server.shutdown();
    if exit != ServerExit::Clean {
        return Err(format!("the server did not stop cleanly: {exit:?}").into());
    }

    let seen = shared.seen.lock().unwrap().clone();
    let mut offsets: Vec<i64> = seen.iter().map(|(_, offset)| *offset).collect();
    offsets.sort_unstable();
    if offsets != (0..MESSAGES).collect::<Vec<_>>() {
        return Err(format!("expected offsets 0..{MESSAGES} once each, got {offsets:?}").into());
    }
    let mut per_key: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for (key, offset) in &seen {
        per_key.entry(key).or_default().push(*offset);
    }
    for (key, offsets) in &per_key {
        if !offsets.is_sorted() {
            return Err(format!("{key}: offsets out of order: {offsets:?}").into());
        }
        // The default partitioner's choice, computed the same way.
        let group = VirtualPartitions::hash(key.as_bytes()) % GROUPS as u64;
        println!(
            "{key} (group {group}): {} messages, offsets ascending",
            offsets.len()
        );
    }
    let most = shared.most_running.load(Ordering::SeqCst);
    println!(
        "{MESSAGES} messages processed once by {} consumer instances, \
         at most {most} groups running at once",
        shared.instances.load(Ordering::SeqCst)
    );
    if most < 2 {
        return Err("the groups never ran in parallel".into());
    }
    Ok(())
}
