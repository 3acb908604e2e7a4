//! Processing: the per-partition state machine that decides what runs and what is stored
//! ([`partition`]), the driver that feeds every assigned partition's machine and carries out
//! its effects ([`driver`], the one used by `server`, `ferrafka::testing` and the model test),
//! the executors that run consumers ([`executor`]), and the stop signal the server shares with
//! its listeners. The listener that feeds the driver from librdkafka lives in `connection`.

pub(crate) mod doorbell;
pub(crate) mod driver;
pub(crate) mod executor;
pub(crate) mod orders;
pub(crate) mod partition;
pub(crate) mod stop;
pub(crate) mod virtual_partitions;
