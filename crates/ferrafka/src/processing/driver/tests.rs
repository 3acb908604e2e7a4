//! The driver's own duties, on a recording client and executors: what fetched messages it
//! drops, when a new assignment may start, and how a dead executor is replaced. The model
//! test (`partition::model`) drives it through long random histories.

use std::cell::RefCell;
use std::time::Duration;

use super::*;
use crate::consumer::{MarkSink, PartitionRequest, SeekTo};
use crate::messages::Message;
use crate::processing::partition::Work;
use crate::processing::partition::tests::{routed_topic, settings};

/// A client that records what it was asked.
#[derive(Default)]
struct Client {
    seeks: RefCell<Vec<(i32, SeekTo)>>,
    stored: RefCell<Vec<(i32, i64)>>,
}

impl PartitionClient for Client {
    type Target = i32;

    fn target(&self, _topic: &Arc<str>, partition: i32) -> i32 {
        partition
    }

    fn set_paused(&self, _target: &i32, _paused: bool) {}

    fn store_offset(&self, target: &mut i32, next: i64) {
        self.stored.borrow_mut().push((*target, next));
    }

    fn seek(&self, target: &i32, to: SeekTo) -> bool {
        self.seeks.borrow_mut().push((*target, to));
        true
    }

    fn commit_sync(&self, _group: &str) {}
}

/// Executors that keep their jobs; a test ends one by hand.
#[derive(Default)]
struct Jobs {
    /// (worker id, generation, job)
    sent: Vec<(usize, u64, Job)>,
    ended: Vec<bool>,
    /// Per worker: its topic and the pattern route it runs, if any.
    started: Vec<(String, Option<String>)>,
}

impl Workers for Jobs {
    type Worker = (usize, u64);

    fn mark_sink(&self, _: &Arc<str>, _: i32, _: u64) -> MarkSink {
        Box::new(|_, _| {})
    }

    fn start(&mut self, topic: &Arc<Topic>, handle: &Arc<PartitionHandle>) -> (usize, u64) {
        let pattern = topic.pattern().map(|p| p.name().to_string());
        self.started.push((topic.name().to_string(), pattern));
        self.ended.push(false);
        (self.ended.len() - 1, handle.generation)
    }

    fn send(&mut self, worker: &(usize, u64), job: Job) -> bool {
        if self.ended[worker.0] {
            return false;
        }
        self.sent.push((worker.0, worker.1, job));
        true
    }

    fn has_ended(&self, worker: &(usize, u64)) -> bool {
        self.ended[worker.0]
    }

    fn abort(&mut self, worker: &(usize, u64)) {
        self.ended[worker.0] = true;
    }
}

impl Jobs {
    /// The offsets of every batch handed over, in order, with the worker and generation.
    fn payloads(&self) -> Vec<Vec<String>> {
        self.sent
            .iter()
            .filter_map(|(_, _, job)| match job {
                Job::Run {
                    work: Work::Consume(m),
                    ..
                } => Some(
                    m.iter()
                        .map(|m| String::from_utf8_lossy(m.payload_or_empty()).into_owned())
                        .collect(),
                ),
                _ => None,
            })
            .collect()
    }

    fn batches(&self) -> Vec<(usize, u64, u64, Vec<i64>)> {
        self.sent
            .iter()
            .filter_map(|(w, g, job)| match job {
                Job::Run {
                    batch,
                    work: Work::Consume(m),
                } => Some((*w, *g, *batch, m.iter().map(|m| m.offset()).collect())),
                _ => None,
            })
            .collect()
    }
}

fn driver() -> Partitions<Jobs, Client> {
    let topic = routed_topic();
    let (epoch, monitor) = Default::default();
    Partitions::with_settings([(topic, settings())], Jobs::default(), epoch, monitor)
}

fn fetched(epoch: u64, offsets: std::ops::Range<i64>) -> impl Iterator<Item = (u64, Message)> {
    fetched_as(epoch, offsets, "x")
}

