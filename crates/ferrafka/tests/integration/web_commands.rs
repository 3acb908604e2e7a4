//! Commands through the commands topic on a real broker: an operator pause holds one
//! partition while the others go on, shows as `operator` in the process's report, and after
//! the resume every offset is consumed exactly once; an expired command, a command for another
//! process and a repeated command change nothing; quiet stops new batches; stop ends the
//! server cleanly with a tombstone.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferrafka::instrumentation::Event;
use ferrafka::web::commands::{self, Acknowledgement, Action, Command, Outcome, Record, Target};
use ferrafka::web::report::{Decoded, ProcessReport, decode};
use ferrafka::{App, Filters, RunningServer, ServerExit};

use crate::support::*;
use crate::web_reporting::records;

/// The topics of one test.
/// The topics of a reporting server of these tests (web_operations' too).
pub(crate) struct Topics {
    pub(crate) consumed: String,
    pub(crate) reports: String,
    pub(crate) commands: String,
    pub(crate) audit: String,
}

/// (command id, outcome) of every `CommandReceived` event.
pub(crate) type Received = Arc<Mutex<Vec<(String, String)>>>;

fn app(bootstrap: &str, topics: &Topics, tracker: &Tracker, received: &Received) -> App {
    let (bootstrap, group) = (bootstrap.to_string(), unique("commands-group"));
    let (reports, commands) = (topics.reports.clone(), topics.commands.clone());
    let audit = topics.audit.clone();
    let (errors, topic) = (unique("errors"), topics.consumed.clone());
    let (tracker, received) = (tracker.clone(), received.clone());
    App::builder_with_env([])
        .setup(move |c| {
            c.client_id("commands")
                .group_id(group)
                .kafka("bootstrap.servers", bootstrap)
                .max_wait_time(Duration::from_millis(100))
                .reporting(true)
                .report_interval(Duration::from_secs(1))
                .reports_topic(reports)
                .errors_topic(errors)
                .audit_topic(audit)
                .commands_topic(commands);
        })
        .routes(move |r| {
            r.topic(topic).max_messages(5).consumer(move || Recording {
                instance: 0,
                tracker: tracker.clone(),
                batch_sleep: Duration::ZERO,
            });
        })
        .subscribe(move |event: &Event<'_>| {
            if let Event::CommandReceived {
                command_id,
                outcome,
                ..
            } = event
            {
                let seen = (command_id.to_string(), outcome.to_string());
                received.lock().unwrap().push(seen);
            }
        })
        .build_with_env([])
}

/// A reporting server's app of a fresh 2-partition topic, its topics created.
pub(crate) fn started(
    prefix: &str,
) -> (
    tokio::runtime::Runtime,
    Cluster,
    Topics,
    App,
    Tracker,
    Received,
) {
    let (rt, cluster, consumed) = with_topic(prefix, 2);
    let topics = Topics {
        consumed,
        reports: unique("reports"),
        commands: unique("commands"),
        audit: unique("audit"),
    };
    let (tracker, received) = (Tracker::default(), Received::default());
    let app = app(&cluster.bootstrap(), &topics, &tracker, &received);
    for spec in app.declared_topics() {
        rt.block_on(cluster.admin.create_topic(spec))
            .unwrap_or_else(|e| panic!("creating {}: {e}", spec.name));
    }
    (rt, cluster, topics, app, tracker, received)
}

fn acknowledgements(bootstrap: &str, topic: &str, command_id: &str) -> Vec<Acknowledgement> {
    records(bootstrap, topic)
        .into_iter()
        .filter_map(|(_, payload)| match commands::decode(&payload?) {
            Ok(Record::Acknowledgement(a)) if a.command_id == command_id => Some(a),
            _ => None,
        })
        .collect()
}

