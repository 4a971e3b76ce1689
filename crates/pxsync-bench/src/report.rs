//! The plain lines printed for each benchmark.

use std::time::Duration;

/// What one benchmark measured.
pub struct Report {
    /// `ingest`, `ingest-e2e`, `project`, `project-memory`.
    pub name: &'static str,
    /// What was measured, in a few words.
    pub what: String,
    pub figure: String,
    pub baseline: String,
    /// figure / baseline.
    pub ratio: f64,
    /// The target, in words.
    pub target: String,
    /// `None` when there is no target (information only).
    pub pass: Option<bool>,
    /// Extra lines (sizes, caveats).
    pub notes: Vec<String>,
}

impl Report {
    pub fn print(&self) {
        println!("== {}: {}", self.name, self.what);
        println!("   figure:   {}", self.figure);
        println!("   baseline: {}", self.baseline);
        println!("   ratio:    {:.2}", self.ratio);
        let verdict = match self.pass {
            Some(true) => "PASS",
            Some(false) => "BELOW",
            None => "information only",
        };
        println!("   target:   {}: {verdict}", self.target);
        for n in &self.notes {
            println!("   note:     {n}");
        }
        println!();
    }
}

/// Items per second.
pub fn rate(count: usize, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64().max(1e-9)
}

/// `12345 events/s (20000 in 1.62 s)`.
pub fn rate_line(count: usize, elapsed: Duration, unit: &str) -> String {
    format!(
        "{:.0} {unit}/s ({count} {unit} in {:.2} s)",
        rate(count, elapsed),
        elapsed.as_secs_f64()
    )
}
