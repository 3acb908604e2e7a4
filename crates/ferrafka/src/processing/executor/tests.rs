//! Runs through the server's executor task: a run goes on while its batches are consumed
//! without requests, and ends after the batch that fails or makes a request, when the listener
//! cuts it, or when another job arrives. The batches it did not run are let go before it
//! reports, so the listener takes them back without a copy.

use std::ops::Range;
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc::unbounded_channel;

use super::*;
use crate::{App, ConsumeResult, Consumer};

/// What the test's consumer saw, and where it fails or asks for a pause.
#[derive(Default)]
struct Script {
    seen: Mutex<Vec<i64>>,
    fail_at: Option<i64>,
    pause_at: Option<i64>,
    /// Hooks and offsets, in the order they ran.
    log: Mutex<Vec<String>>,
}

struct Scripted(Arc<Script>);

impl Consumer for Scripted {
    async fn consume(&mut self, ctx: &mut Context, messages: &Messages) -> ConsumeResult {
        for m in messages {
            if Some(m.offset()) == self.0.fail_at {
                return Err(format!("offset {} failed", m.offset()).into());
            }
            self.0.seen.lock().unwrap().push(m.offset());
            self.0.log.lock().unwrap().push(m.offset().to_string());
            if Some(m.offset()) == self.0.pause_at {
                ctx.pause(Duration::from_secs(1));
            }
        }
        Ok(())
    }

    async fn tick(&mut self, _: &mut Context) -> ConsumeResult {
        self.0.log.lock().unwrap().push("tick".into());
        Err("tick failed".into())
    }

    async fn idle(&mut self, ctx: &mut Context) -> ConsumeResult {
        self.0.log.lock().unwrap().push("idle".into());
        ctx.pause(Duration::from_secs(2));
        Ok(())
    }

    async fn eofed(&mut self, _: &mut Context) -> ConsumeResult {
        panic!("eofed panicked");
    }
}

fn executor(script: &Arc<Script>) -> (Executor, Receiver<ExecutorReport>) {
    let script = script.clone();
    let app = App::builder()
        .routes(move |r| {
            let script = script.clone();
            r.topic("in").consumer(move || Scripted(script.clone()));
        })
        .build_with_env([]);
    let topic = app.subscription_groups()[0].topics[0].clone();
    let handle = PartitionHandle::new(
        (topic.consumer_group.clone(), topic.name.clone()),
        0,
        1,
        Box::new(|_, _| {}),
    );
    let (reports, received) = std::sync::mpsc::channel();
    let executor = Executor {
        config: app.config_arc(),
        topic,
        handle: Arc::new(handle),
        producer: Producer::capturing(Default::default()),
        workers: Arc::new(Semaphore::new(1)),
        reports: ReportSink::new(reports, Default::default()),
        tasks: Default::default(),
        monitor: Default::default(),
        transactions: None,
    };
    (executor, received)
}

/// A run of batches with these offsets, and the test's own share of each batch.
fn run_of(batches: &[Range<i64>]) -> (Work, Vec<Arc<Vec<Message>>>) {
    let shares: Vec<Arc<Vec<Message>>> = batches
        .iter()
        .map(|r| {
            Arc::new(
                r.clone()
                    .map(|o| Message::builder("in", 0, o).build())
                    .collect(),
            )
        })
        .collect();
    let run = shares.iter().map(|s| Messages::new(s.clone(), 1)).collect();
    (Work::Run(run), shares)
}

/// Runs `jobs` through the executor task; once it reported a finished batch, stops it (a stop
/// sent earlier would end a run early) and returns what it reported: progress marks as
/// `(batch, mark)`, finished batches, and whether it said it stopped.
async fn serve(executor: Executor, received: &Receiver<ExecutorReport>, jobs: Vec<Job>) -> Served {
    let (tx, rx) = unbounded_channel();
    jobs.into_iter().for_each(|job| tx.send(job).unwrap());
    let task = tokio::spawn(executor.run(rx));
    let mut served = Served::default();
    while !served.stopped {
        let Ok(report) = received.try_recv() else {
            tokio::time::sleep(Duration::from_millis(1)).await;
            continue;
        };
        match report.kind {
            ReportKind::Progress { batch, mark } => served.progress.push((batch, mark)),
            ReportKind::Finished(r) => {
                served.finished.push(r);
                let _ = tx.send(Job::Stop(FinalHook::Shutdown)); // gone if it stopped already
            }
            ReportKind::HookDone { requests } => served.hooks.push(requests),
            ReportKind::Stopped => served.stopped = true,
        }
    }
    task.await.unwrap();
    served
}

#[derive(Default)]
struct Served {
    progress: Vec<(u64, i64)>,
    finished: Vec<Report>,
    stopped: bool,
    hooks: Vec<Vec<PartitionRequest>>,
}

fn released(shares: &[Arc<Vec<Message>>]) -> bool {
    shares.iter().all(|s| Arc::strong_count(s) == 1)
}

#[tokio::test]
async fn a_run_goes_through_its_batches_marking_each_as_progress() {
    let script = Arc::new(Script::default());
    let (executor, received) = executor(&script);
    let (work, shares) = run_of(&[0..3, 3..6, 6..9]);
    let run = Job::Run { batch: 5, work };
    let served = serve(executor, &received, vec![run]).await;
    assert_eq!(*script.seen.lock().unwrap(), (0..9).collect::<Vec<_>>());
    assert_eq!(served.progress, vec![(5, 3), (6, 6)]);
    let [report] = &served.finished[..] else {
        panic!("one report: {:?}", served.finished)
    };
    assert_eq!(
        (report.batch, &report.outcome, report.mark),
        (7, &Outcome::Consumed, Some(9))
    );
    assert!(served.stopped && released(&shares));
}