/// Sends `command` and waits for this process's one acknowledgement of it.
fn send_and_await(
    rt: &tokio::runtime::Runtime,
    (app, bootstrap): (&App, &str),
    topics: &Topics,
    command: &Command,
) -> Acknowledgement {
    rt.block_on(commands::send(app, command)).expect("sent");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let acks = acknowledgements(bootstrap, &topics.commands, &command.command_id);
        if let Some(ack) = acks.first() {
            assert_eq!(acks.len(), 1, "one acknowledgement: {acks:?}");
            return ack.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no acknowledgement of {command:?}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn newest_report(bootstrap: &str, topic: &str, id: &str) -> Option<Option<ProcessReport>> {
    let mut newest = None;
    for (key, payload) in records(bootstrap, topic) {
        if key == id {
            newest = Some(match decode(payload.as_deref()).expect("a report") {
                Decoded::Report { report, .. } => Some(*report),
                Decoded::Stopped => None,
            });
        }
    }
    newest
}

fn partition_action(pause: bool, topic: &str, partition: i32, app: &App) -> Action {
    let consumer_group = app.subscription_groups()[0].consumer_group().to_string();
    let topic = topic.to_string();
    match pause {
        true => Action::PausePartition {
            consumer_group,
            topic,
            partition,
            for_ms: None,
        },
        false => Action::ResumePartition {
            consumer_group,
            topic,
            partition,
        },
    }
}

fn command(server: &RunningServer, action: Action) -> Command {
    let target = Target::Process(server.process_id().to_string());
    Command::new(target, action, Duration::from_secs(60), "test")
}

/// With partition 0 paused after messages 0..20 (10 per partition): produces 20..60 and checks
/// that partition 1 takes its 20 while partition 0 takes none.
pub(crate) fn assert_partition_0_holds(
    rt: &tokio::runtime::Runtime,
    cluster: &Cluster,
    topics: &Topics,
    tracker: &Tracker,
) {
    cluster.produce_spread(rt, &topics.consumed, 20, 60, 2);
    assert!(wait_until(Duration::from_secs(60), || consumed_of(
        tracker, 1
    ) == 30));
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        consumed_of(tracker, 0),
        10,
        "partition 0 took no batch while paused"
    );
}

fn consumed_of(tracker: &Tracker, partition: i32) -> usize {
    tracker
        .all()
        .iter()
        .filter(|s| s.partition == partition)
        .count()
}

#[test]
fn an_operator_pause_holds_one_partition_and_the_resume_catches_up_exactly_once() {
    let (rt, cluster, topics, app, tracker, received) = started("commands-pause");
    let bootstrap = cluster.bootstrap();
    let server = app.start(&Filters::default()).expect("starts");
    cluster.produce_spread(&rt, &topics.consumed, 0, 20, 2);
    assert!(
        tracker.wait_for(20, Duration::from_secs(60)),
        "consumed {}",
        tracker.len()
    );

    let pause = command(&server, partition_action(true, &topics.consumed, 0, &app));
    let ack = send_and_await(&rt, (&app, &bootstrap), &topics, &pause);
    assert_eq!(
        (ack.outcome, ack.process_id.as_str()),
        (Outcome::Done, server.process_id())
    );
    assert_partition_0_holds(&rt, &cluster, &topics, &tracker);
    assert!(
        wait_until(Duration::from_secs(20), || {
            let report = newest_report(&bootstrap, &topics.reports, server.process_id());
            let paused = |p: i32| {
                let report = report.clone().flatten()?;
                let found = report.partitions.into_iter().find(|r| r.partition == p)?;
                Some(found.paused)
            };
            paused(0) == Some(Some("operator".into())) && paused(1) == Some(None)
        }),
        "the report shows partition 0 paused by an operator, partition 1 not"
    );

    // Expired, for another process, or a pause of a partition not assigned here: no effect.
    let mut expired = command(&server, partition_action(true, &topics.consumed, 1, &app));
    expired.expires_at_ms = expired.issued_at_ms - 1;
    let ack = send_and_await(&rt, (&app, &bootstrap), &topics, &expired);
    assert_eq!(ack.outcome, Outcome::Expired);
    let elsewhere = Command::new(
        Target::Process("another-host:1:00000000".into()),
        Action::Stop,
        Duration::from_secs(60),
        "test",
    );
    rt.block_on(commands::send(&app, &elsewhere)).expect("sent");
    let missing = command(&server, partition_action(true, &topics.consumed, 7, &app));
    let ack = send_and_await(&rt, (&app, &bootstrap), &topics, &missing);
    let Outcome::Refused { reason } = ack.outcome else {
        panic!("refused: {ack:?}")
    };
    assert!(reason.contains("not assigned to this process"), "{reason}");
    cluster.produce_spread(&rt, &topics.consumed, 60, 62, 2);
    assert!(wait_until(Duration::from_secs(30), || consumed_of(
        &tracker, 1
    ) == 31));

    let resume = command(&server, partition_action(false, &topics.consumed, 0, &app));
    assert_eq!(
        send_and_await(&rt, (&app, &bootstrap), &topics, &resume).outcome,
        Outcome::Done
    );
    assert!(
        tracker.wait_for(62, Duration::from_secs(60)),
        "consumed {}",
        tracker.len()
    );
    // The pause again under the same id: handled once, so the partition keeps going.
    rt.block_on(commands::send(&app, &pause)).expect("sent");
    cluster.produce_spread(&rt, &topics.consumed, 62, 72, 2);
    assert!(
        tracker.wait_for(72, Duration::from_secs(60)),
        "consumed {}",
        tracker.len()
    );
    assert!(wait_until(Duration::from_secs(10), || {
        received
            .lock()
            .unwrap()
            .contains(&(pause.command_id.clone(), "duplicate".into()))
    }));
    assert_eq!(
        acknowledgements(&bootstrap, &topics.commands, &pause.command_id).len(),
        1
    );
    assert_eq!(
        acknowledgements(&bootstrap, &topics.commands, &elsewhere.command_id),
        []
    );
    assert!(
        !received
            .lock()
            .unwrap()
            .iter()
            .any(|(id, _)| *id == elsewhere.command_id)
    );

    let counts = tracker.counts();
    assert_eq!(counts.len(), 72);
    assert!(
        counts.values().all(|n| *n == 1),
        "each message once: {counts:?}"
    );
    assert_contiguous_per_partition(&tracker.all());
    let outcomes: BTreeMap<String, String> = received.lock().unwrap().iter().cloned().collect();
    assert_eq!(
        outcomes.get(&resume.command_id).map(String::as_str),
        Some("done")
    );
    assert_eq!(server.shutdown(), ServerExit::Clean);
}

#[test]
fn quiet_stops_new_batches_and_stop_ends_the_server_cleanly_with_a_tombstone() {
    let (rt, cluster, topics, app, tracker, _received) = started("commands-stop");
    let bootstrap = cluster.bootstrap();
    let server = app.start(&Filters::default()).expect("starts");
    let id = server.process_id().to_string();
    cluster.produce_spread(&rt, &topics.consumed, 0, 20, 2);
    assert!(
        tracker.wait_for(20, Duration::from_secs(60)),
        "consumed {}",
        tracker.len()
    );

    let quiet = Command::new(Target::All, Action::Quiet, Duration::from_secs(60), "test");
    assert_eq!(
        send_and_await(&rt, (&app, &bootstrap), &topics, &quiet).outcome,
        Outcome::Done
    );
    cluster.produce_spread(&rt, &topics.consumed, 20, 40, 2);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(tracker.len(), 20, "quiet: no new batch");
    assert!(wait_until(Duration::from_secs(20), || {
        newest_report(&bootstrap, &topics.reports, &id)
            .flatten()
            .is_some_and(|r| r.state == "quieting")
    }));

    let stop = command(&server, Action::Stop);
    let (exited_tx, exited) = std::sync::mpsc::channel();
    std::thread::spawn(move || exited_tx.send(server.wait()));
    assert_eq!(
        send_and_await(&rt, (&app, &bootstrap), &topics, &stop).outcome,
        Outcome::Done
    );
    let exit = exited
        .recv_timeout(Duration::from_secs(60))
        .expect("the server stops");
    assert_eq!(exit, ServerExit::Clean);
    assert_eq!(
        newest_report(&bootstrap, &topics.reports, &id),
        Some(None),
        "a tombstone last"
    );
    assert_eq!(tracker.len(), 20);
}
