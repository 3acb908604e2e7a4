//! The closing summary: the table of medians, the idle readings, and each figure against its
//! issue-12 target. The targets are printed, never asserted: the bench always exits 0 on a
//! completed run.

use crate::idle::{self, Reading};
use crate::instructions;
use crate::report::{self, Sample, Series};
use crate::rounds::{ConsumeRows, ProduceRows};

/// Consume: ferrafka's client CPU per message at most this many times the raw loop's.
const CONSUME_CPU: f64 = 1.10;
/// Consume: the framework's own Rust allocations per message (ferrafka − raw) at most this.
const FRAMEWORK_ALLOCS: f64 = 1.0;
/// Produce: ferrafka's client CPU per message at most this many times the raw loop's.
const PRODUCE_CPU: f64 = 1.05;
/// Idle: an idle ferrafka server's CPU per second at most this many times an idle raw
/// consumer's.
const IDLE_CPU: f64 = 2.0;

/// Everything a run measured.
#[derive(Default)]
pub struct Summary {
    /// One entry per partition count.
    pub consume: Vec<ConsumeRows>,
    /// Produce, when measured.
    pub produce: Option<ProduceRows>,
    /// Idle readings, when measured.
    pub idle: Vec<(&'static str, Reading)>,
    /// Why peers were skipped.
    pub peers_skipped: Vec<String>,
}

fn verdict(value: f64, target: f64) -> &'static str {
    if value.is_nan() {
        "no figure"
    } else if value <= target {
        "within target"
    } else {
        "MISSES target"
    }
}

/// Both series have samples: a comparison means something.
fn comparable<'a>(a: &'a Series, b: &'a Series) -> Option<(&'a Series, &'a Series)> {
    (!a.samples.is_empty() && !b.samples.is_empty()).then_some((a, b))
}

impl Summary {
    /// Prints the tables and the targets.
    pub fn print(&self) {
        let mut series: Vec<&Series> = Vec::new();
        for c in &self.consume {
            series.extend([
                &c.raw,
                &c.ferrafka,
                &c.events_none,
                &c.events_one,
                &c.reporting,
            ]);
            series.extend(&c.peers);
        }
        if let Some(p) = &self.produce {
            series.extend([&p.raw, &p.produce_async, &p.produce_many]);
        }
        series.retain(|s| !s.samples.is_empty() || s.failures > 0);
        if !series.is_empty() {
            report::print_table(&series);
            println!(
                "(allocs/msg: Rust heap allocations of the whole bench process per message; \
                 librdkafka's C allocations are not counted)"
            );
        }
        if !self.idle.is_empty() {
            println!();
            println!("{:<37} {:>12}", "idle client", "CPU-ms/s");
            for (name, r) in &self.idle {
                println!("{name:<37} {:>12.1}", r.cpu_ms_per_s);
            }
        }
        for why in &self.peers_skipped {
            println!();
            println!("peer row skipped: {why}");
        }
        println!();
        println!("targets (printed, not asserted; ratios are of medians):");
        for c in &self.consume {
            self.print_consume(c);
        }
        if let Some(p) = &self.produce {
            for s in [&p.produce_async, &p.produce_many] {
                if let Some((s, raw)) = comparable(s, &p.raw) {
                    cpu_line("produce", s, raw, PRODUCE_CPU);
                }
            }
        }
        self.print_idle_target();
        self.print_events_cost();
        self.print_reporting_cost();
    }

    /// Consume rate and CPU per message with reporting for `web` on, against the same
    /// phase with it off.
    fn print_reporting_cost(&self) {
        let rows: Vec<&ConsumeRows> = self
            .consume
            .iter()
            .filter(|c| comparable(&c.reporting, &c.ferrafka).is_some())
            .collect();
        if rows.is_empty() {
            return;
        }
        println!();
        println!("reporting cost (reporting on, report_interval 1 s, vs off; medians, no target):");
        for c in rows {
            let (off, on) = (c.ferrafka.medians(), c.reporting.medians());
            println!(
                "  consume {}p  reporting: off {:.0} msg/s, {:.3} CPU-s/M msgs; on {:.0} msg/s, \
                 {:.3} CPU-s/M msgs; ratio on/off: rate x{:.3}, CPU x{:.3} (paired rounds x{:.3})",
                c.partitions,
                off.rate,
                off.cpu_per_million,
                on.rate,
                on.cpu_per_million,
                on.rate / off.rate,
                on.cpu_per_million / off.cpu_per_million,
                c.reporting.paired_cpu_ratio(&c.ferrafka),
            );
        }
    }

