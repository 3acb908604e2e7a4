//! Samples, medians and the printed tables.

use std::time::Duration;

use crate::cpu::Span;

/// One measured run of one client.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Messages per second of wall-clock time.
    pub rate: f64,
    /// Client CPU seconds (user + system, all threads) per million messages.
    pub cpu_per_million: f64,
    /// Broker-child CPU seconds per million messages, when the broker is embedded.
    pub broker_per_million: Option<f64>,
}

impl Sample {
    /// A sample from a measured span over `messages` messages.
    pub fn new(span: &Span, messages: u64, broker_cpu: Option<Duration>) -> Self {
        let per_million = |d: Duration| d.as_secs_f64() * 1e6 / messages as f64;
        Sample {
            rate: messages as f64 / span.wall.as_secs_f64().max(1e-9),
            cpu_per_million: per_million(span.cpu),
            broker_per_million: broker_cpu.map(per_million),
        }
    }

    /// One line for the per-round log.
    pub fn line(&self) -> String {
        format!(
            "{:>10.0} msg/s  {:>7.3} CPU-s/M{}",
            self.rate,
            self.cpu_per_million,
            self.broker_per_million
                .map(|b| format!("  broker {b:>6.2} CPU-s/M"))
                .unwrap_or_default()
        )
    }
}

/// The median of `values` (mean of the middle two for an even count); NaN when empty.
pub fn median(values: impl IntoIterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.into_iter().collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}

/// All samples of one client in one direction.
#[derive(Debug, Clone)]
pub struct Series {
    /// `consume` or `produce`.
    pub phase: &'static str,
    /// Which client.
    pub client: &'static str,
    /// One per successful round.
    pub samples: Vec<Sample>,
    /// Rounds that failed (no sample).
    pub failures: usize,
    /// Rounds that hit the timeout; their samples cover the messages seen until then.
    pub stalled: usize,
}

impl Series {
    /// An empty series.
    pub fn new(phase: &'static str, client: &'static str) -> Self {
        Series {
            phase,
            client,
            samples: Vec::new(),
            failures: 0,
            stalled: 0,
        }
    }

    /// Medians of every column.
    pub fn medians(&self) -> Sample {
        let broker: Vec<f64> = self
            .samples
            .iter()
            .filter_map(|s| s.broker_per_million)
            .collect();
        Sample {
            rate: median(self.samples.iter().map(|s| s.rate)),
            cpu_per_million: median(self.samples.iter().map(|s| s.cpu_per_million)),
            broker_per_million: (!broker.is_empty()).then(|| median(broker)),
        }
    }

    /// Median of the per-round ratios `self / base` of CPU per message (rounds are paired);
    /// NaN when a round failed, which breaks the pairing.
    pub fn paired_cpu_ratio(&self, base: &Series) -> f64 {
        if self.failures > 0 || base.failures > 0 {
            return f64::NAN;
        }
        median(
            self.samples
                .iter()
                .zip(&base.samples)
                .map(|(a, b)| a.cpu_per_million / b.cpu_per_million),
        )
    }
}

/// Prints the table of medians and the ratios of each ferrafka row to its raw baseline.
pub fn print_summary(series: &[Series], baselines: &[(&str, &str)], target: f64) {
    println!();
    println!(
        "{:<8} {:<24} {:>13} {:>11} {:>10} {:>10}",
        "phase", "client", "rounds", "msg/s", "CPU-s/M", "broker-s/M"
    );
    for s in series {
        let m = s.medians();
        let mut rounds = s.samples.len().to_string();
        if s.stalled > 0 {
            rounds = format!("{rounds}({} stalled)", s.stalled);
        }
        if s.failures > 0 {
            rounds = format!("{rounds}+{} failed", s.failures);
        }
        println!(
            "{:<8} {:<24} {:>13} {:>11.0} {:>10.3} {:>10}",
            s.phase,
            s.client,
            rounds,
            m.rate,
            m.cpu_per_million,
            m.broker_per_million
                .map(|b| format!("{b:.2}"))
                .unwrap_or_else(|| "-".into())
        );
    }
    println!();
    println!("ratios ferrafka/raw (medians; CPU per message target <= {target:.2}):");
    for (client, base) in baselines {
        let (Some(a), Some(b)) = (
            series.iter().find(|s| s.client == *client),
            series.iter().find(|s| s.client == *base),
        ) else {
            continue;
        };
        if a.samples.is_empty() || b.samples.is_empty() {
            continue;
        }
        let (ma, mb) = (a.medians(), b.medians());
        let cpu = ma.cpu_per_million / mb.cpu_per_million;
        println!(
            "  {:<8} {:<24} msg/s x{:.3}   CPU/msg x{:.3} (paired rounds x{:.3})  {}",
            a.phase,
            a.client,
            ma.rate / mb.rate,
            cpu,
            a.paired_cpu_ratio(b),
            if cpu <= target {
                "within target"
            } else {
                "MISSES target"
            }
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median([3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median([4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median([]).is_nan());
    }
}
