//! Server resource sampling from /proc: RSS (`/proc/PID/status` VmRSS) and CPU
//! (`/proc/PID/stat` utime + stime), once a second. The PID comes from `--server-pid` or is
//! found by the listening port: `/proc/net/tcp{,6}` maps the port to a socket inode, and
//! `/proc/*/fd/*` links (`socket:[INODE]`) map the inode to a process.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, ToSocketAddrs};
use std::path::Path;

use serde::Serialize;

/// `st` of a listening socket in /proc/net/tcp.
const TCP_LISTEN: &str = "0A";

/// One listening socket from /proc/net/tcp{,6}.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub ip: IpAddr,
    pub port: u16,
    pub inode: u64,
}

fn hex_word_bytes(hex: &str) -> Option<[u8; 4]> {
    // The kernel prints each 32-bit word of the address in host byte order.
    Some(u32::from_str_radix(hex, 16).ok()?.to_ne_bytes())
}

/// Parses the listening sockets of a /proc/net/tcp or /proc/net/tcp6 text.
pub fn parse_proc_net_tcp(text: &str) -> Vec<Listener> {
    let mut out = Vec::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 10 || f[3] != TCP_LISTEN {
            continue;
        }
        let Some((addr, port)) = f[1].split_once(':') else {
            continue;
        };
        let Ok(port) = u16::from_str_radix(port, 16) else {
            continue;
        };
        let ip = match addr.len() {
            8 => match hex_word_bytes(addr) {
                Some(b) => IpAddr::V4(Ipv4Addr::from(b)),
                None => continue,
            },
            32 => {
                let mut bytes = [0u8; 16];
                let mut ok = true;
                for w in 0..4 {
                    match hex_word_bytes(&addr[w * 8..w * 8 + 8]) {
                        Some(b) => bytes[w * 4..w * 4 + 4].copy_from_slice(&b),
                        None => ok = false,
                    }
                }
                if !ok {
                    continue;
                }
                IpAddr::V6(Ipv6Addr::from(bytes))
            }
            _ => continue,
        };
        let Ok(inode) = f[9].parse() else { continue };
        out.push(Listener { ip, port, inode });
    }
    out
}

/// Whether a local listener at `listener_ip` serves connections to `target`.
fn serves(listener_ip: IpAddr, target: IpAddr) -> bool {
    let l = match listener_ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(listener_ip, IpAddr::V4),
        ip => ip,
    };
    l == target || (l.is_unspecified() && target.is_loopback())
}

/// Finds the PID of the process listening on `host:port` on this machine.
pub fn find_pid_by_addr(host: &str, port: u16) -> Result<u32, String> {
    let targets: Vec<IpAddr> = (host.trim_matches(['[', ']']), port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .map(|a| a.ip())
        .collect();
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        if let Ok(text) = std::fs::read_to_string(table) {
            inodes.extend(
                parse_proc_net_tcp(&text)
                    .into_iter()
                    .filter(|l| l.port == port && targets.iter().any(|&t| serves(l.ip, t)))
                    .map(|l| l.inode),
            );
        }
    }
    if inodes.is_empty() {
        return Err(format!(
            "no local socket listens on {host}:{port} (server on another host?); \
             pass --server-pid to sample it"
        ));
    }
    let wanted: Vec<String> = inodes.iter().map(|i| format!("socket:[{i}]")).collect();
    let procs = std::fs::read_dir("/proc").map_err(|e| format!("cannot list /proc: {e}"))?;
    for entry in procs.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue; // another user's process, or gone
        };
        for fd in fds.flatten() {
            if let Ok(link) = std::fs::read_link(fd.path())
                && wanted.iter().any(|w| link.as_os_str() == w.as_str())
            {
                return Ok(pid);
            }
        }
    }
    Err(format!(
        "a socket listens on {host}:{port} (inode {inodes:?}) but no readable /proc/*/fd owns it \
         (a process of another user?); pass --server-pid to sample it"
    ))
}

/// Resident set size in bytes from a /proc/PID/status text.
pub fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let mut parts = line.split_whitespace().skip(1);
    let kb: u64 = parts.next()?.parse().ok()?;
    (parts.next()? == "kB").then_some(kb * 1024)
}

