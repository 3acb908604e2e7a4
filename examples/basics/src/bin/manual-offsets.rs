//! Manual offset management: the consumer says which messages are done.
//!
//! ```sh
//! cargo run -p example-basics --bin manual-offsets     # embedded broker, nothing to set up
//! ```
//!
//! By default a batch is marked as consumed when `consume` returns `Ok`. With
//! `.manual_offset_management(true)` nothing is marked for you: the consumer calls
//! `ctx.mark_as_consumed(&message)` for what it really finished (that message and every earlier
//! one of the partition). A consumer manages offsets itself when "returned" and "done" differ:
//! it finishes only part of a batch (a time or rate budget, as here), the work completes later
//! or elsewhere (buffered writes, another system's acknowledgement), or a long batch should
//! commit its progress message by message so a crash redoes less.
//!
//! Here the consumer has a budget of half a batch: it processes the first half, marks each
//! message it finished, and seeks back to the first one it did not, so the rest comes again in
//! the next batch. (Returning `Ok` with messages unmarked does not redeliver them by itself:
//! they would only come back after a restart or a rebalance, from the committed offset.) After
//! the run the group's committed offset, read with `Admin::lags`, is the message count.

use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferrafka::{App, ConsumeResult, Consumer, Context, Filters, Messages, SeekTo, ServerExit};

const JOBS: i64 = 20;

/// Processes half of each batch and leaves the rest for the next one.
struct HalfABatch {
    done: Arc<Mutex<Vec<i64>>>,
}

impl Consumer for HalfABatch {
    async fn consume(&mut self, ctx: &mut Context, messages: &Messages) -> ConsumeResult {
        let budget = messages.len().div_ceil(2);
        for m in messages.iter().take(budget) {
            self.done.lock().unwrap().push(m.offset()); // the "work"
            ctx.mark_as_consumed(m); // finished: committed with the next commit
        }
        let rest = messages.iter().nth(budget);
        println!(
            "batch of {:>2} from offset {:>2}: finished {budget}, {}",
            messages.len(),
            messages.first().offset(),
            match rest {
                Some(m) => format!("next batch starts at {}", m.offset()),
                None => "nothing left".into(),
            }
        );
        if let Some(m) = rest {
            ctx.seek(SeekTo::Offset(m.offset())); // read the unfinished rest again
        }
        Ok(()) // with manual offset management this marks nothing
    }
}

fn main() -> ExitCode {
    example_basics::run("manual-offsets", run)
}

fn run() -> Result<(), example_basics::Error> {
    let sandbox = example_basics::Sandbox::start()?;
    let topic = sandbox.fresh_topic("jobs", 1)?;
    let jobs: Vec<(String, String)> = (0..JOBS)
        .map(|i| (format!("job-{i}"), format!("job {i}")))
        .collect();
    sandbox.produce_keyed(&topic, &jobs)?;

    let done = Arc::new(Mutex::new(Vec::new()));
    let app = {
        let (done, bootstrap) = (done.clone(), sandbox.bootstrap.clone());
        App::builder()
            .setup(|c| {
                c.client_id("manual-offsets")
                    .kafka("bootstrap.servers", bootstrap)
                    .max_wait_time(Duration::from_millis(100));
            })
            .routes(|r| {
                r.topic(topic.as_str())
                    .manual_offset_management(true)
                    .consumer(move || HalfABatch { done: done.clone() });
            })
            .build()
    };
    let group = app.config().default_group_id().to_string();
    let server = app.start(&Filters::default())?;
    example_basics::wait_until(Duration::from_secs(30), || {
        done.lock().unwrap().len() >= JOBS as usize
    });
    // Stopping commits the marked offsets.
    let exit = server.shutdown();
    if exit != ServerExit::Clean {
        return Err(format!("the server did not stop cleanly: {exit:?}").into());
    }

    let done = done.lock().unwrap().clone();
    let expected: Vec<i64> = (0..JOBS).collect();
    if done != expected {
        return Err(format!("expected {expected:?} once each, in order, got {done:?}").into());
    }
    let lags = sandbox.admin.lags(&group, &[topic.as_str()])?;
    let lag = lags.first().ok_or("no committed offset to read")?;
    println!(
        "group {group} committed offset {:?} of {} on {}/{} (lag {:?})",
        lag.committed, lag.high_watermark, lag.topic, lag.partition, lag.lag
    );
    if lag.committed != Some(JOBS) {
        return Err(format!("expected the committed offset {JOBS}, got {lag:?}").into());
    }
    println!("{JOBS} jobs processed exactly once, in order; committed offset {JOBS}");
    Ok(())
}
