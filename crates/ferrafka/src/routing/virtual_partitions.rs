//! The [`VirtualPartitions`] topic option: how a partition's batch is split into groups that
//! run in parallel. The running itself lives in `processing::virtual_partitions`.

use std::sync::Arc;

use crate::config::Problem;
use crate::messages::Message;

/// The most groups a batch may be split into; far above any useful `concurrency`.
const MAX_PARTITIONS: usize = 1024;

/// A custom grouping value: messages with equal values land in the same group.
type Partitioner = Arc<dyn Fn(&Message) -> u64 + Send + Sync>;

/// Splits each batch of a partition into up to `max_partitions` groups that run in parallel,
/// each on its own consumer instance — parallelism inside one partition, for CPU- or
/// IO-heavy consumers whose order only matters per key.
///
/// A message's group is `hash(key) % max_partitions`, with a hash that is stable across runs
/// and versions (64-bit FNV-1a), so one key always lands in the same group and its messages
/// keep their offset order, across batches too. Messages **without a key** are hashed like an
/// empty key: they all share one group and keep their relative order (and that group does not
/// run them in parallel). Use [`VirtualPartitions::partitioner`] to group by something else,
/// e.g. a header.
///
/// The partition's offset only advances to the lowest message some group has not finished; a
/// failing group makes the batch fail and everything from its first unfinished message on
/// runs again, also what other groups already finished (at-least-once). See
/// `docs/virtual-partitions.md`.
///
/// ```
/// use ferrafka::routing::VirtualPartitions;
/// # use ferrafka::{App, ConsumeResult, Consumer, Context, Messages};
/// # struct Thumbnails;
/// # impl Consumer for Thumbnails {
/// #     async fn consume(&mut self, _: &mut Context, _: &Messages) -> ConsumeResult { Ok(()) }
/// # }
/// let app = App::builder()
///     .routes(|r| {
///         r.topic("images")
///             .consumer(|| Thumbnails)
///             .virtual_partitions(VirtualPartitions::new(4));
///         r.topic("events")
///             .consumer(|| Thumbnails)
///             .virtual_partitions(VirtualPartitions::new(4).partitioner(|m| {
///                 VirtualPartitions::hash(m.header("tenant").unwrap_or_default())
///             }));
///     })
///     .build_with_env([]);
/// # let _ = app;
/// ```
#[derive(Clone)]
pub struct VirtualPartitions {
    pub(crate) max_partitions: usize,
    partitioner: Option<Partitioner>,
}

impl VirtualPartitions {
    /// Up to `max_partitions` groups per batch, grouped by message key. From 1 to 1024 (checked
    /// at boot); a value above the app's `concurrency` adds instances but no parallelism.
    pub fn new(max_partitions: usize) -> Self {
        VirtualPartitions {
            max_partitions,
            partitioner: None,
        }
    }

    /// Groups by `f(message) % max_partitions` instead of the key's hash. Equal values keep
    /// their order; return [`VirtualPartitions::hash`] of some bytes to group by them.
    pub fn partitioner<F>(mut self, f: F) -> Self
    where
        F: Fn(&Message) -> u64 + Send + Sync + 'static,
    {
        self.partitioner = Some(Arc::new(f));
        self
    }

    /// The stable hash the default partitioner applies to keys (64-bit FNV-1a): the same bytes
    /// give the same value in every process and version.
    pub fn hash(bytes: &[u8]) -> u64 {
        const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
        const PRIME: u64 = 0x0000_0100_0000_01b3;
        bytes
            .iter()
            .fold(OFFSET_BASIS, |h, &b| (h ^ u64::from(b)).wrapping_mul(PRIME))
    }

    /// The most groups a batch is split into.
    pub fn max_partitions(&self) -> usize {
        self.max_partitions
    }

    /// The group of `message`, below `max_partitions`.
    pub(crate) fn group_of(&self, message: &Message) -> usize {
        let value = match &self.partitioner {
            Some(f) => f(message),
            None => Self::hash(message.key().unwrap_or_default()),
        };
        // `max_partitions` fits in u64 and the remainder is below it, so both casts are exact.
        (value % self.max_partitions as u64) as usize
    }

    /// Boot-time checks of the option of the route at `path`.
    pub(crate) fn check(&self, path: &str, problems: &mut Vec<Problem>) {
        if self.max_partitions > MAX_PARTITIONS {
            problems.push(Problem::new(
                &format!("{path}.virtual_partitions.max_partitions"),
                &self.max_partitions.to_string(),
                &format!(
                    "needs to be at most {MAX_PARTITIONS}: every group keeps a consumer \
                     instance, and groups beyond `concurrency` add no parallelism"
                ),
                "use `VirtualPartitions::new(n)` with n at most `concurrency`",
            ));
        }
        if self.max_partitions == 0 {
            problems.push(Problem::new(
                &format!("{path}.virtual_partitions.max_partitions"),
                "0",
                "needs to be at least 1 (1 runs each batch as one group, like no virtual \
                 partitions)",
                "use `VirtualPartitions::new(n)` with n >= 1, or drop `.virtual_partitions(..)`",
            ));
        }
    }
}

impl std::fmt::Debug for VirtualPartitions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VirtualPartitions")
            .field("max_partitions", &self.max_partitions)
            .field("custom_partitioner", &self.partitioner.is_some())
            .finish()
    }
}
