//! The Grafana dashboard shipped in `docs/grafana/ferrafka-dashboard.json` cannot drift from
//! the metrics: every metric name, label (in selectors, `by (…)` clauses, `label_values` and
//! legends) and literal label value its queries use must exist in a scrape that
//! [`Metrics`] renders after events that create every series; and every metric family
//! [`Metrics`] registers must be on the dashboard, or listed in [`NOT_ON_DASHBOARD`] with why.
//!
//! The queries are read by a small PromQL tokenizer, enough for what a dashboard holds: it
//! refuses what it does not understand (an unknown identifier, a selector without a metric
//! name) rather than skip it.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use ferrafka::instrumentation::{ErrorKind, Event, Metrics, PartitionRef, PauseReason, Subscriber};
use serde_json::Value;

mod promql;

use promql::*;

const DASHBOARD: &str = include_str!("../../../../docs/grafana/ferrafka-dashboard.json");

/// Labels Prometheus adds to every series it scrapes (the target's), not in the scrape text.
const TARGET_LABELS: &[&str] = &["instance", "job"];

/// Families deliberately left off the dashboard, with why.
const NOT_ON_DASHBOARD: &[(&str, &str)] = &[
    (
        "ferrafka_offset_stored",
        "a position, not a rate; the lag panels show what it means for on-call",
    ),
    (
        "ferrafka_pattern_topics",
        "a count of topics joining through patterns, rare and read per app, not watched",
    ),
];

/// Grafana's own variables, always defined.
const BUILTIN_VARIABLES: &[&str] = &["__rate_interval", "__range", "__interval"];

// ---------------------------------------------------------------------------------------------
// The scrape

/// What a scrape holds: every sample name with the values seen for each of its labels, and
/// the families its `# TYPE` lines declare (with or without samples).
#[derive(Debug, Default)]
struct Scrape {
    samples: BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
    families: BTreeMap<String, String>,
}

impl Scrape {
    fn parse(text: &str) -> Scrape {
        let mut scrape = Scrape::default();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("# TYPE name type");
                scrape.families.insert(name.to_string(), kind.to_string());
                continue;
            }
            if line.starts_with('#') || line.is_empty() {
                continue;
            }
            let end = line.find(['{', ' ']).expect("a sample line has a value");
            let labels = scrape.samples.entry(line[..end].to_string()).or_default();
            if line[end..].starts_with('{') {
                for (label, value) in sample_labels(&line[end + 1..]) {
                    labels.entry(label).or_default().insert(value);
                }
            }
        }
        scrape
    }

    /// The values of `label` on `metric`, `None` when the metric lacks it.
    fn values(&self, metric: &str, label: &str) -> Option<&BTreeSet<String>> {
        self.samples.get(metric)?.get(label)
    }

    fn has_label(&self, metric: &str, label: &str) -> bool {
        TARGET_LABELS.contains(&label) || self.values(metric, label).is_some()
    }
}

/// `a="x",b="y\"z"} 1` → [(a, x), (b, y"z)].
fn sample_labels(mut text: &str) -> Vec<(String, String)> {
    let mut labels = Vec::new();
    loop {
        text = text.trim_start_matches(',');
        if text.starts_with('}') {
            return labels;
        }
        let (name, rest) = text.split_once("=\"").expect("label=\"value\"");
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next().expect("a closing quote") {
                (_, '\\') => value.push(chars.next().expect("an escaped char").1),
                (i, '"') => break i,
                (_, c) => value.push(c),
            }
        };
        labels.push((name.to_string(), value));
        text = &rest[end + 1..];
    }
}

// ---------------------------------------------------------------------------------------------
// The dashboard

