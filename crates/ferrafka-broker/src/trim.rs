//! Cutting the records before a fetch offset off a record batch.
//!
//! Kafka brokers answer a fetch from inside a batch with the whole batch and let the client skip
//! the records before the offset. tansu 0.6.0's fetch service cannot do that: it computes the
//! next offset to read as the fetch offset plus the record counts of the returned batches, so a
//! batch that starts before the fetch offset would make it skip records. The batch is therefore
//! rebuilt to start exactly at the fetch offset.

use tansu_sans_io::record::{self, deflated, inflated};

/// The compression bits of a record batch's attributes (the other bits say timestamp type,
/// transactional and control, and are kept).
const COMPRESSION_BITS: i16 = 0b111;

/// Returns `batch` without its records before `offset`, its base offset moved to `offset`.
///
/// The rebuilt batch is uncompressed whatever the original codec: consumers accept any codec
/// per batch, only the first batch of a fetch from inside a batch is rebuilt, and tansu 0.6.0
/// cannot compress snappy. `offset` must lie within the batch.
pub(crate) fn trim_to_offset(
    batch: deflated::Batch,
    offset: i64,
) -> Result<deflated::Batch, tansu_sans_io::Error> {
    let skipped = i32::try_from(offset - batch.base_offset)?;
    debug_assert!(
        (1..=batch.last_offset_delta).contains(&skipped),
        "offset {offset} outside batch {}..={}",
        batch.base_offset,
        batch.max_offset()
    );
    let batch = inflated::Batch::try_from(batch)?;
    let mut trimmed = inflated::Batch::builder()
        .base_offset(offset)
        .partition_leader_epoch(batch.partition_leader_epoch)
        .magic(batch.magic)
        .attributes(batch.attributes & !COMPRESSION_BITS)
        .last_offset_delta(batch.last_offset_delta - skipped)
        // Record timestamps stay base + delta, so the base timestamp and the deltas are kept.
        .base_timestamp(batch.base_timestamp)
        .max_timestamp(batch.max_timestamp)
        .producer_id(batch.producer_id)
        .producer_epoch(batch.producer_epoch)
        .base_sequence(shifted_sequence(batch.base_sequence, skipped));
    for kept in batch
        .records
        .into_iter()
        .filter(|r| r.offset_delta >= skipped)
    {
        let offset_delta = kept.offset_delta - skipped;
        // Rebuilding through the builder recomputes each record's length for its new delta.
        trimmed = trimmed.record(record::Builder::from(kept).offset_delta(offset_delta));
    }
    deflated::Batch::try_from(trimmed.build()?)
}

/// The producer sequence of the first kept record; -1 (no idempotent producer) stays -1.
fn shifted_sequence(base_sequence: i32, skipped: i32) -> i32 {
    if base_sequence < 0 {
        base_sequence
    } else {
        base_sequence.wrapping_add(skipped)
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use tansu_sans_io::Compression;
    use tansu_sans_io::record::Record;

    use super::*;

    const BASE: i64 = 1_000;
    const COUNT: i32 = 50;
    const TIMESTAMP: i64 = 1_700_000_000_000;

    /// A batch of `COUNT` keyed records at `BASE..`, uncompressed; record `i` is `value-i`.
    fn plain_batch() -> deflated::Batch {
        let mut builder = inflated::Batch::builder()
            .base_offset(BASE)
            .last_offset_delta(COUNT - 1)
            .base_timestamp(TIMESTAMP)
            .max_timestamp(TIMESTAMP + i64::from(COUNT - 1))
            .producer_id(7)
            .base_sequence(100);
        for i in 0..COUNT {
            builder = builder.record(
                Record::builder()
                    .offset_delta(i)
                    .timestamp_delta(i64::from(i))
                    .key(Some(Bytes::from(format!("key-{}", i % 3))))
                    .value(Some(Bytes::from(format!("value-{i}")))),
            );
        }
        deflated::Batch::try_from(builder.build().expect("batch builds")).expect("deflates")
    }

    /// `plain_batch` compressed with `codec`.
    fn batch_with(codec: &Compression) -> deflated::Batch {
        let plain = plain_batch();
        let record_data = match codec {
            // tansu 0.6.0 compresses every codec but snappy; snappy is done here by hand.
            Compression::Snappy => Bytes::from(
                snap::raw::Encoder::new()
                    .compress_vec(&plain.record_data)
                    .expect("snappy compresses"),
            ),
            Compression::None => return plain,
            other => {
                let mut batch = inflated::Batch::try_from(plain).expect("inflates");
                batch.attributes = i16::from(other.clone());
                return deflated::Batch::try_from(batch).expect("compresses");
            }
        };
        deflated::Batch {
            attributes: i16::from(Compression::Snappy),
            record_data,
            ..plain
        }
    }

    fn assert_trimmed(codec: &Compression, offset: i64) {
        let batch = batch_with(codec);
        assert_eq!(batch.compression_code(), i16::from(codec.clone()));
        let trimmed = trim_to_offset(batch, offset).expect("trims");
        let expected_count = BASE + i64::from(COUNT) - offset;
        assert_eq!(trimmed.base_offset, offset);
        assert_eq!(i64::from(trimmed.record_count), expected_count);
        assert_eq!(trimmed.max_offset(), BASE + i64::from(COUNT) - 1);
        assert_eq!(trimmed.attributes & COMPRESSION_BITS, 0);
        assert_eq!(trimmed.producer_id, 7);
        assert_eq!(i64::from(trimmed.base_sequence), 100 + offset - BASE);

        let records = inflated::Batch::try_from(trimmed)
            .expect("inflates")
            .records;
        let first = i32::try_from(offset - BASE).expect("small");
        let values: Vec<_> = records.iter().map(|r| r.value.clone()).collect();
        let expected: Vec<_> = (first..COUNT)
            .map(|i| Some(Bytes::from(format!("value-{i}"))))
            .collect();
        assert_eq!(values, expected, "{codec:?} from {offset}");
        for (delta, record) in records.iter().enumerate() {
            assert_eq!(record.offset_delta, i32::try_from(delta).expect("small"));
            assert_eq!(record.timestamp_delta, i64::from(first) + delta as i64);
        }
    }

    /// The compression bits of a batch, for checking the fixtures.
    trait CompressionCode {
        fn compression_code(&self) -> i16;
    }

    impl CompressionCode for deflated::Batch {
        fn compression_code(&self) -> i16 {
            self.attributes & COMPRESSION_BITS
        }
    }

    #[test]
    fn trims_every_codec_from_the_middle_and_the_last_record() {
        for codec in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            assert_trimmed(&codec, BASE + 1);
            assert_trimmed(&codec, BASE + 17);
            assert_trimmed(&codec, BASE + i64::from(COUNT) - 1);
        }
    }

    #[test]
    fn sequence_of_a_non_idempotent_batch_stays_unset() {
        assert_eq!(shifted_sequence(-1, 5), -1);
        assert_eq!(shifted_sequence(10, 5), 15);
    }
}
