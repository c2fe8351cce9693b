//! Beside the load: RSS and CPU of the server process (when known) and of this process, sampled
//! from /proc once a second, and the progress line on stderr.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::counters::Shared;
use super::phases::Phases;
use crate::procmon::{self, Sample};

/// The samples of the run, and why sampling stopped early when it did (process gone).
pub struct Sampled {
    pub server: Vec<Sample>,
    pub server_error: Option<String>,
    pub own: Vec<Sample>,
    pub own_error: Option<String>,
}

/// Samples RSS/CPU of the server (when known) and of this process once a second, and prints
/// the progress line, until `stop` fires.
pub async fn monitor(
    server_pid: Option<u32>,
    shared: Arc<Shared>,
    start: Instant,
    phases: Phases,
    mut stop: oneshot::Receiver<()>,
) -> Sampled {
    let clk = procmon::clock_ticks_per_sec();
    let server_dir = server_pid.map(|p| Path::new("/proc").join(p.to_string()));
    let self_dir = Path::new("/proc/self").to_path_buf();
    let mut server = (Vec::new(), None::<String>, None::<(Instant, u64)>);
    let mut own = (Vec::new(), None::<String>, None::<(Instant, u64)>);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut last = (start, 0u64);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = &mut stop => break,
        }
        let now = Instant::now();
        let t = now.duration_since(start).as_secs_f64();
        let repeat = phases.repeat_at(t);
        let measured = repeat.is_some() && t <= phases.total_secs();
        for (dir, st) in [
            (server_dir.as_deref(), &mut server),
            (Some(&*self_dir), &mut own),
        ] {
            let Some(dir) = dir else { continue };
            if st.1.is_some() {
                continue; // stopped after an error (process gone)
            }
            match procmon::read_process(dir) {
                Ok(r) => {
                    let cpu = match (st.2, clk) {
                        (Some((t, ticks)), Some(clk)) => Some(procmon::cpu_percent(
                            ticks,
                            r.cpu_ticks,
                            clk,
                            now.duration_since(t).as_secs_f64(),
                        )),
                        _ => None,
                    };
                    st.2 = Some((now, r.cpu_ticks));
                    st.0.push(Sample {
                        t_secs: t,
                        rss_mib: r.rss_bytes as f64 / (1024.0 * 1024.0),
                        cpu_percent: cpu,
                        measured,
                    });
                }
                Err(e) => st.1 = Some(format!("process gone or unreadable: {e}")),
            }
        }
        let done = shared.done.load(Ordering::Relaxed);
        let dt = now.duration_since(last.0).as_secs_f64();
        // The first tick fires at once: a rate over a few milliseconds means nothing.
        if dt < 0.5 {
            continue;
        }
        let rate = (done - last.1) as f64 / dt;
        last = (now, done);
        let phase = match repeat {
            None => "warm-up".to_string(),
            Some(_) if phases.repeats == 1 => "measured".to_string(),
            Some(r) => format!("repeat {}/{}", r + 1, phases.repeats),
        };
        eprintln!(
            "[akidb-load] {t:6.1}s {phase:8} {rate:8.1} req/s  done {done}  errors {}  dropped {}  in-flight {}",
            shared.failed.load(Ordering::Relaxed),
            shared.dropped.load(Ordering::Relaxed),
            shared.in_flight.load(Ordering::Relaxed),
        );
    }
    Sampled {
        server: server.0,
        server_error: server.1,
        own: own.0,
        own_error: own.1,
    }
}