fn fetched_as(
    epoch: u64,
    offsets: std::ops::Range<i64>,
    payload: &'static str,
) -> impl Iterator<Item = (u64, Message)> {
    offsets.map(move |o| (epoch, Message::builder("t", 0, o).payload(payload).build()))
}

fn finished(generation: u64, batch: u64, requests: Vec<PartitionRequest>) -> ExecutorReport {
    ExecutorReport {
        topic: "t".into(),
        partition: 0,
        generation,
        kind: ReportKind::Finished(Report {
            generation,
            batch,
            outcome: Outcome::Consumed,
            mark: None,
            requests,
        }),
    }
}

fn p0() -> Vec<(String, i32)> {
    vec![("t".to_string(), 0)]
}

#[test]
fn messages_fetched_before_a_seek_are_dropped_and_the_seeked_position_runs() {
    let (client, mut d, now) = (Client::default(), driver(), Instant::now());
    let received = SystemTime::now();
    d.assign(&client, "g", &p0(), (d.next_epoch(), now));
    d.on_burst(&client, fetched(d.epoch(), 0..3), (received, now));
    // The batch asks to go on from offset 3: a seek, applied while messages 3..6 of the old
    // fetch position were already polled (a burst a rebalance callback's seek overtook).
    let polled_before_the_seek = d.epoch();
    d.on_report(
        &client,
        finished(1, 0, vec![PartitionRequest::Seek(SeekTo::Offset(3))]),
        now,
    );
    assert_eq!(client.seeks.borrow().as_slice(), &[(0, SeekTo::Offset(3))]);
    d.on_burst(
        &client,
        fetched_as(polled_before_the_seek, 3..6, "old"),
        (received, now),
    );
    // What the seeked position delivers is what runs (after a truncation or a seek to the
    // same offsets, the old fetch's copies may differ).
    d.on_burst(&client, fetched_as(d.epoch(), 3..6, "new"), (received, now));
    let ran = d.workers().payloads();
    assert_eq!(
        ran[1..],
        [["new", "new", "new"]],
        "messages of the old fetch position ran after the seek"
    );
}

#[test]
fn a_new_assignment_waits_for_the_revoked_batch_that_still_runs() {
    let (client, mut d, now) = (Client::default(), driver(), Instant::now());
    let received = SystemTime::now();
    d.assign(&client, "g", &p0(), (d.next_epoch(), now));
    d.on_burst(&client, fetched(d.epoch(), 0..3), (received, now));
    d.revoke_begin(&p0());
    assert!(d.any_running_of(&p0()));
    d.revoke_end("g", &p0(), Duration::ZERO);
    // The partition comes back while generation 1's batch still runs.
    d.assign(&client, "g", &p0(), (d.next_epoch(), now));
    d.on_burst(&client, fetched(d.epoch(), 0..3), (received, now));
    d.tick(&client, now + Duration::from_secs(1));
    assert_eq!(
        d.workers().batches().len(),
        1,
        "two batches of one partition at once"
    );
    // Its executor ends the batch and stops: the new assignment's batch starts.
    d.on_report(&client, finished(1, 0, Vec::new()), now);
    let stopped = ExecutorReport {
        kind: ReportKind::Stopped,
        ..finished(1, 0, Vec::new())
    };
    d.on_report(&client, stopped, now);
    let batches = d.workers().batches();
    assert_eq!(batches.len(), 2);
    assert_eq!((batches[1].1, &batches[1].3), (2, &vec![0, 1, 2]));
    assert!(
        client.stored.borrow().is_empty(),
        "a revoked batch stored an offset"
    );
}

