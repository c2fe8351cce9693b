//! The real server, the real load tool: a short baseline run must execute every operation of
//! the mix without errors and report ordered percentiles and the server's RSS; a collection of
//! the wrong dimension must stop the tool; `tiered` must measure a first query on every tier and
//! read the tier counts; `failure-injection` must run against a server with injected
//! object-store faults and report what it checked.

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

#[test]
fn tiered_measures_the_first_query_per_tier_and_reads_the_tier_counts() {
    // No background tiering policy: the tiers stay where the setup puts them (the access-rate
    // promotion on reads still applies, and the report must show it).
    let server = Server::start_with(&["--tiering", "false"]);
    let dir = tempfile::tempdir().unwrap();
    let json_path = dir.path().join("report.json");
    let md_path = dir.path().join("report.md");
    let out = load(&[
        "--url",
        &server.url,
        "--scenario",
        "tiered",
        "--request-timeout",
        "10",
        // 5 collections: 1 hot, 1 warm, 3 cold.
        "--collections",
        "5",
        "--vectors-per-collection",
        "200",
        "--dimension",
        "16",
        "--qps",
        "40",
        "--duration",
        "2",
        "--report-json",
        json_path.to_str().unwrap(),
        "--report-md",
        md_path.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let report: Value = serde_json::from_slice(&std::fs::read(&json_path).unwrap()).unwrap();
    assert_eq!(report["config"]["scenario"], "tiered");
    assert_eq!(report["config"]["warmup_secs"], 0.0);
    let t = &report["tiered"];
    let len = |k: &str| t[k].as_array().map_or(0, Vec::len);
    assert_eq!(
        (
            len("hot_collections"),
            len("warm_collections"),
            len("cold_collections")
        ),
        (1, 1, 3),
        "{t}"
    );
    // Every move succeeded and was timed.
    for (mv, n) in [
        ("promote_to_hot", 1.0),
        ("demote_to_warm", 1.0),
        ("demote_to_cold", 3.0),
    ] {
        let m = &t["moves"][mv];
        assert_eq!(f(m, "/ok"), n, "{mv}: {m}");
        assert_eq!(f(m, "/errors"), 0.0, "{mv}: {m}");
        assert!(f(m, "/latency_ms/max_ms") > 0.0, "{mv}: {m}");
    }
    assert_eq!(f(t, "/status_reads/errors"), 0.0, "{t}");
    // A first query on each tier, confirmed by reading the tier back before it.
    for tier in ["hot", "warm", "cold"] {
        let q = &t["first_query"][tier];
        assert!(f(q, "/latency/ok") >= 1.0, "{tier}: {q}");
        assert_eq!(f(q, "/latency/errors"), 0.0, "{tier}: {q}");
        assert!(f(q, "/latency/latency_ms/p50_ms") > 0.0, "{tier}: {q}");
        for sample in q["samples"].as_array().unwrap() {
            assert_eq!(sample["tier_before"], tier, "{sample}");
            assert_eq!(sample["moved_to"], tier, "{sample}");
            assert!(sample["latency_ms"].as_f64().unwrap() > 0.0, "{sample}");
            assert!(sample["tier_after"].is_string(), "{sample}");
        }
    }
    // The hot collection stays hot; a cold one is at least loaded to warm by its first read.
    assert_eq!(t["first_query"]["hot"]["samples"][0]["tier_after"], "hot");
    assert_ne!(t["first_query"]["cold"]["samples"][0]["tier_after"], "cold");
    // GET /api/v1/tiers was read after the moves (exactly the split), before and after the run.
    let counts = |when: &str| {
        let c = &t["tiers"][when];
        assert!(c.is_object(), "tiers.{when} missing: {t}");
        (
            f(c, "/hot/collections"),
            f(c, "/warm/collections"),
            f(c, "/cold/collections"),
        )
    };
    assert_eq!(counts("after_moves"), (1.0, 1.0, 3.0));
    for when in ["before_run", "after_run"] {
        let (h, w, c) = counts(when);
        assert_eq!(h + w + c, 5.0, "{when}: {t}");
    }
    let moved: u64 = t["transitions"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(moved, 5, "{t}");
    // The first queries sample only part of the cold tail: one cold collection meets the run.
    assert_eq!(
        t["first_query"]["cold"]["samples"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert!(
        t["transitions"]
            .as_object()
            .unwrap()
            .keys()
            .any(|k| k.starts_with("cold -> ")),
        "{t}"
    );
    // The skewed run itself.
    let search = &report["operations"]["search"];
    assert!(f(search, "/ok") > 0.0, "{search}");
    assert_eq!(f(&report, "/totals/errors"), 0.0, "{}", report["totals"]);
    assert!(report.get("failure_injection").is_none());
    for c in report["collections"].as_array().unwrap() {
        assert_eq!(c["deleted_at_end"], true, "{c}");
    }
    let md = std::fs::read_to_string(&md_path).unwrap();
    for needle in [
        "# akidb-load report: tiered (PASSED)",
        "## Tiers",
        "### First search after the move",
        "| cold |",
        "| after the run |",
    ] {
        assert!(md.contains(needle), "{needle:?} missing: {md}");
    }
}

#[test]
fn failure_injection_reports_ready_probes_and_object_store_counters() {
    // TESTING ONLY server flags: slow, flaky object store; small flushes so the run's inserts
    // reach it.
    let server = Server::start_with(&[
        "--test-faults",
        "latency_ms=5,fail_rate=0.2,seed=3",
        "--flush-max-docs",
        "100",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let json_path = dir.path().join("report.json");
    let out = load(&[
        "--url",
        &server.url,
        "--scenario",
        "failure-injection",
        "--request-timeout",
        "10",
        "--vectors-per-collection",
        "200",
        "--duration",
        "3",
        "--warmup",
        "1",
        "--report-json",
        json_path.to_str().unwrap(),
    ]);
    // Errors under faults are expected and do not fail a run without thresholds.
    assert!(out.status.success(), "{}", text(&out));
    let report: Value = serde_json::from_slice(&std::fs::read(&json_path).unwrap()).unwrap();
    assert_eq!(report["config"]["scenario"], "failure-injection");
    assert!(f(&report, "/totals/ok") > 0.0, "{}", report["totals"]);
    for op in ["search", "insert"] {
        assert!(
            f(&report["operations"][op], "/ok") > 0.0,
            "{op}: {}",
            report["operations"][op]
        );
    }
    let fi = &report["failure_injection"];
    assert!(fi.is_object(), "no failure_injection section: {report}");
    let r = &fi["ready"];
    let samples = f(r, "/samples");
    // About 4 s of run, a probe every 500 ms.
    assert!(samples >= 4.0, "{r}");
    let sum = f(r, "/ready") + f(r, "/degraded") + f(r, "/other") + f(r, "/failing");
    assert_eq!(sum, samples, "{r}");
    assert!(!r["changes"].as_array().unwrap().is_empty(), "{r}");
    // The object-store counters were read before and after.
    assert!(fi["metrics_unavailable"].is_null(), "{fi}");
    assert!(
        f(fi, "/object_store_delta/akidb_uploads_total") > 0.0,
        "{fi}"
    );
    assert!(fi["faults_observed"].is_boolean(), "{fi}");
    assert!(f(fi, "/http_503") >= 0.0 && f(fi, "/errors_with_retry_after") >= 0.0);
    let md = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "# akidb-load report: failure-injection",
        "| fault injection | not set by this tool",
        "| checked: /ready | polled every 500 ms",
        "| checked: object store |",
        "## Fault injection",
    ] {
        assert!(md.contains(needle), "{needle:?} missing: {md}");
    }
}

/// `churn`: inserts replace preloaded ids, every measured search is checked against the
/// server's exact answer, and the report says how recall held while dead slots piled up.
#[test]
fn churn_checks_recall_against_the_exact_answer() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let json_path = dir.path().join("report.json");
    let out = load(&[
        "--url",
        &server.url,
        "--scenario",
        "churn",
        "--request-timeout",
        "5",
        "--duration",
        "3",
        "--warmup",
        "1",
        "--vectors-per-collection",
        "2000",
        "--dimension",
        "16",
        "--report-json",
        json_path.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let report: Value = serde_json::from_slice(&std::fs::read(&json_path).unwrap()).unwrap();
    assert_eq!(report["config"]["scenario"], "churn");
    assert_eq!(f(&report, "/config/churn_noise"), 0.2);
    let churn = &report["churn"];
    assert!(f(churn, "/replacements_acknowledged") > 0.0, "{churn}");
    assert_eq!(f(churn, "/replacements_failed"), 0.0, "{churn}");
    assert_eq!(f(churn, "/live_documents"), 2000.0, "{churn}");
    let all = &churn["recall"]["all"];
    let checked = f(all, "/checked");
    assert_eq!(checked, f(&report, "/operations/search/ok"), "{churn}");
    assert_eq!(checked, f(&report, "/recall/checked"), "{report}");
    let (mean, min) = (f(all, "/mean"), f(all, "/min"));
    assert!(0.0 <= min && min <= mean && mean <= 1.0, "{all}");
    assert_eq!(churn["recall"]["windows"].as_array().unwrap().len(), 6);
    let watch = &churn["collections"]["load-churn-0"];
    assert!(f(watch, "/samples") >= 2.0, "{watch}");
    // Replacements keep the count: every insert hit a preloaded id.
    assert_eq!(f(watch, "/count_last"), 2000.0, "{watch}");
    let md = String::from_utf8_lossy(&out.stdout);
    assert!(md.contains("## Recall under churn"), "{md}");
}
