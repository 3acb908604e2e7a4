//! What the driver asks of the world around it: a consumer to pause, seek and store offsets
//! on ([`PartitionClient`]), executors to hand batches to ([`Workers`]), and fetched messages
//! ([`Fetched`]). `server` provides librdkafka and tokio tasks; the testing harness an
//! in-memory log and the same tokio tasks; the model test a simulation of both.

use std::sync::Arc;
use std::time::SystemTime;

use crate::consumer::{MarkSink, PartitionHandle, SeekTo};
use crate::messages::{Message, TopicInfo};
use crate::processing::executor::Job;
use crate::routing::Topic;

/// The consumer operations a partition's effects need. Failures are the implementation's to
/// log; only a seek's result matters to the state machine.
pub(crate) trait PartitionClient {
    /// How the client names one assigned partition (made once per assignment, so the hot
    /// path allocates nothing).
    type Target;
    /// The target of `topic`/`partition`.
    fn target(&self, topic: &Arc<str>, partition: i32) -> Self::Target;
    /// Stops or restarts fetching one partition.
    fn set_paused(&self, target: &Self::Target, paused: bool);
    /// Stores `next` as the partition's offset for the next commit.
    fn store_offset(&self, target: &mut Self::Target, next: i64);
    /// Moves the partition's fetch position; false when the client refused.
    fn seek(&self, target: &Self::Target, to: SeekTo) -> bool;
    /// Commits every stored offset now.
    fn commit_sync(&self, group: &str);
}

/// Executors: one per assignment of a partition, each running the jobs it is sent in order.
pub(crate) trait Workers {
    /// One partition's executor.
    type Worker;
    /// Where a running batch's marks go (see [`PartitionHandle`]).
    fn mark_sink(&self, topic: &Arc<str>, partition: i32, generation: u64) -> MarkSink;
    /// Starts an executor for the assignment of `handle`.
    fn start(&mut self, topic: &Arc<Topic>, handle: &Arc<PartitionHandle>) -> Self::Worker;
    /// Hands `job` to `worker`; false when the worker is gone.
    fn send(&mut self, worker: &Self::Worker, job: Job) -> bool;
    /// The worker ended, with or without saying so (an abort, a panic outside its guards).
    fn has_ended(&self, worker: &Self::Worker) -> bool;
    /// Ends the worker at its next await point.
    fn abort(&mut self, worker: &Self::Worker);
}

/// A message as fetched, before it becomes a [`Message`] of its topic.
pub(crate) trait Fetched {
    /// Its topic's name.
    fn topic(&self) -> &str;
    /// Its partition.
    fn partition(&self) -> i32;
    /// Equal for messages of the same topic: lets the driver look a partition up once per
    /// run of its messages.
    fn topic_key(&self) -> usize;
    /// The message, read in place where possible.
    fn into_message(self, info: &Arc<TopicInfo>, received_at: SystemTime) -> Message;
}

impl Fetched for crate::messages::KafkaMessage {
    fn topic(&self) -> &str {
        crate::messages::KafkaMessage::topic(self)
    }

    fn partition(&self) -> i32 {
        crate::messages::KafkaMessage::partition(self)
    }

    fn topic_key(&self) -> usize {
        self.topic_handle()
    }

    fn into_message(self, info: &Arc<TopicInfo>, received_at: SystemTime) -> Message {
        Message::from_kafka(info.clone(), self, received_at)
    }
}

impl Fetched for Message {
    fn topic(&self) -> &str {
        Message::topic(self)
    }

    fn partition(&self) -> i32 {
        self.partition
    }

    fn topic_key(&self) -> usize {
        Arc::as_ptr(&self.topic) as *const u8 as usize
    }

    fn into_message(self, _: &Arc<TopicInfo>, _: SystemTime) -> Message {
        self
    }
}
