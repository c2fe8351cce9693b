//! The operations kit in `ops/`: the alert rules pass `promtool check rules` and their unit
//! tests (`promtool test rules`, Debian's `prometheus` package, which scripts/test installs),
//! the Grafana dashboard is well-formed for provisioning, and every metric the dashboard and the
//! rules name has samples in a real `/metrics` page of the binary.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Api, Server};
use serde_json::{Value, json};

fn ops() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ops")
}

fn promtool() -> String {
    let tool = std::env::var("AKIDB_PROMTOOL").unwrap_or_else(|_| "promtool".into());
    let found = Command::new(&tool).arg("--version").output().is_ok();
    assert!(
        found,
        "{tool} not found: scripts/test installs it (Debian's prometheus package), or set AKIDB_PROMTOOL"
    );
    tool
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    text
}

#[test]
fn alert_rules_pass_promtool_check_and_their_unit_tests() {
    let tool = promtool();
    let dir = ops().join("prometheus");
    let checked = run(Command::new(&tool)
        .args(["check", "rules", "akidb-alerts.yml"])
        .current_dir(&dir));
    assert!(checked.contains("SUCCESS: 6 rules found"), "{checked}");
    let tested = run(Command::new(&tool)
        .args(["test", "rules", "akidb-alerts.test.yml"])
        .current_dir(&dir));
    assert!(tested.contains("SUCCESS"), "{tested}");
    // Every alert has a unit test and a runbook section.
    let rules = std::fs::read_to_string(dir.join("akidb-alerts.yml")).unwrap();
    let tests = std::fs::read_to_string(dir.join("akidb-alerts.test.yml")).unwrap();
    let runbook = std::fs::read_to_string(ops().join("RUNBOOK.md")).unwrap();
    let alerts: Vec<&str> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
        .collect();
    assert_eq!(alerts.len(), 6);
    for a in alerts {
        assert!(
            tests.contains(&format!("alertname: {a}")),
            "no unit test for {a}"
        );
        assert!(
            runbook.contains(&format!("\n## {a}\n")),
            "no runbook section for {a}"
        );
        assert!(
            rules.contains(&format!("ops/RUNBOOK.md#{}", a.to_lowercase())),
            "{a} does not link its runbook section"
        );
    }
}

/// Metric names in a PromQL expression or text: words starting `akidb_` or `process_`.
fn metric_names(text: &str, out: &mut BTreeSet<String>) {
    for word in text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':')) {
        if word.starts_with("akidb_") || word.starts_with("process_") {
            out.insert(word.to_string());
        }
    }
}

/// The dashboard: valid provisioning JSON, each panel titled, placed, with queries on the
/// dashboard's Prometheus data-source variable. Returns every query.
fn dashboard_queries() -> Vec<String> {
    let text = std::fs::read_to_string(ops().join("grafana/akidb.json")).unwrap();
    let d: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(d["uid"], "akidb-overview");
    assert!(d["schemaVersion"].as_u64().unwrap() >= 36);
    assert_eq!(d["templating"]["list"][0]["type"], "datasource");
    assert_eq!(d["templating"]["list"][0]["query"], "prometheus");
    let panels = d["panels"].as_array().unwrap();
    assert!(panels.len() >= 12, "{} panels", panels.len());
    let mut ids = BTreeSet::new();
    let mut queries = Vec::new();
    for p in panels {
        assert!(
            ids.insert(p["id"].as_u64().unwrap()),
            "duplicate panel id {}",
            p["id"]
        );
        assert!(!p["title"].as_str().unwrap().is_empty());
        for k in ["x", "y", "w", "h"] {
            assert!(p["gridPos"][k].is_u64(), "{}: gridPos.{k}", p["title"]);
        }
        let targets = p["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{}: no query", p["title"]);
        for t in targets {
            assert_eq!(t["datasource"]["uid"], "${datasource}", "{}", p["title"]);
            queries.push(t["expr"].as_str().unwrap().to_string());
        }
    }
    queries
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_dashboard_and_rules_name_is_served() {
    let mut wanted = BTreeSet::new();
    for q in dashboard_queries() {
        metric_names(&q, &mut wanted);
    }
    let rules = std::fs::read_to_string(ops().join("prometheus/akidb-alerts.yml")).unwrap();
    metric_names(&rules, &mut wanted);
    let runbook = std::fs::read_to_string(ops().join("RUNBOOK.md")).unwrap();
    metric_names(&runbook, &mut wanted);
    assert!(wanted.len() >= 25, "{wanted:?}");

    // A server that has done a little of everything the panels show: writes, searches, an
    // error, a tier move.
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--tiering", "false"]);
    let api = Api::new(&server);
    api.post(
        "/api/v1/collections",
        json!({"name": "m", "dimension": 2, "metric": "l2"}),
    )
    .await;
    api.post(
        "/api/v1/collections/m/documents",
        json!({"documents": [{"id": "a", "vector": [1.0, 2.0]}]}),
    )
    .await;
    api.post(
        "/api/v1/collections/m/search",
        json!({"vector": [1.0, 2.0], "k": 1}),
    )
    .await;
    let (status, _) = api.get("/api/v1/collections/nope").await;
    assert_eq!(status, 404);
    api.post(
        "/api/v1/collections/m/tier",
        json!({"action": "demote", "target": "cold"}),
    )
    .await;
    let (_, page) = api.get("/metrics").await;
    let page = page.as_str().unwrap().to_string();
    let mut served = BTreeSet::new();
    for line in page.lines().filter(|l| !l.starts_with('#')) {
        let name = line.split(['{', ' ']).next().unwrap();
        served.insert(name.to_string());
    }
    let missing: Vec<&String> = wanted.iter().filter(|n| !served.contains(*n)).collect();
    assert!(
        missing.is_empty(),
        "named in ops/ but without samples in /metrics: {missing:?}"
    );
}
