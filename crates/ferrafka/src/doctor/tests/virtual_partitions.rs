//! FD014: more virtual partitions than `concurrency` lets run.

use super::*;
use crate::VirtualPartitions;

fn app(max_partitions: usize, concurrency: usize) -> App {
    app_with(
        &[],
        |c| {
            c.concurrency(concurrency);
        },
        |r| {
            r.topic("clicks")
                .consumer(|| Noop)
                .config(|t| t.partitions(6))
                .virtual_partitions(VirtualPartitions::new(max_partitions));
        },
        |_| {},
    )
}

#[test]
fn fd014_more_virtual_partitions_than_concurrency() {
    let report = doctor(&app(8, 4));
    let f = one(&report, "FD014", "topic clicks (consumer group shop)");
    assert_eq!(f.severity, Severity::Warning);
    assert!(
        f.found.contains("max_partitions 8 above concurrency 4"),
        "{}",
        f.found
    );
    assert!(f.fix.contains("c.concurrency(8)"), "{}", f.fix);
    none(&doctor(&app(4, 4)), "FD014");
}