#[tokio::test]
async fn a_cut_or_another_job_ends_a_run_after_the_running_batch() {
    for next in [Job::Cut, Job::Stop(FinalHook::Revoked)] {
        let script = Arc::new(Script::default());
        let (executor, received) = executor(&script);
        let (work, shares) = run_of(&[0..3, 3..6, 6..9]);
        let served = serve(executor, &received, vec![Job::Run { batch: 5, work }, next]).await;
        assert_eq!(*script.seen.lock().unwrap(), vec![0, 1, 2]);
        let [report] = &served.finished[..] else {
            panic!("one report: {:?}", served.finished)
        };
        assert_eq!((report.batch, report.mark), (5, Some(3)));
        assert!(served.stopped, "a stop after the run was served");
        assert!(
            released(&shares),
            "the batches that did not run were let go"
        );
    }
}

#[tokio::test]
async fn a_failure_ends_a_run_with_the_marks_of_the_batches_before_it() {
    let script = Arc::new(Script {
        fail_at: Some(4),
        ..Script::default()
    });
    let (executor, received) = executor(&script);
    let (work, shares) = run_of(&[0..3, 3..6, 6..9]);
    let served = serve(executor, &received, vec![Job::Run { batch: 5, work }]).await;
    assert_eq!(*script.seen.lock().unwrap(), vec![0, 1, 2, 3]);
    let [report] = &served.finished[..] else {
        panic!("one report: {:?}", served.finished)
    };
    assert_eq!(report.batch, 6);
    assert!(matches!(report.outcome, Outcome::Failed(_)), "{report:?}");
    assert_eq!(report.mark, Some(3), "only the first batch is done");
    assert!(released(&shares));
}

#[tokio::test]
async fn a_request_ends_a_run_after_its_batch() {
    let script = Arc::new(Script {
        pause_at: Some(1),
        ..Script::default()
    });
    let (executor, received) = executor(&script);
    let (work, _) = run_of(&[0..3, 3..6]);
    let served = serve(executor, &received, vec![Job::Run { batch: 0, work }]).await;
    assert_eq!(*script.seen.lock().unwrap(), vec![0, 1, 2]);
    let [report] = &served.finished[..] else {
        panic!("one report: {:?}", served.finished)
    };
    assert_eq!(
        (report.batch, report.mark, report.requests.len()),
        (0, Some(3), 1)
    );
}

#[tokio::test]
async fn hooks_run_in_order_with_batches_and_their_failures_are_events_not_outcomes() {
    let script = Arc::new(Script::default());
    let (mut executor, received) = executor(&script);
    let errors = Arc::new(Mutex::new(Vec::new()));
    let seen = errors.clone();
    executor.monitor = Monitor::new(vec![Box::new(move |e: &Event<'_>| {
        if let Event::Error { kind, error, .. } = e {
            seen.lock().unwrap().push((*kind, error.to_string()));
        }
    })]);
    let (work, _) = run_of(&[0..1, 1..2]);
    let jobs = vec![
        Job::Hook(Hook::Tick),
        Job::Hook(Hook::Eofed),
        Job::Hook(Hook::Idle),
        Job::Run { batch: 0, work },
    ];
    let served = serve(executor, &received, jobs).await;
    assert_eq!(*script.log.lock().unwrap(), vec!["tick", "idle", "0", "1"]);
    let pause = PartitionRequest::Pause(Duration::from_secs(2));
    assert_eq!(served.hooks, vec![vec![], vec![], vec![pause]]);
    let [report] = &served.finished[..] else {
        panic!("one report: {:?}", served.finished)
    };
    assert_eq!(
        (&report.outcome, report.mark),
        (&Outcome::Consumed, Some(2)),
        "a panicking hook's fresh instance consumes"
    );
    let errors = errors.lock().unwrap().clone();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors.iter().all(|(k, _)| *k == ErrorKind::ConsumerHook));
    assert!(errors[0].1.contains("tick failed") && errors[1].1.contains("eofed panicked"));
}

#[tokio::test]
async fn a_transactional_route_is_marked_only_by_its_transactions() {
    let script = Arc::new(Script::default());
    let (mut executor, received) = executor(&script);
    let scripted = script.clone();
    let app = App::builder()
        .setup(|c| {
            c.transactional_id("tx");
        })
        .routes(move |r| {
            let script = scripted.clone();
            r.topic("in")
                .transactional(true)
                .consumer(move || Scripted(script.clone()));
        })
        .build_with_env([]);
    executor.topic = app.subscription_groups()[0].topics[0].clone();
    assert!(executor.topic.is_transactional());
    let (work, _shares) = run_of(&[0..3, 3..6]);
    let served = serve(executor, &received, vec![Job::Run { batch: 1, work }]).await;
    // `consume` returned Ok without a transaction: nothing is marked (a plain route marks 6).
    assert_eq!(served.finished[0].outcome, Outcome::Consumed);
    assert_eq!(served.finished[0].mark, None);
    assert_eq!(*script.seen.lock().unwrap(), [0, 1, 2, 3, 4, 5]);
}
