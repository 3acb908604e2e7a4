//! Helpers for tests against the embedded broker with plain rdkafka clients.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use ferrafka_broker::EmbeddedBroker;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::BaseConsumer;
use rdkafka::consumer::Consumer;
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::statistics::Statistics;
use rdkafka::{Message, Offset, TopicPartitionList};

/// Longest any consumer may go without reaching the end of its run; a stall fails the test.
const STALL_LIMIT: Duration = Duration::from_secs(20);

/// Chunk sizes the producer cycles through: irregular, so batch bounds fall everywhere.
const CHUNK_SIZES: [i64; 5] = [137, 251, 389, 97, 301];

/// The broker shared by every test of the binary.
pub fn broker() -> &'static EmbeddedBroker {
    static BROKER: OnceLock<EmbeddedBroker> = OnceLock::new();
    BROKER.get_or_init(|| EmbeddedBroker::start().expect("embedded broker starts"))
}

/// Creates `topic` with `partitions` partitions.
pub fn create_topic(topic: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", broker().bootstrap_servers())
        .create()
        .expect("admin client");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let created = runtime
        .block_on(admin.create_topics(
            &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        ))
        .expect("create topics");
    for result in created {
        result.unwrap_or_else(|(name, e)| panic!("creating {name}: {e}"));
    }
}

/// The offsets a producer writes, in chunks that each become one record batch.
#[derive(Clone, Debug)]
pub struct BatchPlan {
    first: i64,
    /// (first offset, record count) of each chunk.
    chunks: Vec<(i64, i64)>,
}

impl BatchPlan {
    /// `messages` records from offset 0, in chunks of [`CHUNK_SIZES`].
    pub fn new(messages: i64) -> Self {
        let mut chunks = Vec::new();
        let mut next = 0;
        for size in CHUNK_SIZES.iter().cycle() {
            if next >= messages {
                break;
            }
            let size = (*size).min(messages - next);
            chunks.push((next, size));
            next += size;
        }
        Self { first: 0, chunks }
    }

    /// The same plan shifted to start at `first`, for appending to a partition.
    pub fn starting_at(mut self, first: i64) -> Self {
        for chunk in &mut self.chunks {
            chunk.0 += first - self.first;
        }
        self.first = first;
        self
    }

    /// An offset at or right after `near` that lies inside a batch, not at its start.
    pub fn inside_batch_near(&self, near: i64) -> i64 {
        let (start, size) = *self
            .chunks
            .iter()
            .find(|(start, size)| near < start + size)
            .expect("offset within the plan");
        assert!(
            size > 2,
            "chunk at {start} too small to hold an inner offset"
        );
        if near == start { near + 1 } else { near }
    }
}

/// What librdkafka's statistics said about the batches a producer sent.
#[derive(Debug, Default)]
pub struct Batching {
    /// Record batches sent.
    pub batches: i64,
    /// Records in the largest batch.
    pub largest_batch: i64,
}

/// Collects batch statistics and checks that every record lands at its planned offset.
#[derive(Default)]
struct PlanContext {
    batching: Mutex<Batching>,
    stats_emitted: AtomicU64,
    misplaced: Mutex<Vec<String>>,
    delivered: AtomicI64,
}

impl PlanContext {
    /// Records the broker acknowledged or refused so far.
    fn acknowledged(&self) -> i64 {
        let misplaced = self.misplaced.lock().expect("lock").len() as i64;
        self.delivered.load(Ordering::SeqCst) + misplaced
    }
}

impl ClientContext for PlanContext {
    fn stats(&self, statistics: Statistics) {
        let mut batching = self.batching.lock().expect("lock");
        for topic in statistics.topics.values() {
            // The windows restart with every emission, so their counts add up.
            batching.batches += topic.batchcnt.cnt;
            batching.largest_batch = batching.largest_batch.max(topic.batchcnt.max);
        }
        self.stats_emitted.fetch_add(1, Ordering::SeqCst);
    }
}

impl ProducerContext for PlanContext {
    type DeliveryOpaque = Box<i64>;

