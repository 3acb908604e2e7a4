//! The pages: each a function from plain data (a snapshot) to HTML. maud escapes every value it
//! interpolates; payload bytes are additionally rendered so no byte reaches the page raw.

mod bytes;
mod charts;
mod cluster;
mod dashboard;
mod groups;
mod health;
mod processes;
mod topics;

pub use bytes::{hex, text};
pub use cluster::cluster;
pub use dashboard::dashboard;
pub use groups::{group, groups};
pub use health::health;
pub use processes::{process, processes};
pub use topics::{browse, topic, topics};

use maud::{DOCTYPE, Markup, html};

/// The navigation entries: (page name, label, path).
const NAV: [(&str, &str, &str); 10] = [
    ("dashboard", "Dashboard", "/"),
    ("processes", "Processes", "/processes"),
    ("groups", "Consumer groups", "/groups"),
    ("topics", "Topics", "/topics"),
    ("errors", "Errors", "/errors"),
    ("dead-letters", "Dead letters", "/dead-letters"),
    ("commands", "Commands", "/commands"),
    ("audit", "Audit", "/audit"),
    ("cluster", "Cluster", "/cluster"),
    ("health", "Health", "/health"),
];

/// A whole page: `base` is the path the router is mounted under (empty at the root), `page`
/// the `data-page` name, `body` what goes in `main`.
pub fn layout(base: &str, page: &str, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · ferrafka" }
                link rel="stylesheet" href={ (base) "/assets/ui.css" };
                script src={ (base) "/assets/ui.js" } defer {}
            }
            body {
                nav {
                    span.brand { "ferrafka" }
                    @for (name, label, path) in NAV {
                        a data-testid={ "nav-" (name) } href={ (base) (path) }
                            class=[(name == page).then_some("current")] { (label) }
                    }
                }
                main data-testid="page" data-page=(page) {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// A write button: a `POST` form to `action` (under `base`) with the CSRF token and `fields`
/// as hidden inputs. A read-only UI (`csrf` is `None`) shows nothing instead. `testid` names
/// the button (`data-testid`); `confirm` is asked by the browser before sending.
pub fn write_button(
    base: &str,
    action: &str,
    csrf: Option<&str>,
    fields: &[(&str, &str)],
    label: &str,
    testid: &str,
    confirm: Option<&str>,
) -> Markup {
    html! {
        @if let Some(csrf) = csrf {
            form.write method="post" action={ (base) (action) } data-confirm=[confirm] {
                input type="hidden" name="csrf" value=(csrf);
                @for (name, value) in fields {
                    input type="hidden" name=(name) value=(value);
                }
                button type="submit" data-testid=(testid) { (label) }
            }
        }
    }
}

/// The notice a read-only UI shows where write buttons would be.
pub fn read_only_notice(csrf: Option<&str>) -> Markup {
    html! {
        @if csrf.is_none() {
            p.notice data-testid="read-only" { "This UI is read-only (web_read_only): it makes no writes." }
        }
    }
}

/// What the cluster could not answer, shown instead of failing the page.
pub fn problems(problems: &[String]) -> Markup {
    html! {
        @if !problems.is_empty() {
            ul.problems data-testid="problems" {
                @for p in problems { li { (p) } }
            }
        }
    }
}

/// An optional figure: the number, or `-` when unknown.
pub fn figure(value: Option<i64>) -> String {
    value.map_or_else(|| "-".to_string(), |v| v.to_string())
}

/// A rate with one decimal.
pub fn rate(value: f64) -> String {
    format!("{value:.1}")
}

/// A duration in milliseconds, short (`850 ms`, `12.3 s`, `4 min`, `2 h`).
pub fn age(ms: i64) -> String {
    match ms {
        ..1_000 => format!("{ms} ms"),
        1_000..60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        60_000..3_600_000 => format!("{} min", ms / 60_000),
        _ => format!("{} h", ms / 3_600_000),
    }
}

/// A time in milliseconds since the epoch, as RFC 3339 in UTC (seconds).
pub fn time(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// Howard Hinnant's days-to-civil: the calendar date of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// A path segment, percent-encoded (topic, group and process names may hold any character).
pub fn segment(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_ages_and_segments() {
        assert_eq!(time(0), "1970-01-01T00:00:00Z");
        assert_eq!(time(1_765_000_000_123), "2025-12-06T05:46:40Z");
        assert_eq!(age(850), "850 ms");
        assert_eq!(age(12_345), "12.3 s");
        assert_eq!(segment("a b/c:1"), "a%20b%2Fc%3A1");
    }
}
