//! Things that must stop the tool with a non-zero exit and a clear message, without a server.

mod common;

use common::{dead_url, load, text};

#[test]
fn unreachable_server() {
    let url = dead_url();
    let out = load(&["--url", &url, "--scenario", "baseline", "--duration", "1"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("not reachable") && stderr.contains(&url),
        "{stderr}"
    );
}

#[test]
fn missing_or_malformed_dataset() {
    let url = dead_url();
    let out = load(&[
        "--url",
        &url,
        "--dataset",
        "/nonexistent/akidb-load-dataset",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("/nonexistent/akidb-load-dataset") && stderr.contains("no such directory"),
        "{stderr}"
    );

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("base.fvecs"), b"this is not an fvecs file").unwrap();
    let out = load(&["--url", &url, "--dataset", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("malformed"), "{stderr}");
}

#[test]
fn tiered_and_failure_injection_run_and_check_the_server_first() {
    // Both scenarios are available now: with no server they stop like any other, exit 1.
    for scenario in ["tiered", "failure-injection"] {
        let url = dead_url();
        let out = load(&["--url", &url, "--scenario", scenario]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("not reachable") && stderr.contains(&url),
            "{stderr}"
        );
        assert!(!stderr.contains("not available"), "{stderr}");
    }
    // tiered needs one collection per tier; said before anything touches the server.
    let out = load(&[
        "--url",
        &dead_url(),
        "--scenario",
        "tiered",
        "--collections",
        "2",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("at least 3"),
        "{}",
        text(&out)
    );
}

#[test]
fn bad_flags() {
    let out = load(&["--mix", "search=50,compact=50"]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown operation"));
    let out = load(&["--url", &dead_url(), "--max-error-rate", "2"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("fraction"));
}