/// Every panel, rows' nested panels included.
fn panels(dashboard: &Value) -> Vec<&Value> {
    fn walk<'a>(list: &'a Value, out: &mut Vec<&'a Value>) {
        for p in list.as_array().into_iter().flatten() {
            out.push(p);
            walk(&p["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

/// A query found on the dashboard: where, the PromQL, and the legend's `{{labels}}`.
struct Found {
    place: String,
    expr: String,
    legend_labels: Vec<String>,
    /// `label_values(…, label)`: the label asked for.
    label_values_of: Option<String>,
}

fn queries(dashboard: &Value) -> Vec<Found> {
    let mut found = Vec::new();
    for panel in panels(dashboard) {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let legend = target["legendFormat"].as_str().unwrap_or("");
            found.push(Found {
                place: format!("panel {}, target {}", panel["title"], target["refId"]),
                expr: target["expr"]
                    .as_str()
                    .expect("a target's expr")
                    .to_string(),
                legend_labels: legend_labels(legend),
                label_values_of: None,
            });
        }
    }
    for var in variables_of(dashboard) {
        if var["type"] != "query" {
            continue;
        }
        let query = var["query"]["query"]
            .as_str()
            .or(var["query"].as_str())
            .expect("a query variable's query");
        let inner = query
            .strip_prefix("label_values(")
            .and_then(|q| q.strip_suffix(')'))
            .unwrap_or_else(|| panic!("variable {}: only label_values(…) is read", var["name"]));
        let (selector, label) = inner.rsplit_once(',').expect("label_values(metric, label)");
        found.push(Found {
            place: format!("variable {}", var["name"]),
            expr: selector.trim().to_string(),
            legend_labels: Vec::new(),
            label_values_of: Some(label.trim().to_string()),
        });
    }
    found
}

fn variables_of(dashboard: &Value) -> &[Value] {
    dashboard["templating"]["list"]
        .as_array()
        .expect("templating.list")
}

/// `{{topic}}/{{partition}}` → [topic, partition].
fn legend_labels(legend: &str) -> Vec<String> {
    legend
        .split("{{")
        .skip(1)
        .map(|part| {
            let (label, _) = part.split_once("}}").expect("a closed {{label}}");
            label.trim().to_string()
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The metrics

/// A scrape after events that create every series of every family.
fn full_scrape() -> String {
    let metrics = Metrics::new();
    let p = |partition| PartitionRef {
        consumer_group: "shop",
        topic: "orders",
        partition,
    };
    let ms = Duration::from_millis(20);
    let assigned = [("orders".to_string(), 0), ("orders".to_string(), 9)];
    let gone = [("orders".to_string(), 9)];
    let committed = [("orders".to_string(), 0, 4)];
    let mut events = vec![
        Event::PartitionsAssigned {
            subscription_group: "shop/default",
            partitions: &assigned,
        },
        Event::BatchConsumed {
            partition: p(0),
            offsets: (0, 2),
            messages: 3,
            attempt: 1,
            duration: ms,
        },
        Event::BatchFailed {
            partition: p(0),
            offsets: (3, 3),
            attempt: 1,
            duration: ms,
            error: "bad payload",
            backtrace: None,
        },
        Event::RetryScheduled {
            partition: p(0),
            offset: 3,
            attempt: 2,
            backoff: Duration::from_secs(1),
        },
        Event::DeadLettered {
            partition: p(0),
            offset: 3,
            dead_letter_topic: "orders-dlq",
            attempts: 2,
        },
        Event::OffsetStored {
            partition: p(0),
            next: 4,
        },
        Event::ConsumerLag {
            partition: p(0),
            lag: 10,
            high_watermark: 14,
            next_offset: 4,
            position: 4,
            queried: false,
        },
        Event::OffsetsCommitted {
            subscription_group: "shop/default",
            offsets: &committed,
            error: None,
        },
        Event::OffsetsCommitted {
            subscription_group: "shop/default",
            offsets: &committed,
            error: Some("coordinator not available"),
        },
        // Partition 9 goes (its gauges with it); partition 0 stays.
        Event::PartitionsRevoked {
            subscription_group: "shop/default",
            partitions: &gone,
        },
        Event::PartitionsLost {
            subscription_group: "shop/default",
            partitions: &gone,
        },
        Event::Delivered {
            topic: "orders-dlq",
            partition: 0,
            offset: 0,
        },
        Event::DeliveryFailed {
            topic: "orders-dlq",
            partition: -1,
            error: "message timed out",
        },
    ];
    // One paused partition per reason (a partition has one pause series at a time).
    let reasons = [
        PauseReason::Retry,
        PauseReason::Consumer,
        PauseReason::Backlog,
        PauseReason::Quiet,
    ];
    for (i, reason) in (1..).zip(reasons) {
        events.push(Event::Paused {
            partition: p(i),
            reason,
        });
    }
    let kinds = [
        ErrorKind::RevokedHook,
        ErrorKind::ShutdownHook,
        ErrorKind::DeadLetter,
        ErrorKind::Executor,
        ErrorKind::Listener,
        ErrorKind::Producer,
        ErrorKind::Statistics,
    ];
    events.extend(kinds.into_iter().map(|kind| Event::Error {
        kind,
        partition: None,
        error: "boom",
    }));
    // The producer's statistics: a queue and one broker's round trip.
    let broker = ferrafka::rdkafka::statistics::Broker {
        name: "kafka-0:9092/0".into(),
        nodename: "kafka-0:9092".into(),
        rtt: Some(ferrafka::rdkafka::statistics::Window {
            avg: 1500,
            cnt: 3,
            ..Default::default()
        }),
        ..Default::default()
    };
    let statistics = ferrafka::rdkafka::Statistics {
        msg_cnt: 7,
        brokers: [("kafka-0:9092/0".to_string(), broker)].into(),
        ..Default::default()
    };
    events.push(Event::Statistics {
        client: "producer",
        statistics: &statistics,
    });
    for event in &events {
        metrics.on_event(event);
    }
    metrics.render()
}

/// Why a query does not fit the scrape, one line each. The labels of a metric that is not
/// in the scrape are not judged: its name is the problem.
fn problems(found: &Found, scrape: &Scrape, defined: &BTreeSet<String>) -> Vec<String> {
    let mut problems = Vec::new();
    let q = Query::read(&found.expr);
    let known = |m: &str| scrape.samples.contains_key(m);
    for (_, metric) in &q.metrics {
        if !known(metric) {
            problems.push(format!("no metric {metric} in the scrape"));
        }
    }
    for (metric, label, op, value) in &q.matchers {
        if !known(metric) {
            continue;
        }
        if !scrape.has_label(metric, label) {
            problems.push(format!("{metric} has no label {label}"));
        } else if matches!(op.as_str(), "=" | "!=") && !value.contains('$') {
            let values: Vec<_> = scrape.values(metric, label).into_iter().flatten().collect();
            if !values.contains(&value) {
                problems.push(format!(
                    "{metric}{{{label}}} is never {value:?} (it is one of {values:?})"
                ));
            }
        }
    }
    for (keyword, labels, scope) in &q.groupings {
        let metrics: Vec<_> = q.metrics_in(scope).filter(|m| known(m)).collect();
        if metrics.is_empty() {
            continue;
        }
        for label in labels {
            let on = |m: &&str| scrape.has_label(m, label);
            // An aggregation's labels must be on everything it aggregates; vector matching's
            // on either side.
            let ok = match keyword.as_str() {
                "by" | "without" => metrics.iter().all(on),
                _ => metrics.iter().any(on),
            };
            if !ok {
                problems.push(format!("{keyword} ({label}): not a label of {metrics:?}"));
            }
        }
    }
    let all: Vec<_> = q.metrics.iter().map(|(_, m)| m.as_str()).collect();
    let labelled = found.legend_labels.iter().chain(&found.label_values_of);
    for label in labelled.filter(|_| all.iter().all(|m| known(m))) {
        if !all.iter().any(|m| scrape.has_label(m, label)) {
            problems.push(format!("{{{{{label}}}}}: not a label of {all:?}"));
        }
    }
    for v in &q.variables {
        if !defined.contains(v) && !BUILTIN_VARIABLES.contains(&v.as_str()) {
            problems.push(format!("${v} is not a variable of the dashboard"));
        }
    }
    problems
}

fn dashboard() -> Value {
    serde_json::from_str(DASHBOARD).expect("the dashboard is JSON")
}

#[test]
fn every_metric_label_and_value_the_dashboard_queries_is_in_a_scrape() {
    let dashboard = dashboard();
    let text = full_scrape();
    let scrape = Scrape::parse(&text);
    let defined: BTreeSet<String> = variables_of(&dashboard)
        .iter()
        .map(|v| v["name"].as_str().expect("a variable's name").to_string())
        .collect();
    let found = queries(&dashboard);
    assert!(found.len() > 20, "only {} queries found", found.len());
    let mut report = Vec::new();
    for f in &found {
        let problems = problems(f, &scrape, &defined);
        if !problems.is_empty() {
            report.push(format!(
                "{}: {}\n  - {}",
                f.place,
                f.expr,
                problems.join("\n  - ")
            ));
        }
    }
    assert!(
        report.is_empty(),
        "the dashboard queries what the metrics do not have:\n{}\n\nthe scrape:\n{text}",
        report.join("\n")
    );
}

#[test]
fn every_metric_family_has_series_in_the_scrape_and_a_panel() {
    let dashboard = dashboard();
    let text = full_scrape();
    let scrape = Scrape::parse(&text);
    let used: BTreeSet<String> = queries(&dashboard)
        .iter()
        .flat_map(|f| Query::read(&f.expr).metrics)
        .map(|(_, m)| m)
        .collect();
    assert!(scrape.families.len() >= 17, "{:?}", scrape.families);
    for (family, kind) in &scrape.families {
        let suffixes: &[&str] = match kind.as_str() {
            "counter" => &["_total"],
            "histogram" => &["_bucket", "_sum", "_count"],
            _ => &[""],
        };
        let samples: Vec<String> = suffixes.iter().map(|s| format!("{family}{s}")).collect();
        assert!(
            samples.iter().all(|s| scrape.samples.contains_key(s)),
            "{family} ({kind}) has no series: feed this test an event that creates one\n{text}"
        );
        let excluded = NOT_ON_DASHBOARD.iter().any(|(f, _)| f == family);
        let on_dashboard = samples.iter().any(|s| used.contains(s));
        assert!(
            on_dashboard != excluded,
            "{family}: {}",
            if excluded {
                "on the dashboard and in NOT_ON_DASHBOARD: drop it from the list"
            } else {
                "on no panel of docs/grafana/ferrafka-dashboard.json: add one, or list it \
                 in NOT_ON_DASHBOARD with why"
            }
        );
    }
}

#[test]
fn the_dashboard_has_the_shape_grafana_imports() {
    let dashboard = dashboard();
    assert!(dashboard["schemaVersion"].as_u64().is_some_and(|v| v >= 36));
    assert_eq!(dashboard["uid"], "ferrafka");
    let vars = variables_of(&dashboard);
    let var = |name: &str| {
        vars.iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no variable {name}"))
    };
    assert_eq!(var("datasource")["type"], "datasource");
    assert_eq!(var("datasource")["query"], "prometheus");
    for name in ["consumer_group", "topic"] {
        assert_eq!(var(name)["type"], "query", "{name}");
    }
    let datasource = serde_json::json!({"type": "prometheus", "uid": "${datasource}"});
    let mut ids = BTreeSet::new();
    for panel in panels(&dashboard) {
        let title = &panel["title"];
        assert!(
            ids.insert(panel["id"].as_u64().expect("an id")),
            "id of {title}"
        );
        for key in ["h", "w", "x", "y"] {
            assert!(panel["gridPos"][key].is_u64(), "gridPos.{key} of {title}");
        }
        if panel["type"] == "row" {
            continue;
        }
        let description = panel["description"].as_str().unwrap_or("");
        assert!(description.len() > 20, "{title} needs a description");
        assert_eq!(panel["datasource"], datasource, "{title}");
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title} has no query");
        let mut refs = BTreeSet::new();
        for t in targets {
            assert_eq!(t["datasource"], datasource, "{title}");
            assert!(
                refs.insert(t["refId"].as_str().expect("a refId")),
                "{title}"
            );
        }
    }
}

/// The checker itself: a renamed metric, label or value, and an unknown variable, are caught.
#[test]
fn the_checker_catches_renames() {
    let scrape = Scrape::parse(&full_scrape());
    let defined: BTreeSet<String> = ["consumer_group".to_string()].into();
    let check = |expr: &str, legend: &str| {
        let found = Found {
            place: String::new(),
            expr: expr.to_string(),
            legend_labels: legend_labels(legend),
            label_values_of: None,
        };
        problems(&found, &scrape, &defined)
    };
    let fine = "sum by (le, topic) (rate(ferrafka_batch_duration_seconds_bucket{consumer_group=~\"$consumer_group\"}[$__rate_interval]))";
    assert_eq!(check(fine, "{{topic}}"), Vec::<String>::new());
    let fine = "sum(ferrafka_batches_total{outcome=\"failed\"}) by (topic)";
    assert_eq!(check(fine, ""), Vec::<String>::new());
    for (expr, legend, problem) in [
        ("rate(ferrafka_messages_consumed[1m])", "", "no metric"),
        ("ferrafka_consumer_lag{group=\"a\"}", "", "no label group"),
        ("ferrafka_batches_total{outcome=\"ok\"}", "", "never \"ok\""),
        ("sum by (group) (ferrafka_consumer_lag)", "", "by (group)"),
        ("sum(ferrafka_consumer_lag) by (group)", "", "by (group)"),
        ("ferrafka_consumer_lag", "{{group}}", "{{group}}"),
        ("ferrafka_consumer_lag{topic=~\"$topic\"}", "", "$topic"),
        ("rate(ferrafka_retries_total[$interval])", "", "$interval"),
        ("topk(${n:raw}, ferrafka_consumer_lag)", "", "$n is not"),
        ("ferrafka_consumer_lag > bool 1 or up", "", "no metric up"),
    ] {
        let found = check(expr, legend);
        assert!(
            found.iter().any(|p| p.contains(problem)),
            "{expr}: {found:?} (expected {problem:?})"
        );
    }
}