/// utime + stime in clock ticks from a /proc/PID/stat text (fields 14 and 15; the command name
/// in field 2 may hold spaces and parentheses, so fields are counted after the last `)`).
pub fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state): utime is field 14 -> index 11.
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// CPU use between two samples, in percent of one core (200 = two cores busy).
pub fn cpu_percent(ticks_before: u64, ticks_after: u64, clk_tck: u64, wall_secs: f64) -> f64 {
    let cpu_secs = ticks_after.saturating_sub(ticks_before) as f64 / clk_tck as f64;
    cpu_secs / wall_secs * 100.0
}

pub fn clock_ticks_per_sec() -> Option<u64> {
    // SAFETY: sysconf has no preconditions; it only reads a configuration value.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (t > 0).then_some(t as u64)
}

/// One reading.
#[derive(Debug, Clone, Copy)]
pub struct Reading {
    pub rss_bytes: u64,
    pub cpu_ticks: u64,
}

pub fn read_process(proc_dir: &Path) -> Result<Reading, String> {
    let status = std::fs::read_to_string(proc_dir.join("status"))
        .map_err(|e| format!("{}: {e}", proc_dir.join("status").display()))?;
    let stat = std::fs::read_to_string(proc_dir.join("stat"))
        .map_err(|e| format!("{}: {e}", proc_dir.join("stat").display()))?;
    Ok(Reading {
        rss_bytes: parse_vm_rss(&status).ok_or("no VmRSS line in status")?,
        cpu_ticks: parse_cpu_ticks(&stat).ok_or("unparsable stat")?,
    })
}

/// A sample: seconds since the run started, RSS, and CPU% since the previous sample.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    pub t_secs: f64,
    pub rss_mib: f64,
    pub cpu_percent: Option<f64>,
    /// Taken during the measured phase (the summary uses only these).
    pub measured: bool,
}

/// Min/max/mean of a process's samples in the measured phase.
#[derive(Debug, Clone, Serialize)]
pub struct ProcessSummary {
    pub pid: Option<u32>,
    /// How the PID was found: `--server-pid`, `listening port`, `self`.
    pub found_by: Option<String>,
    /// Why there are no figures, when there are none.
    pub unavailable_reason: Option<String>,
    pub samples_measured: usize,
    pub rss_mib_min: Option<f64>,
    pub rss_mib_max: Option<f64>,
    pub rss_mib_mean: Option<f64>,
    /// The last measured sample's RSS minus the first's (what `--max-rss-growth-mib` checks).
    pub rss_mib_growth: Option<f64>,
    /// Percent of one core.
    pub cpu_percent_mean: Option<f64>,
    pub cpu_percent_max: Option<f64>,
    pub samples: Vec<Sample>,
}

impl ProcessSummary {
    pub fn unavailable(reason: String) -> ProcessSummary {
        ProcessSummary {
            pid: None,
            found_by: None,
            unavailable_reason: Some(reason),
            samples_measured: 0,
            rss_mib_min: None,
            rss_mib_max: None,
            rss_mib_mean: None,
            rss_mib_growth: None,
            cpu_percent_mean: None,
            cpu_percent_max: None,
            samples: Vec::new(),
        }
    }