#[test]
fn an_executor_that_dies_without_a_report_is_replaced_and_its_batch_retried() {
    let (client, mut d, now) = (Client::default(), driver(), Instant::now());
    let received = SystemTime::now();
    d.assign(&client, "g", &p0(), (d.next_epoch(), now));
    d.on_burst(&client, fetched(d.epoch(), 0..3), (received, now));
    d.abort_executors();
    d.tick(&client, now);
    assert!(
        !d.any_running(),
        "the dead executor's batch still counts as running"
    );
    // The retry runs on the new executor after the backoff.
    d.tick(&client, now + Duration::from_secs(2));
    let batches = d.workers().batches();
    assert_eq!(batches.len(), 2);
    assert_eq!((batches[1].0, &batches[1].3), (1, &vec![0, 1, 2]));
}

#[test]
fn a_stale_report_of_an_earlier_assignment_changes_nothing() {
    let (client, mut d, now) = (Client::default(), driver(), Instant::now());
    let received = SystemTime::now();
    d.assign(&client, "g", &p0(), (d.next_epoch(), now));
    d.on_burst(&client, fetched(d.epoch(), 0..3), (received, now));
    let stale = ExecutorReport {
        generation: 0,
        ..finished(0, 0, vec![PartitionRequest::Seek(SeekTo::Earliest)])
    };
    d.on_report(&client, stale, now);
    assert!(d.any_running());
    assert!(client.seeks.borrow().is_empty() && client.stored.borrow().is_empty());
}

#[test]
fn an_executor_that_dies_in_a_run_keeps_the_progress_of_the_run_s_finished_batches() {
    executor_dies_in_a_run(2);
}

#[test]
fn an_executor_that_dies_at_the_start_of_a_run_stores_nothing_and_retries_it_all() {
    executor_dies_in_a_run(0);
}

/// A run of three batches; `batches_done` of them report their marks, then the executor dies.
fn executor_dies_in_a_run(batches_done: usize) {
    let topic = routed_topic();
    let settings = PartitionSettings {
        run_messages: 9,
        ..settings()
    };
    let (epoch, monitor) = Default::default();
    let mut d: Partitions<Jobs, Client> =
        Partitions::with_settings([(topic, settings)], Jobs::default(), epoch, monitor);
    let (client, now, received) = (Client::default(), Instant::now(), SystemTime::now());
    d.assign(&client, "g", &p0(), (d.next_epoch(), now));
    d.set_gathering(&client, true, now);
    d.on_burst(&client, fetched(d.epoch(), 0..9), (received, now));
    d.set_gathering(&client, false, now);
    for (batch, mark) in [(0, 3), (1, 6)].into_iter().take(batches_done) {
        let progress = ExecutorReport {
            kind: ReportKind::Progress { batch, mark },
            ..finished(1, batch, Vec::new())
        };
        d.on_report(&client, progress, now);
    }
    d.abort_executors();
    d.tick(&client, now);
    let done = 3 * batches_done as i64;
    let stored = client.stored.borrow().last().map(|s| s.1);
    assert_eq!(
        stored,
        (done > 0).then_some(done),
        "only the finished batches' marks"
    );
    d.tick(&client, now + Duration::from_secs(2));
    let batches = d.workers().batches();
    assert_eq!(
        batches.first().map(|b| b.3[0]),
        Some(done),
        "the retry starts at the first message not finished: {batches:?}"
    );
}

/// A driver over the default subscription group of these routes, with the pattern events it
/// emitted.
fn routed_driver(
    routes: impl FnOnce(&mut crate::routing::Router),
) -> (Partitions<Jobs, Client>, Arc<std::sync::Mutex<Vec<String>>>) {
    let app = crate::App::builder().routes(routes).build_with_env([]);
    let topics = app.subscription_groups()[0].topics().to_vec();
    let resolved = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = resolved.clone();
    let monitor = Monitor::new(vec![Box::new(move |e: &Event<'_>| {
        if let Event::PatternTopicResolved {
            topic,
            pattern,
            matched,
            ..
        } = e
        {
            seen.lock()
                .unwrap()
                .push(format!("{topic}:{pattern}:{matched}"));
        }
    })]);
    let topics = topics.into_iter().map(|t| (t, settings()));
    let driver = Partitions::with_settings(topics, Jobs::default(), Default::default(), monitor);
    (driver, resolved)
}

