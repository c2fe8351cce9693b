//! Figures about the server process (resident memory, CPU time, threads, open descriptors,
//! start time), read from `/proc` through procfs at each scrape and named as Prometheus' own
//! client libraries name them (`process_*`), so standard dashboards and rules apply.

use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

#[derive(Debug)]
pub struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        // Not on Linux, or /proc unreadable: no process figures rather than a failed scrape.
        let Ok(me) = procfs::process::Process::myself() else {
            return Ok(());
        };
        let Ok(stat) = me.stat() else {
            return Ok(());
        };
        let ticks = procfs::ticks_per_second() as f64;
        let page = procfs::page_size();
        ConstCounter::new((stat.utime + stat.stime) as f64 / ticks).encode(
            enc.encode_descriptor(
                "process_cpu_seconds",
                "User and system CPU time spent, in seconds",
                None,
                MetricType::Counter,
            )?,
        )?;
        let mut gauge = |name: &str, help: &str, value: f64| -> fmt::Result {
            ConstGauge::new(value).encode(enc.encode_descriptor(
                name,
                help,
                None,
                MetricType::Gauge,
            )?)
        };
        gauge(
            "process_resident_memory_bytes",
            "Resident memory size in bytes",
            (stat.rss * page) as f64,
        )?;
        gauge(
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes",
            stat.vsize as f64,
        )?;
        gauge(
            "process_threads",
            "OS threads of the process",
            stat.num_threads as f64,
        )?;
        if let Ok(fds) = me.fd_count() {
            gauge("process_open_fds", "Open file descriptors", fds as f64)?;
        }
        if let Ok(boot) = procfs::boot_time_secs() {
            gauge(
                "process_start_time_seconds",
                "Start time of the process since the Unix epoch, in seconds",
                boot as f64 + stat.starttime as f64 / ticks,
            )?;
        }
        Ok(())
    }
}
