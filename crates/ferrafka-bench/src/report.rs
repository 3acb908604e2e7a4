//! Samples, medians and the printed tables.

use std::time::Duration;

use crate::Cli;
use crate::broker::Cluster;
use crate::cpu::Span;
use crate::peer::Peer;

/// One measured run of one client.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Messages per second of wall-clock time.
    pub rate: f64,
    /// Client CPU seconds (user + system, all threads) per million messages.
    pub cpu_per_million: f64,
    /// Rust heap allocations per message (all threads; librdkafka's C mallocs are not seen);
    /// `None` for a client in another process (the Python peer).
    pub allocs_per_msg: Option<f64>,
    /// Broker-child CPU seconds per million messages, when the broker is embedded.
    pub broker_per_million: Option<f64>,
    /// User-space instructions of the process per message, when they were counted.
    pub instr_per_msg: Option<f64>,
    /// Events a counting subscriber saw per message (the events-cost phase with one).
    pub events_per_msg: Option<f64>,
}

impl Sample {
    /// A sample from a measured span over `messages` messages.
    pub fn new(span: &Span, messages: u64, broker_cpu: Option<Duration>) -> Self {
        let per_million = |d: Duration| d.as_secs_f64() * 1e6 / messages as f64;
        Sample {
            rate: messages as f64 / span.wall.as_secs_f64().max(1e-9),
            cpu_per_million: per_million(span.cpu),
            allocs_per_msg: Some(span.allocs.allocations as f64 / messages as f64),
            broker_per_million: broker_cpu.map(per_million),
            instr_per_msg: span.instructions.map(|i| i as f64 / messages as f64),
            events_per_msg: None,
        }
    }

    /// One line for the per-round log.
    pub fn line(&self) -> String {
        let optional = |v: Option<f64>, show: fn(f64) -> String| v.map(show).unwrap_or_default();
        format!(
            "{:>10.0} msg/s  {:>7.3} CPU-s/M  {}{}{}{}",
            self.rate,
            self.cpu_per_million,
            self.allocs_per_msg
                .map(|a| format!("{a:>6.2} allocs/msg"))
                .unwrap_or_else(|| format!("{:>17}", "")),
            optional(self.broker_per_million, |b| format!(
                "  broker {b:>6.2} CPU-s/M"
            )),
            optional(self.instr_per_msg, |i| format!("  {i:.0} instr/msg")),
            optional(self.events_per_msg, |e| format!("  {e:.3} events/msg")),
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
    /// `consume` (with the partition count) or `produce`.
    pub phase: String,
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
    pub fn new(phase: impl Into<String>, client: &'static str) -> Self {
        Series {
            phase: phase.into(),
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
        let allocs: Vec<f64> = self
            .samples
            .iter()
            .filter_map(|s| s.allocs_per_msg)
            .collect();
        let optional = |f: fn(&Sample) -> Option<f64>| {
            let values: Vec<f64> = self.samples.iter().filter_map(f).collect();
            (!values.is_empty()).then(|| median(values))
        };
        Sample {
            rate: median(self.samples.iter().map(|s| s.rate)),
            cpu_per_million: median(self.samples.iter().map(|s| s.cpu_per_million)),
            allocs_per_msg: (!allocs.is_empty()).then(|| median(allocs)),
            broker_per_million: (!broker.is_empty()).then(|| median(broker)),
            instr_per_msg: optional(|s| s.instr_per_msg),
            events_per_msg: optional(|s| s.events_per_msg),
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

/// Prints the table of medians, one row per series.
pub fn print_table(series: &[&Series]) {
    println!();
    println!(
        "{:<12} {:<24} {:>13} {:>11} {:>10} {:>10} {:>10}",
        "phase", "client", "rounds", "msg/s", "CPU-s/M", "allocs/msg", "broker-s/M"
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
        let optional = |v: Option<f64>, digits: usize| {
            v.map(|v| format!("{v:.digits$}"))
                .unwrap_or_else(|| "-".into())
        };
        println!(
            "{:<12} {:<24} {:>13} {:>11.0} {:>10.3} {:>10} {:>10}",
            s.phase,
            s.client,
            rounds,
            m.rate,
            m.cpu_per_million,
            optional(m.allocs_per_msg, 2),
            optional(m.broker_per_million, 2),
        );
    }
}

/// Prints what the run measures and on what: sizes, machine, load, broker, peer.
pub fn print_header(cli: &Cli, cluster: &Cluster, peers: &[Peer]) {
    let produce_messages = cli.produce_messages.unwrap_or(cli.messages * 5);
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let broker = match &cluster.child {
        Some(_) => format!(
            "embedded tansu broker (child process) at {}",
            cluster.bootstrap
        ),
        None => format!("external cluster at {}", cluster.bootstrap),
    };
    println!(
        "ferrafka-bench {}: consume {} / produce {} messages of {} bytes, partitions {}, \
         {} round(s), max_messages {}, timeout {:?}",
        env!("CARGO_PKG_VERSION"),
        cli.messages,
        produce_messages,
        cli.payload_bytes,
        cli.partitions
            .iter()
            .map(i32::to_string)
            .collect::<Vec<_>>()
            .join(","),
        cli.rounds,
        cli.max_messages,
        cli.timeout
    );
    if !cli.kafka.is_empty() {
        println!("extra librdkafka properties: {:?}", cli.kafka);
    }
    // The load average tells whether parallel work (builds) shared the machine.
    let load = std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into());
    println!("machine: {cpus} CPUs ({model}), load average {load}; {broker}");
    for peer in peers {
        println!("peer: {}", peer.versions);
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
