//! Filters and hooks through the tester: the same machine as the server, on the virtual clock.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::*;
use crate::filters::{Expire, Throttle};
use crate::{ConsumeResult, Consumer, Messages};

#[derive(Clone, Default)]
struct Hooked {
    ticks: Arc<AtomicUsize>,
    idles: Arc<AtomicUsize>,
}

impl Consumer for Hooked {
    async fn consume(&mut self, _: &mut Context, _: &Messages) -> ConsumeResult {
        Ok(())
    }

    async fn tick(&mut self, _: &mut Context) -> ConsumeResult {
        self.ticks.fetch_add(1, Ordering::SeqCst);
        Err("a failing tick loses nothing".into())
    }

    async fn idle(&mut self, _: &mut Context) -> ConsumeResult {
        self.idles.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

fn app(
    hooked: &Hooked,
    route: impl Fn(&mut crate::routing::TopicRoute) + Send + Sync + 'static,
) -> App {
    let hooked = hooked.clone();
    App::builder()
        .setup(|c| {
            c.max_messages(10);
        })
        .routes(move |r| {
            let hooked = hooked.clone();
            route(r.topic("in").consumer(move || hooked.clone()));
        })
        .build_with_env([])
}

#[tokio::test]
async fn a_throttled_topic_runs_everything_in_order_one_budget_per_interval() {
    let app = app(&Hooked::default(), |r| {
        r.filter(Throttle::new(4, Duration::from_secs(1)));
    });
    let mut tester = Tester::new(&app);
    for n in 0..10 {
        tester.produce("in", n.to_string());
    }
    tester.consume().await;
    let runs: Vec<_> = tester
        .runs()
        .into_iter()
        .map(|r| (r.offsets, r.at))
        .collect();
    let second = Duration::from_secs(1);
    assert_eq!(
        runs,
        vec![
            (vec![0, 1, 2, 3], Duration::ZERO),
            (vec![4, 5, 6, 7], second),
            (vec![8, 9], 2 * second),
        ]
    );
    assert_eq!(tester.marked("in", 0), Some(10));
}

#[tokio::test]
async fn expired_messages_never_reach_the_consumer_and_are_marked() {
    let app = app(&Hooked::default(), |r| {
        r.filter(Expire::after(Duration::from_secs(60)));
    });
    let mut tester = Tester::new(&app);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    for (n, age_ms) in [(0, 120_000), (1, 120_000), (2, 0), (3, 120_000)] {
        tester.produce(
            "in",
            TestRecord::new(format!("{n}")).timestamp(now - age_ms),
        );
    }
    tester.consume().await;
    let runs: Vec<_> = tester.runs().into_iter().map(|r| r.offsets).collect();
    assert_eq!(runs, vec![vec![2]]);
    assert_eq!(tester.marked("in", 0), Some(4), "3 dropped after 2 ran");
}

#[tokio::test]
async fn idle_runs_once_and_ticks_run_as_the_clock_passes_them_even_when_they_fail() {
    let hooked = Hooked::default();
    let app = app(&hooked, |r| {
        r.tick_interval(Duration::from_secs(1))
            .idle_after(Duration::from_secs(5));
    });
    let mut tester = Tester::new(&app);
    tester.produce("in", "0");
    tester.consume().await;
    assert_eq!(
        hooked.idles.load(Ordering::SeqCst),
        1,
        "consume waits for idle"
    );
    let ticks = hooked.ticks.load(Ordering::SeqCst);
    tester.advance(Duration::from_secs(1));
    tester.consume().await;
    assert_eq!(hooked.ticks.load(Ordering::SeqCst), ticks + 1);
    tester.produce("in", "1");
    tester.consume().await;
    assert_eq!(
        tester.marked("in", 0),
        Some(2),
        "failing ticks lose nothing"
    );
    assert_eq!(hooked.idles.load(Ordering::SeqCst), 2, "a new quiet spell");
}
