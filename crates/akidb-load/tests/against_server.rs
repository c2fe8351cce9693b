//! The real server, the real load tool: a short baseline run must execute every operation of
//! the mix without errors and report ordered percentiles and the server's RSS; a collection of
//! the wrong dimension must stop the tool.

mod common;

use common::{Server, load, text};
use serde_json::Value;

fn f(v: &Value, path: &str) -> f64 {
    v.pointer(path)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("{path} missing or not a number in the report"))
}

#[test]
fn baseline_runs_every_operation_and_reports_them() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let json_path = dir.path().join("report.json");
    let md_path = dir.path().join("report.md");
    let out = load(&[
        "--url",
        &server.url,
        "--scenario",
        "baseline",
        // Loopback answers take milliseconds; a stalled server should fail the test quickly.
        "--request-timeout",
        "5",
        "--duration",
        "3",
        "--warmup",
        "1",
        "--report-json",
        json_path.to_str().unwrap(),
        "--report-md",
        md_path.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("req/s"), "no progress line: {stderr}");

    let report: Value = serde_json::from_slice(&std::fs::read(&json_path).unwrap()).unwrap();
    assert_eq!(report["passed"], true);
    assert_eq!(report["config"]["mode"], "closed");
    assert_eq!(report["config"]["workers"], 4);
    assert_eq!(report["dimension"], 64);
    // A single run keeps the report of before --repeat existed.
    assert!(report.get("repeats").is_none(), "{report}");
    assert!(
        report["config"].get("repeat").is_none(),
        "{}",
        report["config"]
    );
    for op in ["search", "insert", "tier"] {
        let o = &report["operations"][op];
        assert!(f(o, "/ok") > 0.0, "{op} never succeeded: {o}");
        assert_eq!(f(o, "/errors"), 0.0, "{op} errors: {o}");
        assert_eq!(f(o, "/dropped"), 0.0, "{op} dropped: {o}");
        let p50 = f(o, "/latency_ms/p50_ms");
        let p95 = f(o, "/latency_ms/p95_ms");
        let p99 = f(o, "/latency_ms/p99_ms");
        let p999 = f(o, "/latency_ms/p999_ms");
        let max = f(o, "/latency_ms/max_ms");
        assert!(
            0.0 < p50 && p50 <= p95 && p95 <= p99 && p99 <= p999 && p999 <= max,
            "{op} percentiles out of order: {o}"
        );
        assert_eq!(f(o, "/latency_ms/count"), f(o, "/ok"));
        assert!(f(o, "/throughput_per_sec") > 0.0);
    }
    let totals = &report["totals"];
    assert_eq!(f(totals, "/errors"), 0.0);
    assert_eq!(f(totals, "/error_rate"), 0.0);
    let ok_sum: f64 = ["search", "insert", "tier"]
        .iter()
        .map(|op| f(&report["operations"][op], "/ok"))
        .sum();
    assert_eq!(f(totals, "/ok"), ok_sum);
    // With 70/20/10 weights over hundreds of requests, search is the most frequent.
    assert!(
        f(&report, "/operations/search/ok") > f(&report, "/operations/tier/ok"),
        "{totals}"
    );

    // The server process was found by its port and sampled.
    let sp = &report["server_process"];
    assert_eq!(sp["pid"], server.pid(), "{sp}");
    assert_eq!(sp["found_by"], "listening port");
    assert!(f(sp, "/samples_measured") >= 1.0, "{sp}");
    let (min, mean, max) = (
        f(sp, "/rss_mib_min"),
        f(sp, "/rss_mib_mean"),
        f(sp, "/rss_mib_max"),
    );
    assert!(0.0 < min && min <= mean && mean <= max, "{sp}");

    // Preload happened, and baseline cleans up after itself.
    assert_eq!(f(&report, "/preload/vectors"), 2000.0);
    for c in report["collections"].as_array().unwrap() {
        assert_eq!(c["count_after_preload"], 1000, "{c}");
        assert_eq!(c["deleted_at_end"], true, "{c}");
    }
    let md = std::fs::read_to_string(&md_path).unwrap();
    assert!(
        md.contains("# akidb-load report: baseline (PASSED)"),
        "{md}"
    );
    assert!(md.contains("| tier |") && md.contains("tier API"), "{md}");

    // A threshold no real server can meet fails the run with exit 3 and says by how much.
    let out = load(&[
        "--url",
        &server.url,
        "--scenario",
        "baseline",
        // Loopback answers take milliseconds; a stalled server should fail the test quickly.
        "--request-timeout",
        "5",
        "--duration",
        "1",
        "--warmup",
        "0",
        "--vectors-per-collection",
        "10",
        "--max-p95-ms",
        "0.000001",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("threshold failed: p95_ms of search") && stderr.contains("over by"),
        "{stderr}"
    );

    // --repeat 2: one warm-up, two measured phases, each reported, plus their spread.
    let out = load(&[
        "--url",
        &server.url,
        "--scenario",
        "baseline",
        "--request-timeout",
        "5",
        "--duration",
        "1",
        "--warmup",
        "1",
        "--repeat",
        "2",
        "--vectors-per-collection",
        "100",
        "--max-p95-ms",
        "60000",
        "--report-json",
        json_path.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let report: Value = serde_json::from_slice(&std::fs::read(&json_path).unwrap()).unwrap();
    assert_eq!(report["config"]["repeat"], 2);
    assert_eq!(f(&report, "/measured_secs"), 2.0);
    let rep = &report["repeats"];
    assert_eq!(rep["count"], 2, "{rep}");
    let runs = rep["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2, "{rep}");
    for (i, run) in runs.iter().enumerate() {
        assert_eq!(run["repeat"], i + 1, "{run}");
        assert!(f(run, "/totals/throughput_per_sec") > 0.0, "{run}");
        let search = &run["operations"]["search"];
        assert!(f(search, "/latency_ms/p95_ms") > 0.0, "{run}");
        assert_eq!(f(search, "/errors"), 0.0, "{run}");
    }
    // Both repeats together are the totals.
    let ok_sum: f64 = runs.iter().map(|r| f(r, "/totals/ok")).sum();
    assert_eq!(f(&report, "/totals/ok"), ok_sum);
    let ordered = |sp: &Value| {
        let (min, median, max) = (f(sp, "/min"), f(sp, "/median"), f(sp, "/max"));
        assert!(min <= median && median <= max, "{sp}");
    };
    ordered(&rep["throughput_per_sec"]);
    assert!(f(rep, "/noise_percent") >= 0.0, "{rep}");
    for op in ["search", "insert", "tier"] {
        for p in ["p50_ms", "p95_ms", "p99_ms"] {
            ordered(&rep["operations"][op][p]);
        }
    }
    let t = &report["thresholds"][0];
    assert_eq!(t["median_of_repeats"], 2, "{t}");
    let md = String::from_utf8_lossy(&out.stdout);
    assert!(
        md.contains("## Repeats") && md.contains("Noise of this run"),
        "{md}"
    );
}

#[test]
fn open_loop_and_wrong_dimension() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let json_path = dir.path().join("report.json");
    // A short open-loop run that keeps its collection.
    let out = load(&[
        "--url",
        &server.url,
        "--scenario",
        "many-collections",
        "--collections",
        "3",
        "--vectors-per-collection",
        "20",
        "--dimension",
        "16",
        "--qps",
        "50",
        "--duration",
        "2",
        "--warmup",
        "0.5",
        "--report-json",
        json_path.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let report: Value = serde_json::from_slice(&std::fs::read(&json_path).unwrap()).unwrap();
    assert_eq!(report["config"]["mode"], "open");
    let sch = &report["schedule"];
    // 2 s at 50/s: exactly 100 requests are due in the measured phase.
    assert_eq!(sch["scheduled"], 100, "{sch}");
    assert_eq!(sch["dropped"], 0, "{sch}");
    assert_eq!(f(&report, "/totals/attempted"), 100.0, "{report}");
    assert_eq!(f(&report, "/totals/ok"), 100.0, "{report}");
    for c in report["collections"].as_array().unwrap() {
        assert_eq!(c["deleted_at_end"], false, "{c}");
    }

    // The same collections with another dimension: refuse loudly.
    let out = load(&[
        "--url",
        &server.url,
        "--scenario",
        "many-collections",
        "--collections",
        "1",
        "--vectors-per-collection",
        "20",
        "--dimension",
        "32",
        "--duration",
        "1",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("wrong dimension") && stderr.contains("load-many-collections-0"),
        "{stderr}"
    );
}
