//! The three ways to produce with ferrafka's `Producer`.
//!
//! ```sh
//! cargo run -p example-basics --bin producer     # embedded broker, nothing to set up
//! ```
//!
//! - `produce(record).await` waits for the broker's acknowledgement and returns where the
//!   message landed (partition and offset): for messages you must know are stored.
//! - `produce_async(record)` only queues the message and returns at once: fire-and-forget, the
//!   fastest way. A failed delivery is logged and counted in `failed_deliveries()`; call
//!   `flush` before exiting so queued messages are not lost.
//! - `produce_many(records).await` queues many and waits until all are acknowledged.
//!
//! Inside a consumer the app's producer is `ctx.producer()`; outside, `Producer::new` (here) or
//! `app.producer()`. The program then reads the topic back with `Admin::read_messages` and
//! checks that every payload arrived once, the awaited ones where `produce` said.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use ferrafka::Record;
use ferrafka::admin::OffsetSpec;
use ferrafka::rdkafka::Message as _;

const PARTITIONS: i32 = 3;

fn main() -> ExitCode {
    example_basics::run("producer", run)
}

fn run() -> Result<(), example_basics::Error> {
    let sandbox = example_basics::Sandbox::start()?;
    let topic = sandbox.fresh_topic("orders", PARTITIONS)?;
    let producer = sandbox.producer()?;
    let mut expected = Vec::new();

    // 1. Awaited: one at a time, each acknowledged before the next is sent.
    let mut delivered = BTreeMap::new();
    for i in 0..3 {
        let (key, payload) = (format!("order-{i}"), format!("awaited {i}"));
        let record = Record::to(&topic).key(&key).payload(&payload);
        let delivery = sandbox.runtime.block_on(producer.produce(record))?;
        println!(
            "produce: {payload:?} -> partition {} offset {}",
            delivery.partition, delivery.offset
        );
        delivered.insert(payload.clone(), (delivery.partition, delivery.offset));
        expected.push(payload);
    }

    // 2. Fire-and-forget: queued only; flush waits until the broker has them.
    for i in 0..10 {
        let (key, payload) = (format!("order-{i}"), format!("async {i}"));
        producer.produce_async(Record::to(&topic).key(&key).payload(&payload))?;
        expected.push(payload);
    }
    producer.flush(Duration::from_secs(10))?;
    if producer.failed_deliveries() > 0 {
        return Err(format!("{} deliveries failed", producer.failed_deliveries()).into());
    }
    println!("produce_async: 10 queued, flushed, 0 failed deliveries");

    // 3. Batched: all queued at once, one wait for all acknowledgements.
    let many: Vec<(String, String)> = (0..20)
        .map(|i| (format!("order-{i}"), format!("many {i}")))
        .collect();
    let records = many
        .iter()
        .map(|(key, payload)| Record::to(&topic).key(key).payload(payload));
    let count = sandbox.runtime.block_on(producer.produce_many(records))?;
    println!("produce_many: {count} acknowledged");
    expected.extend(many.into_iter().map(|(_, payload)| payload));

    // Read everything back, partition by partition.
    let mut found = BTreeMap::new();
    for partition in 0..PARTITIONS {
        let (low, high) = sandbox.admin.watermarks(&topic, partition)?;
        let count = usize::try_from(high - low)?;
        for m in sandbox
            .admin
            .read_messages(&topic, partition, OffsetSpec::Earliest, count)?
        {
            let payload = String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned();
            if found
                .insert(payload.clone(), (partition, m.offset()))
                .is_some()
            {
                return Err(format!("{payload:?} was stored twice").into());
            }
        }
    }
    expected.sort();
    let stored: Vec<&String> = found.keys().collect();
    if stored != expected.iter().collect::<Vec<_>>() {
        return Err(format!("expected {expected:?}, the topic holds {stored:?}").into());
    }
    for (payload, at) in &delivered {
        if found.get(payload) != Some(at) {
            return Err(format!("{payload:?} is not where produce said ({at:?})").into());
        }
    }
    println!(
        "read back {} messages from {PARTITIONS} partitions: 3 awaited (where produce said), \
         10 async, 20 batched, each once",
        found.len()
    );
    Ok(())
}
