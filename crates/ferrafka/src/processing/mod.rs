//! Processing: the listener loop that fetches and batches, and the partition executors that run
//! consumers. See [`listener`] for the offset and pausing rules.

pub(crate) mod diagnostics;
pub(crate) mod executor;
pub(crate) mod listener;
pub(crate) mod partition;
pub(crate) mod stop;
