//! What the run prints: a table per scenario (with what generated each load), each target the
//! issue names with whether this run met it, every service's memory, and at the end one table
//! of every figure beside its baseline and its target, with the count of failed requests (the
//! one thing that fails the run).

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
    baseline: String,
    /// `None` for a figure without a target.
    met: Option<bool>,
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
            "   {:width$}  {:>10}  {:>9}  {:>9}  {:>6}  by",
            "", "per second", "p50", "p99", "errors"
        );
        for (name, summary) in rows {
            println!(
                "   {name:width$}  {:>10.0}  {:>9}  {:>9}  {:>6}  {}",
                summary.per_second,
                ms(summary.p50),
                ms(summary.p99),
                summary.errors,
                summary.by
            );
            self.errors += summary.errors;
        }
    }

    /// A target of the issue, and whether this run's figure (beside its baseline) meets it;
    /// `None` for a figure shown beside a baseline without a target.
    pub fn check(
        &mut self,
        scenario: &str,
        target: &str,
        figure: String,
        baseline: String,
        met: Option<bool>,
    ) {
        let verdict = match met {
            Some(true) => "met",
            Some(false) => "NOT met",
            None => "no target",
        };
        println!("   {target}: {figure} (baseline {baseline}): {verdict}");
        self.verdicts.push(Verdict {
            scenario: scenario.to_owned(),
            target: target.to_owned(),
            figure,
            baseline,
            met,
        });
    }

    /// `figure`'s rate against at least `share` of `baseline`'s.
    pub fn rate(
        &mut self,
        scenario: &str,
        (name, figure): (&str, Summary),
        (baseline_name, baseline): (&str, Summary),
        share: f64,
    ) {
        let got = ratio(figure.per_second, baseline.per_second);
        self.check(
            scenario,
            &format!("{name} >= {:.0}% of {baseline_name}", 100.0 * share),
            format!("{:.0}/s = {:.1}%", figure.per_second, 100.0 * got),
            format!("{:.0}/s", baseline.per_second),
            Some(got >= share),
        );
    }

    /// `figure` against at least `share` of `baseline`'s rate and at most `times` its p99.
    pub fn rate_and_p99(
        &mut self,
        scenario: &str,
        (name, figure): (&str, Summary),
        (baseline_name, baseline): (&str, Summary),
        share: f64,
        times: f64,
    ) {
        self.rate(scenario, (name, figure), (baseline_name, baseline), share);
        self.p99(
            scenario,
            (&format!("{name} p99"), figure.p99),
            (&format!("{baseline_name}'s"), baseline.p99),
            times,
        );
    }

    /// `figure`'s rate as a share of `baseline`'s, without a target.
    pub fn share(&mut self, scenario: &str, what: &str, figure: Summary, baseline: Summary) {
        self.check(
            scenario,
            what,
            format!(
                "{:.0}/s = {:.1}%",
                figure.per_second,
                100.0 * ratio(figure.per_second, baseline.per_second)
            ),
            format!("{:.0}/s", baseline.per_second),
            None,
        );
    }

    /// `figure`'s p99 against at most `times` `baseline`'s.
    pub fn p99(
        &mut self,
        scenario: &str,
        (name, figure): (&str, Duration),
        (baseline_name, baseline): (&str, Duration),
        times: f64,
    ) {
        self.check(
            scenario,
            &format!("{name} <= {times}x {baseline_name}"),
            format!(
                "{} = {:.2}x",
                ms(figure),
                ratio(figure.as_secs_f64(), baseline.as_secs_f64())
            ),
            ms(baseline),
            Some(figure <= baseline.mul_f64(times)),
        );
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
                baseline: "-".to_owned(),
                met: Some(idle < IDLE_LIMIT_KIB),
            });
            self.verdicts.push(Verdict {
                scenario: "memory".to_owned(),
                target: format!("{name} under load < 64 MiB"),
                figure: mib(peak),
                baseline: "-".to_owned(),
                met: Some(peak < LOAD_LIMIT_KIB),
            });
        }
        println!("\n== Every figure beside its baseline [{}]", self.backend);
        let width =
            |of: fn(&Verdict) -> &str| self.verdicts.iter().map(|v| of(v).len()).max().unwrap_or(0);
        let (scenario, target, figure, baseline) = (
            width(|v| &v.scenario),
            width(|v| &v.target),
            width(|v| &v.figure),
            width(|v| &v.baseline),
        );
        println!(
            "   {:scenario$}  {:target$}  {:>figure$}  {:>baseline$}  verdict",
            "scenario", "target", "figure", "baseline"
        );
        for v in &self.verdicts {
            let verdict = match v.met {
                Some(true) => "met",
                Some(false) => "NOT met",
                None => "-",
            };
            println!(
                "   {:scenario$}  {:target$}  {:>figure$}  {:>baseline$}  {verdict}",
                v.scenario, v.target, v.figure, v.baseline
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
