//! Where a seek goes: its own module, so the events that report seeks need nothing of the
//! consumer's.

/// Where to move a partition's position with [`Context::seek`](crate::Context::seek).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeekTo {
    /// This offset.
    Offset(i64),
    /// The first message published at or after this time.
    Time(std::time::SystemTime),
    /// The oldest retained message.
    Earliest,
    /// After the newest message: only new messages are read.
    Latest,
}
