//! What the run prints: a table per scenario, each target the issue names with whether this run
//! met it, every service's memory, and at the end all of it again in short, with the count of
//! failed requests (the one thing that fails the run).

use std::time::Duration;

use crate::{
    load::Summary,
    process::{Service, mib},
};

#[derive(Debug)]
pub struct Report {
    /// The backend of the run, named in every heading.
    backend: &'static str,
    verdicts: Vec<Verdict>,
    /// Idle and highest peak RSS per service process, in KiB, in order of first sight.
    memory: Vec<(String, u64, u64)>,
    errors: u64,
}

#[derive(Debug)]
struct Verdict {
    scenario: String,
    target: String,
    figure: String,
    met: bool,
}

/// Mebibytes the issue allows a service: idle, and under load.
const IDLE_LIMIT_KIB: u64 = 20 * 1024;
const LOAD_LIMIT_KIB: u64 = 64 * 1024;

impl Report {
    pub fn new(backend: &'static str) -> Self {
        Self {
            backend,
            verdicts: Vec::new(),
            memory: Vec::new(),
            errors: 0,
        }
    }

    pub fn heading(&self, title: &str) {
        println!("\n== {title} [{}]", self.backend);
    }

    pub fn note(&self, text: &str) {
        println!("   {text}");
    }

    /// A row per target; their failed requests count against the run.
    pub fn table(&mut self, rows: &[(&str, Summary)]) {
        let width = rows.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
        println!(
            "   {:width$}  {:>10}  {:>9}  {:>9}  {:>6}",
            "", "per second", "p50", "p99", "errors"
        );
        for (name, summary) in rows {
            println!(
                "   {name:width$}  {:>10.0}  {:>9}  {:>9}  {:>6}",
                summary.per_second,
                ms(summary.p50),
                ms(summary.p99),
                summary.errors
            );
            self.errors += summary.errors;
        }
    }

    /// A target of the issue, and whether this run's figure meets it.
    pub fn check(&mut self, scenario: &str, target: &str, figure: String, met: bool) {
        println!(
            "   target {target}: {figure}: {}",
            if met { "met" } else { "NOT met" }
        );
        self.verdicts.push(Verdict {
            scenario: scenario.to_owned(),
            target: target.to_owned(),
            figure,
            met,
        });
    }

    /// The services' peak RSS since their last reset, remembered for the summary.
    pub fn memory(&mut self, services: &[&Service]) {
        let mut line = Vec::new();
        for service in services {
            let memory = service.memory();
            line.push(format!("{} {}", service.name, mib(memory.peak_kib)));
            match self
                .memory
                .iter_mut()
                .find(|(name, ..)| name == service.name)
            {
                Some((_, _, peak)) => *peak = (*peak).max(memory.peak_kib),
                None => self.memory.push((
                    service.name.to_owned(),
                    service.idle.rss_kib,
                    memory.peak_kib,
                )),
            }
        }
        println!("   peak RSS: {}", line.join(", "));
    }

    /// Prints the summary; the number of failed requests over the whole run.
    pub fn finish(mut self) -> u64 {
        println!("\n== Memory (VmRSS right after start; highest VmHWM in any scenario)");
        for (name, idle, peak) in std::mem::take(&mut self.memory) {
            println!("   {name}: idle {}, peak {}", mib(idle), mib(peak));
            self.verdicts.push(Verdict {
                scenario: "memory".to_owned(),
                target: format!("{name} idle < 20 MiB"),
                figure: mib(idle),
                met: idle < IDLE_LIMIT_KIB,
            });
            self.verdicts.push(Verdict {
                scenario: "memory".to_owned(),
                target: format!("{name} under load < 64 MiB"),
                figure: mib(peak),
                met: peak < LOAD_LIMIT_KIB,
            });
        }
        println!("\n== Targets");
        for verdict in &self.verdicts {
            println!(
                "   [{}] {}: {}: {}",
                if verdict.met { "met" } else { "NOT met" },
                verdict.scenario,
                verdict.target,
                verdict.figure
            );
        }
        println!("\nfailed requests: {}", self.errors);
        self.errors
    }
}

/// A duration in milliseconds, two decimals.
pub fn ms(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1000.0)
}

/// `a / b`, 0 when `b` is.
pub fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}
