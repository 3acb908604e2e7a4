//! doctor's static checks, one file per area. Each check reads the app through
//! [`AppView`](super::AppView) and adds its findings to the report.

mod clients;
mod security;
mod settings;
mod topics;

pub(crate) use clients::{
    check_compression, check_host_clock, check_metadata_refresh, check_partitioner,
    check_rebalancing, compare_topic_codec, producer_codec,
};
pub(crate) use security::{check_client_security, check_delivery};
pub(crate) use settings::{
    check_configuration, check_downtime_declared, check_persistence, check_timing,
    check_virtual_partitions, check_web_exposure, check_web_writes,
};
pub(crate) use topics::{
    check_auto_create, check_declarations, check_durability, check_lock_file,
    check_single_partition, judge_durability, routed_topics,
};