    pub fn from_samples(
        pid: u32,
        found_by: &str,
        samples: Vec<Sample>,
        error: Option<String>,
    ) -> ProcessSummary {
        let m: Vec<&Sample> = samples.iter().filter(|s| s.measured).collect();
        let rss: Vec<f64> = m.iter().map(|s| s.rss_mib).collect();
        let cpu: Vec<f64> = m.iter().filter_map(|s| s.cpu_percent).collect();
        let mean = |v: &[f64]| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
        let max = |v: &[f64]| v.iter().copied().reduce(f64::max);
        let reason = match (&error, m.is_empty()) {
            (Some(e), true) => Some(format!("no samples in the measured phase: {e}")),
            (None, true) => Some("no samples in the measured phase (run too short?)".into()),
            (Some(e), false) => Some(format!("sampling stopped early: {e}")),
            (None, false) => None,
        };
        ProcessSummary {
            pid: Some(pid),
            found_by: Some(found_by.into()),
            unavailable_reason: reason,
            samples_measured: m.len(),
            rss_mib_min: rss.iter().copied().reduce(f64::min),
            rss_mib_max: max(&rss),
            rss_mib_mean: mean(&rss),
            rss_mib_growth: rss.first().zip(rss.last()).map(|(a, b)| b - a),
            cpu_percent_mean: mean(&cpu),
            cpu_percent_max: max(&cpu),
            samples,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_listeners_from_proc_net_tcp() {
        let v4 = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 123456 1 0000000000000000 100 0 0 10 0\n\
   1: 0100007F:1F91 0100007F:D3A2 01 00000000:00000000 00:00000000 00000000  1000        0 777 1 0000000000000000 100 0 0 10 0\n";
        let l = parse_proc_net_tcp(v4);
        assert_eq!(l.len(), 1, "only LISTEN sockets");
        assert_eq!(l[0].port, 8080);
        assert_eq!(l[0].inode, 123456);
        if cfg!(target_endian = "little") {
            assert_eq!(l[0].ip, IpAddr::V4(Ipv4Addr::LOCALHOST));
        }
        let v6 = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 42 1 0000000000000000 100 0 0 10 0\n";
        let l = parse_proc_net_tcp(v6);
        assert_eq!(l[0].ip, IpAddr::V6(Ipv6Addr::UNSPECIFIED));
        assert!(serves(l[0].ip, IpAddr::V4(Ipv4Addr::LOCALHOST)));
        assert!(!serves(l[0].ip, "10.1.2.3".parse().unwrap()));
    }

    #[test]
    fn parses_rss_and_cpu_ticks() {
        let status = "Name:\takidb\nVmPeak:\t  9000 kB\nVmRSS:\t    2048 kB\nThreads:\t5\n";
        assert_eq!(parse_vm_rss(status), Some(2048 * 1024));
        assert_eq!(parse_vm_rss("Name: x\n"), None);
        // Field 2 with spaces and a ')' inside; utime=250, stime=50.
        let stat =
            "4242 (akidb (x) y) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 5 0 1 1 1";
        assert_eq!(parse_cpu_ticks(stat), Some(300));
        assert_eq!(cpu_percent(100, 300, 100, 2.0), 100.0);
        assert_eq!(cpu_percent(100, 100, 100, 1.0), 0.0);
    }

    #[test]
    fn reads_this_process_and_finds_a_listener_by_port() {
        let r = read_process(Path::new("/proc/self")).unwrap();
        assert!(r.rss_bytes > 0);
        assert!(clock_ticks_per_sec().unwrap() > 0);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        assert_eq!(find_pid_by_addr("127.0.0.1", port), Ok(std::process::id()));
        drop(listener);
        assert!(find_pid_by_addr("127.0.0.1", port).is_err());
    }

    #[test]
    fn summary_uses_measured_samples_only_and_never_invents_figures() {
        let s = |t, rss, cpu, measured| Sample {
            t_secs: t,
            rss_mib: rss,
            cpu_percent: cpu,
            measured,
        };
        let sum = ProcessSummary::from_samples(
            1,
            "self",
            vec![
                s(1.0, 500.0, None, false),
                s(2.0, 100.0, Some(50.0), true),
                s(3.0, 300.0, Some(150.0), true),
            ],
            None,
        );
        assert_eq!(sum.samples_measured, 2);
        assert_eq!(
            (sum.rss_mib_min, sum.rss_mib_max),
            (Some(100.0), Some(300.0))
        );
        assert_eq!(sum.rss_mib_mean, Some(200.0));
        assert_eq!(
            (sum.cpu_percent_mean, sum.cpu_percent_max),
            (Some(100.0), Some(150.0))
        );
        assert!(sum.unavailable_reason.is_none());
        let none = ProcessSummary::from_samples(1, "self", vec![], None);
        assert_eq!(none.rss_mib_max, None);
        assert!(none.unavailable_reason.is_some());
    }
}
