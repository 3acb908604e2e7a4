//! The HTTP endpoint of a real server (`http_port`): `/metrics` with the expected series and
//! values, `/readyz` once the group is joined, `/healthz` through a slow batch and a
//! deliberate pause; and consumer lag that keeps moving for a paused partition while its
//! topic grows (librdkafka's own figure freezes there).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferrafka::instrumentation::Event;
use ferrafka::{App, ConsumeResult, Consumer, Context, Filters, Messages, ServerExit};

use crate::support::*;

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().unwrap().port()
}

/// `GET path` on the endpoint: (status, body).
fn get(port: u16, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("the endpoint listens");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("an HTTP status");
    let body = response
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}

/// The value of the series `line_start` (`name{labels}`) in a scrape, if present.
fn series(scrape: &str, line_start: &str) -> Option<f64> {
    scrape
        .lines()
        .find_map(|l| l.strip_prefix(line_start))
        .and_then(|v| v.trim().parse().ok())
}

#[test]
fn the_endpoint_serves_metrics_readiness_and_liveness() {
    let (rt, cluster, topic) = with_topic("http", 2);
    const N: u64 = 200;
    cluster.produce_spread(&rt, &topic, 0, N, 2);
    let group = unique("http-group");
    let port = free_port();
    let tracker = Tracker::default();
    let app = {
        let (tracker, topic, group) = (tracker.clone(), topic.clone(), group.clone());
        let bootstrap = cluster.bootstrap();
        App::builder()
            .setup(move |c| {
                c.client_id("http")
                    .group_id(group)
                    .kafka("bootstrap.servers", bootstrap)
                    .kafka("statistics.interval.ms", "500")
                    .http_port(port)
                    .max_wait_time(Duration::from_millis(100));
            })
            .routes(move |r| {
                r.topic(topic).consumer(move || Recording {
                    instance: 1,
                    tracker: tracker.clone(),
                    batch_sleep: Duration::ZERO,
                });
            })
            .build_with_env([])
    };
    let server = app.start(&Filters::default()).expect("starts");
    assert!(
        wait_until(Duration::from_secs(30), || get(port, "/readyz").0 == 200),
        "ready once joined: {:?}",
        get(port, "/readyz")
    );
    assert!(tracker.wait_for(N as usize, Duration::from_secs(60)));
    let labels =
        |p: i32| format!("{{consumer_group=\"{group}\",topic=\"{topic}\",partition=\"{p}\"}}");
    let settled = wait_until(Duration::from_secs(20), || {
        let (_, scrape) = get(port, "/metrics");
        (0..2).all(|p| {
            series(&scrape, &format!("ferrafka_consumer_lag{}", labels(p))) == Some(0.0)
                && series(&scrape, &format!("ferrafka_offset_stored{}", labels(p))) == Some(100.0)
        })
    });
    let (status, scrape) = get(port, "/metrics");
    assert_eq!(status, 200);
    assert!(settled, "lag 0 and offsets stored at 100:\n{scrape}");
    for p in 0..2 {
        let consumed = format!("ferrafka_messages_consumed_total{}", labels(p));
        assert_eq!(series(&scrape, &consumed), Some(100.0), "{scrape}");
    }
    let subscription_group = format!("{{subscription_group=\"{group}/default\"}}");
    let rebalances = format!("ferrafka_rebalances_total{subscription_group}");
    assert!(series(&scrape, &rebalances) >= Some(1.0), "{scrape}");
    let commits =
        format!("ferrafka_commits_total{{subscription_group=\"{group}/default\",outcome=\"ok\"}}");
    assert!(
        wait_until(Duration::from_secs(10), || {
            series(&get(port, "/metrics").1, &commits) >= Some(1.0)
        }),
        "commits counted"
    );
    assert!(scrape.contains("# TYPE ferrafka_batch_duration_seconds histogram"));
    assert!(scrape.ends_with("# EOF\n"), "OpenMetrics ends with # EOF");
    assert_eq!(
        get(port, "/healthz"),
        (200, r#"{"problems":[],"status":"ok"}"#.into())
    );
    assert_eq!(server.shutdown(), ServerExit::Clean);
}

/// Sleeps through its first batch, then pauses its partition for an hour after every batch.
struct SlowThenPaused {
    batches: u32,
}

impl Consumer for SlowThenPaused {
    async fn consume(&mut self, ctx: &mut Context, _: &Messages) -> ConsumeResult {
        self.batches += 1;
        if self.batches == 1 {
            tokio::time::sleep(Duration::from_secs(4)).await;
        }
        ctx.pause(Duration::from_secs(3600));
        Ok(())
    }
}

#[test]
fn a_slow_batch_and_a_pause_stay_live_while_the_paused_partitions_lag_keeps_moving() {
    let (rt, cluster, topic) = with_topic("lag", 1);
    cluster.produce_spread(&rt, &topic, 0, 10, 1);
    let port = free_port();
    let lags = Arc::new(Mutex::new(Vec::new()));
    let app = {
        let (topic, lags) = (topic.clone(), lags.clone());
        let bootstrap = cluster.bootstrap();
        App::builder()
            .setup(move |c| {
                c.client_id("lag")
                    .group_id(unique("lag-group"))
                    .kafka("bootstrap.servers", bootstrap)
                    .kafka("statistics.interval.ms", "500")
                    .http_port(port)
                    .stall_timeout(Duration::from_secs(2))
                    .max_wait_time(Duration::from_millis(100));
            })
            .routes(move |r| {
                r.topic(topic).consumer(|| SlowThenPaused { batches: 0 });
            })
            .subscribe(move |e: &Event<'_>| {
                if let Event::ConsumerLag {
                    lag,
                    high_watermark,
                    queried,
                    ..
                } = e
                {
                    lags.lock().unwrap().push((*lag, *high_watermark, *queried));
                }
            })
            .build_with_env([])
    };
    let server = app.start(&Filters::default()).expect("starts");
    assert!(wait_until(Duration::from_secs(30), || get(port, "/readyz")
        .0
        == 200));
    // The slow batch, then the pause: the topic grows by 10 every half second, and
    // `/healthz` is asked all along, well past the 2 s stall_timeout.
    let start = Instant::now();
    let mut produced = 10;
    while start.elapsed() < Duration::from_secs(10) {
        cluster.produce_spread(&rt, &topic, produced, produced + 10, 1);
        produced += 10;
        for _ in 0..5 {
            let (status, body) = get(port, "/healthz");
            assert_eq!(status, 200, "at {:?}: {body}", start.elapsed());
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let (_, scrape) = get(port, "/metrics");
    assert!(
        scrape.contains("reason=\"consumer\"} 1"),
        "the pause shows in the metrics:\n{scrape}"
    );
    assert_eq!(server.shutdown(), ServerExit::Clean);

    let lags = lags.lock().unwrap().clone();
    let queried: Vec<_> = lags.iter().filter(|(_, _, q)| *q).collect();
    assert!(
        queried.len() >= 4,
        "the paused partition's end was asked: {lags:?}"
    );
    let first = queried.first().unwrap();
    let last = queried.last().unwrap();
    assert!(
        last.1 >= first.1 + 40 && last.0 >= first.0 + 40,
        "the high watermark and the lag kept moving while paused: {lags:?}"
    );
    assert!(
        last.1 >= produced as i64 - 20,
        "the last figures follow the topic's end: {lags:?}"
    );
}

/// Two members of one group on a one-partition topic: the one the group gives nothing is
/// ready too (an empty assignment means it joined).
#[test]
fn a_member_with_no_partitions_is_ready() {
    let (_rt, cluster, topic) = with_topic("ready", 1);
    let group = unique("ready-group");
    let member = |port: u16| {
        let (topic, group) = (topic.clone(), group.clone());
        let bootstrap = cluster.bootstrap();
        App::builder()
            .setup(move |c| {
                c.client_id("ready")
                    .group_id(group)
                    .kafka("bootstrap.servers", bootstrap)
                    .http_port(port);
            })
            .routes(move |r| {
                r.topic(topic).consumer(|| Noop);
            })
            .build_with_env([])
    };
    let ports = [free_port(), free_port()];
    let first = member(ports[0]).start(&Filters::default()).expect("starts");
    assert!(wait_until(Duration::from_secs(30), || get(
        ports[0], "/readyz"
    )
    .0 == 200));
    let second = member(ports[1]).start(&Filters::default()).expect("starts");
    assert!(
        wait_until(Duration::from_secs(60), || {
            get(ports[0], "/readyz").0 == 200 && get(ports[1], "/readyz").0 == 200
        }),
        "both members ready: {:?} {:?}",
        get(ports[0], "/readyz"),
        get(ports[1], "/readyz")
    );
    assert_eq!(second.shutdown(), ServerExit::Clean);
    assert_eq!(first.shutdown(), ServerExit::Clean);
}
