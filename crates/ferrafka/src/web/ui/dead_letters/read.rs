//! What the explorer reads from the cluster: the app's dead-letter topics with their counts,
//! a bounded page of one partition, one dead letter. Blocking (librdkafka): the handlers run
//! it on tokio's blocking pool.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::admin::Admin;
use crate::reader::{StartAt, TopicReader};
use crate::web::ui::state::DeadLetterSource;

use super::letter::DeadLetter;

/// Dead letters shown per page.
pub(crate) const PAGE: i64 = 20;

/// A dead-letter topic on the list: its sources and per partition (low, high) watermarks.
#[derive(Debug, Clone, Default)]
pub(crate) struct QueueRow {
    pub(crate) topic: String,
    pub(crate) sources: Vec<DeadLetterSource>,
    /// `(partition, low, high)`; empty when the topic does not exist (yet).
    pub(crate) partitions: Vec<(i32, i64, i64)>,
    pub(crate) exists: bool,
    pub(crate) problems: Vec<String>,
}

/// The list page: every dead-letter topic of the app's routes.
pub(crate) fn queues(
    admin: &Admin,
    topics: &BTreeMap<String, Vec<DeadLetterSource>>,
) -> Vec<QueueRow> {
    topics
        .iter()
        .map(|(topic, sources)| {
            let mut row = QueueRow {
                topic: topic.clone(),
                sources: sources.clone(),
                ..QueueRow::default()
            };
            match admin.topic_info(topic) {
                Ok(Some(info)) => {
                    row.exists = true;
                    for p in &info.partitions {
                        match admin.watermarks(topic, p.id) {
                            Ok((low, high)) => row.partitions.push((p.id, low, high)),
                            Err(e) => row
                                .problems
                                .push(format!("{topic} partition {}: {e}", p.id)),
                        }
                    }
                }
                Ok(None) => {}
                Err(e) => row
                    .problems
                    .push(format!("cannot read {topic}'s metadata: {e}")),
            }
            row
        })
        .collect()
}

/// One page of a dead-letter partition.
#[derive(Debug, Clone, Default)]
pub(crate) struct QueuePage {
    pub(crate) topic: String,
    pub(crate) partition: i32,
    pub(crate) watermarks: Option<(i64, i64)>,
    /// Newest first.
    pub(crate) letters: Vec<DeadLetter>,
    pub(crate) masked: bool,
    pub(crate) problems: Vec<String>,
}

/// The [`PAGE`] dead letters from `from` (the newest [`PAGE`] without it), newest first.
pub(crate) fn page(
    admin: &Admin,
    kafka: &BTreeMap<String, String>,
    topic: &str,
    partition: i32,
    from: Option<i64>,
    masked: bool,
) -> QueuePage {
    let mut view = QueuePage {
        topic: topic.to_string(),
        partition,
        masked,
        ..QueuePage::default()
    };
    match admin.watermarks(topic, partition) {
        Ok(marks) => view.watermarks = Some(marks),
        Err(e) => {
            view.problems
                .push(format!("cannot read the watermarks: {e}"));
            return view;
        }
    }
    let start = from.map_or(StartAt::Last(PAGE as u64), StartAt::Offset);
    match read(kafka, topic, partition, start, PAGE as u64, masked) {
        Ok(mut letters) => {
            letters.reverse();
            view.letters = letters;
        }
        Err(e) => view.problems.push(e),
    }
    view
}

/// The dead letter at `offset`, or why there is none.
pub(crate) fn one(
    kafka: &BTreeMap<String, String>,
    topic: &str,
    partition: i32,
    offset: i64,
) -> Result<DeadLetter, String> {
    let letters = read(kafka, topic, partition, StartAt::Offset(offset), 1, false)?;
    letters
        .into_iter()
        .find(|l| l.offset == offset)
        .ok_or_else(|| format!("{topic} partition {partition} holds no record at offset {offset} (deleted by retention, or not written yet)"))
}

fn read(
    kafka: &BTreeMap<String, String>,
    topic: &str,
    partition: i32,
    start: StartAt,
    count: u64,
    masked: bool,
) -> Result<Vec<DeadLetter>, String> {
    let reader = TopicReader::builder(topic)
        .partitions([partition])
        .start(start)
        .max_messages(count)
        .timeout(Duration::from_secs(10))
        .open_with(kafka)
        .map_err(|e| format!("cannot read {topic} partition {partition}: {e}"))?;
    let mut letters = Vec::new();
    for m in reader {
        let m = m.map_err(|e| format!("reading {topic} partition {partition} stopped: {e}"))?;
        letters.push(DeadLetter::from_message(&m, masked));
    }
    Ok(letters)
}