#[test]
fn a_topic_resolves_to_its_named_route_first_then_the_first_declared_pattern_once() {
    let (mut d, resolved) = routed_driver(|r| {
        r.topic("orders-1").consumer(|| crate::noop::Noop);
        r.pattern("orders", "^orders-.*")
            .consumer(|| crate::noop::Noop);
        r.pattern("eu", "^orders-eu").consumer(|| crate::noop::Noop);
    });
    let (client, now) = (Client::default(), Instant::now());
    let assigned: Vec<(String, i32)> = [("orders-1", 0), ("orders-eu", 0), ("orders-us", 0)]
        .iter()
        .map(|(t, p)| (t.to_string(), *p))
        .collect();
    d.assign(&client, "shop/default", &assigned, (d.next_epoch(), now));
    // A later assignment of the same topic finds it by name: no second resolution.
    let more = vec![("orders-eu".to_string(), 1)];
    d.assign(&client, "shop/default", &more, (d.next_epoch(), now));
    let started = &d.workers().started;
    let route = |t: &str, p: Option<&str>| (t.to_string(), p.map(str::to_string));
    assert_eq!(
        started.as_slice(),
        [
            route("orders-1", None),
            route("orders-eu", Some("orders")),
            route("orders-us", Some("orders")),
            route("orders-eu", Some("orders")),
        ]
    );
    assert_eq!(
        resolved.lock().unwrap().as_slice(),
        ["orders-eu:orders:true", "orders-us:orders:true"]
    );
    // Messages of a matched topic reach its partition like any routed topic's.
    let received = SystemTime::now();
    let epoch = d.epoch();
    let burst = (0..3).map(|o| {
        let m = Message::builder("orders-eu", 1, o).payload("x").build();
        (epoch, m)
    });
    d.on_burst(&client, burst, (received, now));
    let batches = d.workers().batches();
    assert_eq!(batches, [(3, 4, 0, vec![0, 1, 2])]);
}

#[test]
fn a_topic_no_pattern_matches_goes_to_the_first_pattern_instead_of_stalling() {
    let (mut d, resolved) = routed_driver(|r| {
        r.pattern("orders", "^orders-.*")
            .consumer(|| crate::noop::Noop);
    });
    let (client, now) = (Client::default(), Instant::now());
    let assigned = vec![("payments".to_string(), 0)];
    d.assign(&client, "shop/default", &assigned, (d.next_epoch(), now));
    assert_eq!(
        resolved.lock().unwrap().as_slice(),
        ["payments:orders:false"]
    );
    assert_eq!(d.workers().started.len(), 1);
}

/// The topic of [`routed_topic`], transactional.
fn transactional_topic() -> Arc<Topic> {
    let app = crate::App::builder()
        .setup(|c| {
            c.transactional_id("tx");
        })
        .routes(|r| {
            r.topic("t")
                .transactional(true)
                .consumer(|| crate::noop::Noop);
        })
        .build_with_env([]);
    app.subscription_groups()[0].topics()[0].clone()
}

/// A batch that reports its mark (a committed transaction's, on a transactional route).
fn marked(generation: u64, batch: u64, mark: i64) -> ExecutorReport {
    let mut report = finished(generation, batch, Vec::new());
    if let ReportKind::Finished(r) = &mut report.kind {
        r.mark = Some(mark);
    }
    report
}

