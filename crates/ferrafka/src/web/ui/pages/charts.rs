//! Sparklines: inline SVG drawn on the server, so pages need no chart library.

use maud::{Markup, html};

const WIDTH: f64 = 300.0;
const HEIGHT: f64 = 60.0;

/// A sparkline of `values` (oldest first), labelled for screen readers.
pub(super) fn sparkline(testid: &str, label: &str, values: &[f64]) -> Markup {
    let max = values.iter().copied().fold(0.0_f64, f64::max);
    let step = match values.len() {
        0 | 1 => 0.0,
        n => WIDTH / (n - 1) as f64,
    };
    let mut points = String::with_capacity(values.len() * 12);
    for (i, v) in values.iter().enumerate() {
        let y = match max > 0.0 {
            true => HEIGHT - 2.0 - (v / max) * (HEIGHT - 4.0),
            false => HEIGHT - 2.0,
        };
        points.push_str(&format!("{:.1},{:.1} ", i as f64 * step, y));
    }
    html! {
        svg.spark data-testid=(testid) role="img" aria-label=(label)
            viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } preserveAspectRatio="none" {
            title { (label) }
            @if values.len() > 1 {
                polyline points=(points.trim_end()) fill="none" stroke="currentColor" stroke-width="1.5" {}
            }
        }
    }
}
