//! The driver's [`PartitionClient`] on librdkafka: what a partition's effects ask of the
//! consumer (pause, resume, store, seek, commit).

use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::{Offset, TopicPartitionList};

use super::ListenerConsumer;
use crate::consumer::SeekTo;
use crate::processing::driver::PartitionClient;

/// How long a seek (and a seek by time's offset lookup) may wait for librdkafka.
const SEEK_TIMEOUT: Duration = Duration::from_secs(10);

/// One assigned partition as librdkafka's calls take it: a one-element partition list made
/// once per assignment and reused, so pausing and storing offsets allocate nothing.
pub(crate) struct PartitionTarget {
    /// The consumer group it is assigned in, for logs.
    consumer_group: Arc<str>,
    topic: Arc<str>,
    partition: i32,
    list: TopicPartitionList,
}

impl PartitionTarget {
    pub(crate) fn new(consumer_group: Arc<str>, topic: Arc<str>, partition: i32) -> Self {
        let list = partition_list(&topic, partition, None);
        PartitionTarget {
            consumer_group,
            topic,
            partition,
            list,
        }
    }

    /// (consumer group, topic, partition), as log lines name the partition.
    fn names(&self) -> (&str, &str, i32) {
        (&self.consumer_group, &self.topic, self.partition)
    }
}

fn partition_list(topic: &str, partition: i32, offset: Option<Offset>) -> TopicPartitionList {
    let mut tpl = TopicPartitionList::with_capacity(1);
    match offset {
        Some(offset) => {
            let _ = tpl.add_partition_offset(topic, partition, offset);
        }
        None => {
            tpl.add_partition(topic, partition);
        }
    }
    tpl
}

impl PartitionClient for ListenerConsumer {
    type Target = PartitionTarget;

    fn target(&self, topic: &Arc<str>, partition: i32) -> PartitionTarget {
        let group = self.context().statistics.consumer_group.as_deref();
        PartitionTarget::new(group.unwrap_or_default().into(), topic.clone(), partition)
    }

    fn set_paused(&self, target: &PartitionTarget, paused: bool) {
        let result = if paused {
            self.pause(&target.list)
        } else {
            self.resume(&target.list)
        };
        let (consumer_group, topic, partition) = target.names();
        match result {
            Ok(()) => {
                tracing::debug!(
                    consumer_group,
                    topic,
                    partition,
                    paused,
                    "fetch pause changed"
                )
            }
            Err(e) => {
                tracing::warn!(consumer_group, topic, partition, paused, error = %e, "cannot change the fetch pause")
            }
        }
    }

    fn store_offset(&self, target: &mut PartitionTarget, next: i64) {
        let stored = target
            .list
            .set_all_offsets(Offset::Offset(next))
            .and_then(|()| self.store_offsets(&target.list));
        if let Err(e) = stored {
            // Only when the partition is no longer assigned: its new owner redoes the work.
            let (consumer_group, topic, partition) = target.names();
            tracing::warn!(consumer_group, topic, partition, next, error = %e, "offset not stored");
        }
    }

    fn seek(&self, target: &PartitionTarget, to: SeekTo) -> bool {
        let (consumer_group, topic, partition) = target.names();
        let offset = match to {
            SeekTo::Offset(o) => Offset::Offset(o),
            SeekTo::Earliest => Offset::Beginning,
            SeekTo::Latest => Offset::End,
            SeekTo::Time(t) => {
                let millis = t
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_millis() as i64)
                    .unwrap_or(0);
                let tpl = partition_list(topic, partition, Some(Offset::Offset(millis)));
                match self.offsets_for_times(tpl, SEEK_TIMEOUT) {
                    Ok(found) => found
                        .find_partition(topic, partition)
                        .map(|e| e.offset())
                        .unwrap_or(Offset::End),
                    Err(e) => {
                        tracing::error!(consumer_group, topic, partition, error = %e, "seek by time failed: cannot look up the offset; processing goes on from where it was");
                        return false;
                    }
                }
            }
        };
        match Consumer::seek(self, topic, partition, offset, SEEK_TIMEOUT) {
            Ok(()) => {
                tracing::info!(
                    consumer_group,
                    topic,
                    partition,
                    ?offset,
                    "partition seeked"
                );
                true
            }
            Err(e) => {
                tracing::error!(consumer_group, topic, partition, ?offset, error = %e, "seek failed; processing goes on from where it was");
                false
            }
        }
    }

    fn commit_sync(&self, group: &str) {
        match self.commit_consumer_state(CommitMode::Sync) {
            Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
            Err(e) => {
                tracing::error!(subscription_group = %group, error = %e, "synchronous commit failed: the uncommitted batches will be processed again")
            }
        }
    }
}