    /// Consume CPU and instructions per message with no event subscriber and with one.
    fn print_events_cost(&self) {
        let rows: Vec<&ConsumeRows> = self
            .consume
            .iter()
            .filter(|c| comparable(&c.events_none, &c.events_one).is_some())
            .collect();
        if rows.is_empty() {
            return;
        }
        println!();
        println!(
            "events cost (with nobody subscribed, events must cost nothing measurable; \
             medians, no target):"
        );
        let instr = |m: &Sample| {
            m.instr_per_msg
                .map_or_else(|| "n/a".to_string(), |i| format!("{i:.0}"))
        };
        for c in rows {
            let (none, one) = (c.events_none.medians(), c.events_one.medians());
            let instr_ratio = match (none.instr_per_msg, one.instr_per_msg) {
                (Some(n), Some(o)) => format!("x{:.3}", o / n),
                _ => "n/a".to_string(),
            };
            let paired: Vec<f64> = c
                .events_one
                .samples
                .iter()
                .zip(&c.events_none.samples)
                .map(|(o, n)| o.cpu_per_million / n.cpu_per_million)
                .collect();
            let spread = paired
                .iter()
                .copied()
                .fold((f64::INFINITY, 0.0f64), |(lo, hi), r| {
                    (lo.min(r), hi.max(r))
                });
            println!(
                "  consume {}p  events: 0 subscribers {:.3} CPU-s/M msgs, {} instr/msg; \
                 1 subscriber (a counting closure, {:.3} events/msg) {:.3} CPU-s/M msgs, {} \
                 instr/msg; ratio 1/0: CPU x{:.3} (paired rounds x{:.3}, x{:.3}..x{:.3}), \
                 instructions {instr_ratio}",
                c.partitions,
                none.cpu_per_million,
                instr(&none),
                one.events_per_msg.unwrap_or(f64::NAN),
                one.cpu_per_million,
                instr(&one),
                one.cpu_per_million / none.cpu_per_million,
                c.events_one.paired_cpu_ratio(&c.events_none),
                spread.0,
                spread.1,
            );
        }
        if let Some(why) = instructions::unavailable() {
            println!("  instr/msg n/a: {why}");
        }
    }

    fn print_consume(&self, c: &ConsumeRows) {
        let phase = format!("consume {}p", c.partitions);
        let Some((ferrafka, raw)) = comparable(&c.ferrafka, &c.raw) else {
            return;
        };
        cpu_line(&phase, ferrafka, raw, CONSUME_CPU);
        let (f, r) = (ferrafka.medians(), raw.medians());
        if let (Some(fa), Some(ra)) = (f.allocs_per_msg, r.allocs_per_msg) {
            let own = fa - ra;
            println!(
                "  {phase:<11} allocs/msg ferrafka {fa:.3} - raw {ra:.3} = framework {own:.3} \
                 (target <= {FRAMEWORK_ALLOCS:.0})  {}",
                verdict(own, FRAMEWORK_ALLOCS)
            );
        }
        for series in &c.peers {
            let Some((peer, _)) = comparable(series, &c.raw) else {
                continue;
            };
            let p = peer.medians();
            println!(
                "  {phase:<11} peer {}/raw: msg/s x{:.3}, CPU/msg x{:.3} \
                 (ferrafka/peer CPU/msg x{:.3}; no target)",
                peer.client,
                p.rate / r.rate,
                p.cpu_per_million / r.cpu_per_million,
                f.cpu_per_million / p.cpu_per_million
            );
        }
    }

    fn print_idle_target(&self) {
        let find = |name: &str| {
            self.idle
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, r)| r.cpu_ms_per_s)
        };
        if let (Some(f), Some(r)) = (find(idle::FERRAFKA_SERVER), find(idle::RAW_CONSUMER)) {
            println!(
                "  {:<11} ferrafka server {f:.1} / raw consumer {r:.1} CPU-ms/s = x{:.2} \
                 (target <= {IDLE_CPU:.0})  {}",
                "idle",
                f / r,
                verdict(f / r, IDLE_CPU)
            );
        }
    }
}

/// One CPU-per-message ratio line against its target.
fn cpu_line(phase: &str, subject: &Series, base: &Series, target: f64) {
    let (s, b) = (subject.medians(), base.medians());
    let cpu = s.cpu_per_million / b.cpu_per_million;
    println!(
        "  {phase:<11} {:<24} CPU/msg x{cpu:.3} (paired rounds x{:.3}), msg/s x{:.3} \
         (target <= {target:.2})  {}",
        subject.client,
        subject.paired_cpu_ratio(base),
        s.rate / b.rate,
        verdict(cpu, target)
    );
}
