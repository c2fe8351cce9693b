//! schemathesis (pinned in scripts/requirements-test.txt, installed by scripts/test) generates
//! requests from `/openapi.json` and sends them to the real binary with an admin key: no answer
//! may be a 5xx, and every status, content type and body must be as the document says. A second
//! run without a key checks that the 401 answers are documented too.

mod common;

use std::process::Command;

use common::Server;

const ADMIN: &str = "schemathesis-admin-key-0123456789";

fn schemathesis() -> String {
    std::env::var("AKIDB_SCHEMATHESIS").unwrap_or_else(|_| {
        panic!(
            "schemathesis not found: run the tests with scripts/test (it installs it into \
             .venv-test/), or set AKIDB_SCHEMATHESIS to a schemathesis binary"
        )
    })
}

fn run(server: &Server, key: Option<&str>, examples: u32) {
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(schemathesis());
    command
        .current_dir(dir.path())
        .args(["run", &format!("{}/openapi.json", server.url)])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
            "--max-examples",
            &examples.to_string(),
            "--seed",
            "1",
            "--no-color",
        ]);
    if let Some(key) = key {
        command.args(["-H", &format!("Authorization: Bearer {key}")]);
    }
    let out = command.output().expect("run schemathesis");
    let text = String::from_utf8_lossy(&out.stdout);
    let summary: String = text
        .lines()
        .skip_while(|l| !l.contains("SUMMARY"))
        .collect::<Vec<_>>()
        .join("\n");
    eprintln!("{summary}");
    assert!(
        out.status.success(),
        "schemathesis found failures:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("Tested: "), "{text}");
}

#[test]
fn every_answer_matches_the_openapi_document() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("admin.key");
    std::fs::write(&key_file, ADMIN).unwrap();
    let server = Server::start(
        &dir.path().join("data"),
        &["--admin-api-key-file", key_file.to_str().unwrap()],
    );
    run(&server, Some(ADMIN), 25);
    run(&server, None, 5);
}
