//! The `virtual` phase: what virtual partitions buy a CPU-bound consumer on one partition.
//!
//! One partition holds `MESSAGES` messages with distinct keys; a consumer busy-spins about
//! `WORK` per message (real CPU work, not a sleep, so only more cores make it faster). The
//! same topic is consumed, each time by a fresh consumer group, without virtual partitions and
//! with 1, 2 and 4 of them, `concurrency` 2. Measured: from the first message handed to a
//! consumer to the last one finished; printed as messages per second and the speed-up over
//! the run without virtual partitions.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use ferrafka::admin::{Admin, TopicSpec};
use ferrafka::{
    App, ConsumeResult, Consumer, Context, Filters, Messages, Producer, Record, ServerExit,
    VirtualPartitions,
};

const MESSAGES: u64 = 2_000;
const WORK: Duration = Duration::from_millis(1);
const CONCURRENCY: usize = 2;

/// Spins for `WORK` per message and counts what it finished.
struct Spinner {
    progress: Arc<Progress>,
}

#[derive(Default)]
struct Progress {
    done: AtomicU64,
    first: Mutex<Option<Instant>>,
    last: Mutex<Option<Instant>>,
}

impl Consumer for Spinner {
    async fn consume(&mut self, _ctx: &mut Context, messages: &Messages) -> ConsumeResult {
        self.progress
            .first
            .lock()
            .expect("not poisoned")
            .get_or_insert_with(Instant::now);
        for _ in messages {
            let until = Instant::now() + WORK;
            while Instant::now() < until {
                std::hint::spin_loop();
            }
        }
        let done = self
            .progress
            .done
            .fetch_add(messages.len() as u64, Ordering::SeqCst);
        if done + messages.len() as u64 >= MESSAGES {
            *self.progress.last.lock().expect("not poisoned") = Some(Instant::now());
        }
        Ok(())
    }
}

/// Runs the phase on the cluster at `bootstrap` and prints its table.
pub fn run(bootstrap: &str, rt: &tokio::runtime::Runtime, run_id: &str) -> Result<()> {
    let topic = format!("ferrafka-bench-virtual-{run_id}");
    fill(bootstrap, rt, &topic)?;
    println!(
        "virtual partitions: {MESSAGES} messages with distinct keys on 1 partition, \
         ~{WORK:?} of CPU per message, concurrency {CONCURRENCY}"
    );
    println!("  {:<26} {:>12} {:>9}", "setup", "messages/s", "speed-up");
    let mut baseline = None;
    for (i, vp) in [None, Some(1), Some(2), Some(4)].into_iter().enumerate() {
        let rate = measure(bootstrap, &topic, &format!("{topic}-g{i}"), vp)?;
        let base = *baseline.get_or_insert(rate);
        let name = vp.map_or("no virtual partitions".to_string(), |n| {
            format!("{n} virtual partition(s)")
        });
        println!("  {name:<26} {rate:>12.0} {:>8.2}x", rate / base);
    }
    Ok(())
}

fn fill(bootstrap: &str, rt: &tokio::runtime::Runtime, topic: &str) -> Result<()> {
    let admin = Admin::connect(bootstrap)?;
    rt.block_on(admin.create_topic(&TopicSpec::new(topic, 1)))
        .with_context(|| format!("creating {topic}"))?;
    let kafka = std::collections::BTreeMap::from([
        ("bootstrap.servers".to_string(), bootstrap.to_string()),
        ("linger.ms".to_string(), "5".to_string()),
    ]);
    let producer = Producer::new(&kafka)?;
    let keys: Vec<String> = (0..MESSAGES).map(|n| format!("key-{n}")).collect();
    let records = keys.iter().map(|k| Record::to(topic).key(k).payload(k));
    rt.block_on(producer.produce_many(records))?;
    Ok(())
}

/// Consumes the whole topic with a fresh group; messages per second of the busy part.
fn measure(bootstrap: &str, topic: &str, group: &str, vp: Option<usize>) -> Result<f64> {
    let progress = Arc::new(Progress::default());
    let app = app(bootstrap, topic, group, vp, progress.clone());
    let server = app.start(&Filters::default())?;
    let deadline = Instant::now() + Duration::from_secs(120);
    while progress.done.load(Ordering::SeqCst) < MESSAGES && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let exit = server.shutdown();
    if exit != ServerExit::Clean {
        bail!("the server stopped with {exit:?}");
    }
    let first = *progress.first.lock().expect("not poisoned");
    let last = *progress.last.lock().expect("not poisoned");
    let (Some(first), Some(last)) = (first, last) else {
        bail!(
            "only {} of {MESSAGES} messages consumed",
            progress.done.load(Ordering::SeqCst)
        );
    };
    Ok(MESSAGES as f64 / last.duration_since(first).as_secs_f64())
}

fn app(
    bootstrap: &str,
    topic: &str,
    group: &str,
    vp: Option<usize>,
    progress: Arc<Progress>,
) -> App {
    let (bootstrap, topic, group) = (bootstrap.to_string(), topic.to_string(), group.to_string());
    App::builder()
        .setup(move |c| {
            c.client_id("ferrafka-bench")
                .group_id(group)
                .kafka("bootstrap.servers", bootstrap)
                .max_messages(100)
                .concurrency(CONCURRENCY)
                .consumer_persistence(true);
        })
        .routes(move |r| {
            let route = r.topic(topic).consumer(move || Spinner {
                progress: progress.clone(),
            });
            if let Some(n) = vp {
                route.virtual_partitions(VirtualPartitions::new(n));
            }
        })
        .build_with_env([])
}
