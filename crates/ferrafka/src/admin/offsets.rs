//! End offsets of many partitions in one round trip per broker.

use rdkafka::consumer::Consumer as _;
use rdkafka::{Offset, TopicPartitionList};

use super::{Admin, kafka_error};
use crate::error::Result;
use crate::kafka::known_offset;

impl Admin {
    /// The end offset of each partition: the next offset a producer will write, or for
    /// `isolation.level=read_committed` (librdkafka's default) the last stable offset. One
    /// ListOffsets request per leader, unlike [`Admin::watermarks`]' one per partition.
    /// Partitions the broker could not answer for are left out.
    pub fn end_offsets(&self, partitions: &[(String, i32)]) -> Result<Vec<((String, i32), i64)>> {
        let mut tpl = TopicPartitionList::new();
        for (topic, partition) in partitions {
            // A ListOffsets "timestamp" of -1 asks for the latest offset.
            tpl.add_partition_offset(topic, *partition, Offset::End)
                .map_err(|e| kafka_error("end offsets", topic.clone(), &e))?;
        }
        let found = self
            .metadata
            .offsets_for_times(tpl, self.timeout)
            .map_err(|e| {
                kafka_error(
                    "end offsets",
                    format!("{} partitions", partitions.len()),
                    &e,
                )
            })?;
        Ok(found
            .elements()
            .iter()
            .filter(|e| e.error().is_ok())
            .filter_map(|e| {
                known_offset(e.offset()).map(|o| ((e.topic().to_string(), e.partition()), o))
            })
            .collect())
    }
}
