//! What `info` says about routing patterns: how each is evaluated, and which of the cluster's
//! topics it matches now.

use std::fmt::Write as _;
use std::time::Duration;

use crate::App;
use crate::routing::{PatternEngine, SubscriptionGroup, Topic};

/// How long `info` waits for the cluster's topics when the app has patterns.
const MATCH_TIMEOUT: Duration = Duration::from_secs(5);

/// The `info` line of a pattern route.
pub(super) fn route_line(sg: &SubscriptionGroup, t: &Topic) -> Option<String> {
    let p = t.pattern().filter(|_| t.is_pattern())?;
    let engine = match p.engine() {
        PatternEngine::Client => {
            let refresh = sg
                .kafka
                .get("topic.metadata.refresh.interval.ms")
                .map_or("300000 (default)", String::as_str);
            format!(
                "matched by librdkafka (classic protocol, POSIX regex, searched); new topics \
                 within topic.metadata.refresh.interval.ms={refresh}"
            )
        }
        PatternEngine::Broker => {
            "matched by the broker (KIP-848, RE2/J, whole name); new topics on the broker's \
             regex refresh"
                .to_string()
        }
    };
    Some(format!(
        "  pattern {} {}{}: {engine}; max_messages={} max_wait_time={:?}",
        p.name(),
        p.regex(),
        if t.active { "" } else { " (inactive)" },
        t.max_messages,
        t.max_wait_time,
    ))
}

/// Which existing topics each pattern route matches now (a topic routed by name in the same
/// subscription group is left to its own route), or why that is unknown; `None` when the app
/// has no pattern.
pub(super) fn current_matches(app: &App) -> Option<String> {
    let groups = app.subscription_groups();
    if groups.iter().all(|sg| sg.active_patterns().is_empty()) {
        return None;
    }
    let mut out = String::from("\npatterns against the cluster's topics now:\n");
    let topics = match app
        .admin()
        .map(|a| a.with_timeout(MATCH_TIMEOUT))
        .and_then(|a| a.cluster_info())
    {
        Ok(info) => info.topics,
        Err(e) => {
            let error = crate::error::error_chain(&e);
            let _ = writeln!(out, "  unknown: cannot read the cluster's topics ({error})");
            return Some(out);
        }
    };
    for sg in groups {
        let named = sg.active_topics();
        for p in sg.active_patterns() {
            let matched: Vec<&str> = topics
                .iter()
                .map(|t| t.name.as_str())
                .filter(|t| p.matches(t) && !named.contains(t))
                .collect();
            let _ = writeln!(
                out,
                "  {}/{} pattern {}: {}",
                sg.consumer_group,
                sg.name,
                p.name(),
                if matched.is_empty() {
                    "no topic".to_string()
                } else {
                    matched.join(", ")
                }
            );
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use crate::App;

    #[test]
    fn info_shows_each_pattern_with_its_engine_and_refresh_interval() {
        let app = App::builder()
            .routes(|r| {
                r.topic("audit").consumer(|| crate::noop::Noop);
                r.pattern("orders", "^orders-[a-z]+$")
                    .consumer(|| crate::noop::Noop)
                    .kafka("topic.metadata.refresh.interval.ms", "30000");
            })
            .build_with_env([]);
        let text = super::super::info(&app);
        assert!(text.contains("  topic audit:"), "{text}");
        assert!(
            text.contains(
                "  pattern orders ^orders-[a-z]+$: matched by librdkafka (classic protocol, \
                 POSIX regex, searched); new topics within \
                 topic.metadata.refresh.interval.ms=30000;"
            ),
            "{text}"
        );
    }
}
