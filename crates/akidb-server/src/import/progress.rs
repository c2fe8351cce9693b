//! Progress of an import: a bar with rate and ETA on a terminal (indicatif), otherwise a plain
//! line every 10 seconds, so that logs stay readable.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

const LINE_EVERY: Duration = Duration::from_secs(10);

pub struct Progress {
    bar: Option<ProgressBar>,
    started: Instant,
    last_line: Instant,
    done: u64,
    /// Rows already done before this run (a resumed import), not counted in the rate.
    skipped: u64,
    total: Option<u64>,
}

impl Progress {
    pub fn new(total: Option<u64>, skipped: u64) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(total.unwrap_or(0));
            let template = if total.is_some() {
                "{bar:40} {pos}/{len} rows  {per_sec}  ETA {eta}"
            } else {
                "{spinner} {pos} rows  {per_sec}"
            };
            bar.set_style(ProgressStyle::with_template(template).expect("a valid template"));
            bar.set_position(skipped);
            bar.reset_eta();
            bar
        });
        let now = Instant::now();
        Progress {
            bar,
            started: now,
            last_line: now,
            done: skipped,
            skipped,
            total,
        }
    }

    /// Rows per second in this run.
    pub fn rate(&self) -> f64 {
        (self.done - self.skipped) as f64 / self.started.elapsed().as_secs_f64().max(1e-9)
    }

    pub fn inc(&mut self, rows: u64) {
        self.done += rows;
        if let Some(bar) = &self.bar {
            bar.inc(rows);
            return;
        }
        if self.last_line.elapsed() >= LINE_EVERY {
            self.last_line = Instant::now();
            let rate = self.rate();
            match self.total {
                Some(total) => {
                    let eta = total.saturating_sub(self.done) as f64 / rate.max(1e-9);
                    eprintln!(
                        "{}/{total} rows ({:.1}%), {rate:.0} rows/s, ETA {eta:.0} s",
                        self.done,
                        100.0 * self.done as f64 / total.max(1) as f64
                    );
                }
                None => eprintln!("{} rows, {rate:.0} rows/s", self.done),
            }
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