    fn delivery(&self, result: &DeliveryResult<'_>, planned: Box<i64>) {
        let problem = match result {
            Ok(m) if m.offset() == *planned => None,
            Ok(m) => Some(format!("planned {planned}, written at {}", m.offset())),
            Err((e, _)) => Some(format!("planned {planned}: {e}")),
        };
        match problem {
            Some(p) => self.misplaced.lock().expect("lock").push(p),
            None => {
                self.delivered.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
}

/// Writes `plan` to partition 0 of `topic` with a batching, `codec`-compressing producer; the
/// payload of each record is its offset. Returns the producer's batch statistics.
pub fn produce_batched(topic: &str, codec: &str, plan: &BatchPlan) -> Batching {
    let producer: BaseProducer<PlanContext> = ClientConfig::new()
        .set("bootstrap.servers", broker().bootstrap_servers())
        .set("linger.ms", "10")
        .set("compression.type", codec)
        .set("statistics.interval.ms", "1000")
        .create_with_context(PlanContext::default())
        .expect("producer");
    let context = producer.context();
    for &(start, size) in &plan.chunks {
        for offset in start..start + size {
            send(&producer, topic, offset);
        }
        // The chunk lingers into one batch; waiting for its delivery ends that batch before
        // the next chunk starts.
        let deadline = Instant::now() + Duration::from_secs(30);
        while context.acknowledged() < start - plan.first + size {
            assert!(
                Instant::now() < deadline,
                "{topic}: chunk at {start} not delivered"
            );
            producer.poll(Duration::from_millis(1));
        }
    }
    let misplaced = context.misplaced.lock().expect("lock").clone();
    assert!(misplaced.is_empty(), "{topic}: {misplaced:?}");
    let planned: i64 = plan.chunks.iter().map(|(_, size)| size).sum();
    assert_eq!(context.delivered.load(Ordering::SeqCst), planned);
    // One more emission covers the last batches.
    let emitted = context.stats_emitted.load(Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(5);
    while context.stats_emitted.load(Ordering::SeqCst) == emitted && Instant::now() < deadline {
        producer.poll(Duration::from_millis(100));
    }
    std::mem::take(&mut *context.batching.lock().expect("lock"))
}

fn send(producer: &BaseProducer<PlanContext>, topic: &str, offset: i64) {
    let payload = offset.to_string();
    let mut record = BaseRecord::with_opaque_to(topic, Box::new(offset))
        .partition(0)
        .payload(&payload)
        .key("");
    loop {
        match producer.send(record) {
            Ok(()) => return,
            Err((e, returned)) => {
                assert!(
                    matches!(
                        e.rdkafka_error_code(),
                        Some(rdkafka::types::RDKafkaErrorCode::QueueFull)
                    ),
                    "send: {e}"
                );
                record = returned;
                producer.poll(Duration::from_millis(10));
            }
        }
    }
}

/// A consumer in `group` that commits only when told and fails loudly on a bad offset.
pub fn consumer(group: &str, extra: &[(&str, &str)]) -> BaseConsumer {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", broker().bootstrap_servers())
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "error");
    for (key, value) in extra {
        config.set(*key, *value);
    }
    config.create().expect("consumer")
}

/// Assigns partition 0 of `topic`, starting at `offset`.
pub fn assign_at(consumer: &BaseConsumer, topic: &str, offset: Offset) {
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, 0, offset)
        .expect("offset");
    consumer.assign(&assignment).expect("assign");
}

/// Polls until the consumer has seen exactly the offsets `first..end` of partition 0, in order,
/// each record's payload its own offset; fails on a gap, a repeat, an error or a stall.
pub fn expect_run(consumer: &BaseConsumer, topic: &str, first: i64, end: i64) {
    let deadline = Instant::now() + STALL_LIMIT;
    let mut next = first;
    while next < end {
        assert!(
            Instant::now() < deadline,
            "{topic}: stalled at offset {next} of {first}..{end}"
        );
        let message = match consumer.poll(Duration::from_millis(100)) {
            None => continue,
            Some(Err(e)) => panic!("{topic}: error at offset {next} of {first}..{end}: {e}"),
            Some(Ok(message)) => message,
        };
        assert_eq!(
            (message.topic(), message.partition()),
            (topic, 0),
            "unexpected partition"
        );
        assert_eq!(
            message.offset(),
            next,
            "{topic}: expected offset {next} in run {first}..{end}"
        );
        let payload = message.payload_view::<str>().and_then(Result::ok);
        assert_eq!(payload, Some(next.to_string().as_str()), "{topic}: payload");
        next += 1;
    }
}