#[test]
fn a_transactional_route_stores_no_offset_so_only_its_transactions_commit() {
    for (topic, stores) in [(routed_topic(), true), (transactional_topic(), false)] {
        let (epoch, monitor) = Default::default();
        let mut d: Partitions<Jobs, Client> =
            Partitions::with_settings([(topic, settings())], Jobs::default(), epoch, monitor);
        let (client, now, received) = (Client::default(), Instant::now(), SystemTime::now());
        d.assign(&client, "g", &p0(), (d.next_epoch(), now));
        d.on_burst(&client, fetched(d.epoch(), 0..6), (received, now));
        d.on_report(&client, marked(1, 0, 3), now);
        d.on_report(&client, marked(1, 1, 6), now);
        let stored = client.stored.borrow().clone();
        if stores {
            assert_eq!(stored, [(0, 3), (0, 6)], "the plain route stores its marks");
        } else {
            assert_eq!(stored, [], "a transactional route stored an offset");
        }
        // Either way the machine moved on: the marked messages never run again.
        let offsets: Vec<Vec<i64>> = d.workers().batches().into_iter().map(|b| b.3).collect();
        assert_eq!(offsets, [vec![0, 1, 2], vec![3, 4, 5]]);
    }
}

/// An order for partition `p` of topic `t` in `group`, as the listener takes it off the board.
fn order(
    group: &str,
    p: i32,
    kind: crate::processing::orders::OrderKind,
) -> Arc<crate::processing::orders::Order> {
    let board = crate::processing::orders::Board::default();
    let _answers = board.post((group.to_string(), "t".to_string(), p), kind);
    board.since(&mut 0).pop().expect("posted")
}

#[test]
fn an_operator_pause_outlives_a_revocation_of_its_partition_until_resumed() {
    use crate::processing::orders::{Answer, OrderKind};
    let (client, mut d, now) = (Client::default(), driver(), Instant::now());
    let group = routed_topic().consumer_group.to_string();
    let received = SystemTime::now();
    let pause = OrderKind::Pause { until: None };
    assert_eq!(
        d.operator_order(&client, &order(&group, 0, pause), now),
        Answer::NotHere
    );
    d.assign(&client, "g", &p0(), (d.next_epoch(), now));
    d.on_burst(&client, fetched(d.epoch(), 0..3), (received, now));
    assert_eq!(
        d.operator_order(&client, &order(&group, 0, pause), now),
        Answer::Applied
    );
    assert_eq!(
        d.operator_order(&client, &order(&group, 1, pause), now),
        Answer::NotHere
    );
    assert_eq!(
        d.operator_order(&client, &order("other", 0, pause), now),
        Answer::NotHere
    );
    d.on_report(&client, finished(1, 0, Vec::new()), now);
    d.on_burst(&client, fetched(d.epoch(), 3..6), (received, now));
    d.tick(&client, now + Duration::from_secs(5));
    assert_eq!(
        d.workers().batches().len(),
        1,
        "a batch started while paused"
    );
    d.revoke_begin(&p0());
    d.revoke_end("g", &p0(), Duration::ZERO);
    let stopped = ExecutorReport {
        kind: ReportKind::Stopped,
        ..finished(1, 0, Vec::new())
    };
    d.on_report(&client, stopped, now);
    // The group gives the partition back: it starts paused, from the committed offset.
    d.assign(&client, "g", &p0(), (d.next_epoch(), now));
    d.on_burst(&client, fetched(d.epoch(), 3..6), (received, now));
    d.tick(&client, now + Duration::from_secs(5));
    assert_eq!(
        d.workers().batches().len(),
        1,
        "the pause ended with the revocation"
    );
    assert_eq!(
        d.machine("t", 0).map(|m| m.pause_reason(now)),
        Some(crate::instrumentation::PauseReason::Operator)
    );
    let resume = order(&group, 0, OrderKind::Resume);
    assert_eq!(d.operator_order(&client, &resume, now), Answer::Applied);
    let batches = d.workers().batches();
    assert_eq!((batches.len(), &batches[1].3), (2, &vec![3, 4, 5]));
    assert_eq!(
        d.operator_order(&client, &order(&group, 1, OrderKind::Resume), now),
        Answer::NotHere
    );
}
