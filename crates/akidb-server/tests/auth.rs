//! API keys, roles, collection scopes and quotas, against the real binary.
//!
//! The access matrix sends every route of `akidb_api::ROUTES` with every kind of key and checks
//! the answer against the rule the table gives, so a new route is tested the day it is added.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use akidb_api::{Access, Route};
use common::{Server, client};
use serde_json::{Value, json};

const ADMIN: &str = "bootstrap-admin-key-for-tests-0123456789";

fn start(dir: &Path, extra: &[&str]) -> Server {
    let key_file = dir.join("admin.key");
    std::fs::write(&key_file, format!("{ADMIN}\n")).unwrap();
    let key_file = key_file.to_str().unwrap().to_string();
    let mut args = vec!["--admin-api-key-file", &key_file];
    args.extend_from_slice(extra);
    Server::start(&dir.join("data"), &args)
}

async fn call(
    server: &Server,
    key: Option<&str>,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = client().request(method, format!("{}{path}", server.url));
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::Null),
        headers,
    )
}

async fn create_key(server: &Server, body: Value) -> (String, String) {
    let (status, created, _) = call(
        server,
        Some(ADMIN),
        "POST",
        "/api/v1/admin/keys",
        Some(body),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    (
        created["id"].as_str().unwrap().to_string(),
        created["key"].as_str().unwrap().to_string(),
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Who {
    NoKey,
    Read,
    Write,
    /// An admin key scoped to collections named `other*`.
    OtherScope,
    Admin,
}

/// What the route table says `who` gets: 401, 403, or through (any other status).
fn expected(route: &Route, who: Who) -> Option<u16> {
    use Access::*;
    match (route.access, who) {
        (Open, _) => None,
        (_, Who::NoKey) => Some(401),
        (Metrics, _) => None,
        (Write | Admin | ServerAdmin, Who::Read) => Some(403),
        (Admin | ServerAdmin, Who::Write) => Some(403),
        // The scoped key may not touch `zz`, nor anything server-wide.
        (ServerRead | ServerAdmin, Who::OtherScope) => Some(403),
        (Read | Write | Admin, Who::OtherScope) if route.names_collection() => Some(403),
        // Creating `zz` is outside its scope; listing is allowed (and filtered).
        (Admin, Who::OtherScope) if route.method == "POST" => Some(403),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_every_kind_of_key_as_the_table_says() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &[]);
    let (_, read) = create_key(&server, json!({"role": "read"})).await;
    let (_, write) = create_key(&server, json!({"role": "write"})).await;
    let (_, scoped) =
        create_key(&server, json!({"role": "admin", "collections": ["other*"]})).await;
    let key = |who: Who| match who {
        Who::NoKey => None,
        Who::Read => Some(read.as_str()),
        Who::Write => Some(write.as_str()),
        Who::OtherScope => Some(scoped.as_str()),
        Who::Admin => Some(ADMIN),
    };
    let mut checked = 0;
    let mut table = BTreeMap::new();
    for route in akidb_api::ROUTES {
        if route.path.contains("test-faults") {
            continue; // served only with --test-faults
        }
        let path = route
            .path
            .replace("{name}", "zz")
            .replace("{id}", "d")
            .replace("{key_id}", "k_none");
        // Valid for the create (so that a key with the right is let through to create `zz`);
        // `{}` elsewhere: a shape error at worst, after the access check.
        let body = match (route.method, route.path) {
            ("POST", "/api/v1/collections") => {
                Some(json!({"name": "zz", "dimension": 2, "metric": "cosine"}))
            }
            ("POST", _) | ("PATCH", _) => Some(json!({})),
            _ => None,
        };
        for who in [
            Who::NoKey,
            Who::Read,
            Who::Write,
            Who::OtherScope,
            Who::Admin,
        ] {
            let (status, body, headers) =
                call(&server, key(who), route.method, &path, body.clone()).await;
            let code = body["error"]["code"].as_str().unwrap_or("");
            match expected(route, who) {
                Some(401) => {
                    assert_eq!(
                        (status, code),
                        (401, "unauthenticated"),
                        "{} {} as {who:?}",
                        route.method,
                        route.path
                    );
                    assert_eq!(headers.get("www-authenticate").unwrap(), "Bearer");
                }
                Some(403) => assert_eq!(
                    (status, code),
                    (403, "permission_denied"),
                    "{} {} as {who:?}: {body}",
                    route.method,
                    route.path
                ),
                Some(other) => unreachable!("{other}"),
                None => assert!(
                    status != 401 && status != 403 && status != 500,
                    "{} {} as {who:?}: {status} {body}",
                    route.method,
                    route.path
                ),
            }
            table.insert((route.path, route.method, format!("{who:?}")), status);
            checked += 1;
        }
    }
    assert!(checked >= 5 * (akidb_api::ROUTES.len() - 1));
    for ((path, method, who), status) in &table {
        eprintln!("{method} {path} as {who}: {status}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_listed_without_secrets_scoped_revoked_at_once_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &[]);
    for name in ["tenant-a-docs", "tenant-b-docs"] {
        let body = json!({"name": name, "dimension": 2, "metric": "l2"});
        assert_eq!(
            call(
                &server,
                Some(ADMIN),
                "POST",
                "/api/v1/collections",
                Some(body)
            )
            .await
            .0,
            201
        );
    }
    let (id, key) = create_key(
        &server,
        json!({"role": "write", "collections": ["tenant-a-*"], "description": "tenant a"}),
    )
    .await;
    // Listed without the key or its hash.
    let (status, list, _) = call(&server, Some(ADMIN), "GET", "/api/v1/admin/keys", None).await;
    assert_eq!(status, 200);
    let text = list.to_string();
    assert!(!text.contains(&key) && !text.contains("sha256"), "{text}");
    let ids: Vec<&str> = list["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&id.as_str()) && ids.contains(&"bootstrap"),
        "{ids:?}"
    );
    // The key sees and writes only its collections; `api-key:` works like Bearer.
    let (_, list, _) = call(&server, Some(&key), "GET", "/api/v1/collections", None).await;
    let names: Vec<&str> = list["collections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["tenant-a-docs"]);
    let doc = json!({"documents": [{"id": "1", "vector": [1.0, 0.0]}]});
    let resp = client()
        .post(format!(
            "{}/api/v1/collections/tenant-a-docs/documents",
            server.url
        ))
        .header("api-key", &key)
        .json(&doc)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let (status, body, _) = call(
        &server,
        Some(&key),
        "POST",
        "/api/v1/collections/tenant-b-docs/documents",
        Some(doc.clone()),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("permission_denied"))
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("tenant-b-docs")
    );
    // A wrong key, a malformed header.
    assert_eq!(
        call(
            &server,
            Some("akidb_nope"),
            "GET",
            "/api/v1/collections",
            None
        )
        .await
        .0,
        401
    );
    let resp = client()
        .get(format!("{}/api/v1/collections", server.url))
        .header("authorization", "Basic abc")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    // Key files hold hashes only.
    let stored = std::fs::read_to_string(dir.path().join("data/auth/keys.json")).unwrap();
    assert!(!stored.contains(&key));
    drop(server);
    let server = start(dir.path(), &[]);
    assert_eq!(
        call(
            &server,
            Some(&key),
            "GET",
            "/api/v1/collections/tenant-a-docs",
            None
        )
        .await
        .0,
        200
    );
    // Revoked: refused on the very next request.
    let (status, _, _) = call(
        &server,
        Some(ADMIN),
        "DELETE",
        &format!("/api/v1/admin/keys/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        call(
            &server,
            Some(&key),
            "GET",
            "/api/v1/collections/tenant-a-docs",
            None
        )
        .await
        .0,
        401
    );
    let (status, body, _) = call(
        &server,
        Some(ADMIN),
        "DELETE",
        "/api/v1/admin/keys/bootstrap",
        None,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    // A bad request to create a key names the field.
    let (status, body, _) = call(
        &server,
        Some(ADMIN),
        "POST",
        "/api/v1/admin/keys",
        Some(json!({"role": "read", "collections": ["a/b"]})),
    )
    .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (400, Some("collections"))
    );
    let (status, body, _) = call(
        &server,
        Some(ADMIN),
        "POST",
        "/api/v1/admin/keys",
        Some(json!({"role": "root"})),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("invalid_body"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotas_refuse_with_429_or_403_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(
        dir.path(),
        &[
            "--quota-max-vectors-per-collection",
            "3",
            "--metrics-auth",
            "open",
        ],
    );
    let (_, limited) = create_key(
        &server,
        json!({"role": "admin", "collections": ["q-*"], "limits": {"max_collections": 1, "requests_per_second": 5}}),
    )
    .await;
    let create = |name: &str| json!({"name": name, "dimension": 2, "metric": "l2"});
    assert_eq!(
        call(
            &server,
            Some(&limited),
            "POST",
            "/api/v1/collections",
            Some(create("q-1"))
        )
        .await
        .0,
        201
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, body, _) = call(
        &server,
        Some(&limited),
        "POST",
        "/api/v1/collections",
        Some(create("q-2")),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("quota_exceeded")),
        "{body}"
    );
    assert_eq!(
        call(&server, Some(ADMIN), "GET", "/api/v1/collections/q-2", None)
            .await
            .0,
        404
    );
    // Per collection: 3 vectors.
    let docs = |ids: &[&str]| json!({"documents": ids.iter().map(|id| json!({"id": id, "vector": [1.0, 2.0]})).collect::<Vec<_>>()});
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let path = "/api/v1/collections/q-1/documents";
    assert_eq!(
        call(
            &server,
            Some(&limited),
            "POST",
            path,
            Some(docs(&["a", "b"]))
        )
        .await
        .0,
        200
    );
    let (status, body, _) = call(
        &server,
        Some(&limited),
        "POST",
        path,
        Some(docs(&["c", "d"])),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("quota_exceeded")),
        "{body}"
    );
    let (_, info, _) = call(&server, Some(ADMIN), "GET", "/api/v1/collections/q-1", None).await;
    assert_eq!(info["count"], 2, "a refused write changed nothing");
    // 5 requests per second: a burst of 20 gets 429 with Retry-After.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut limited_answers = 0;
    for _ in 0..20 {
        let (status, body, headers) = call(
            &server,
            Some(&limited),
            "GET",
            "/api/v1/collections/q-1",
            None,
        )
        .await;
        if status == 429 {
            assert_eq!(body["error"]["code"], "rate_limited");
            assert!(headers.get("retry-after").is_some());
            limited_answers += 1;
        }
    }
    assert!(limited_answers >= 10, "{limited_answers} of 20 limited");
    // The admin key has no rate limit.
    assert_eq!(
        call(&server, Some(ADMIN), "GET", "/api/v1/collections/q-1", None)
            .await
            .0,
        200
    );
    let status = call(&server, None, "GET", "/metrics", None).await.0;
    assert_eq!(status, 200, "/metrics is open with --metrics-auth open");
    let text = client()
        .get(format!("{}/metrics", server.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for reason in ["requests_per_second", "collections", "vectors"] {
        assert!(
            text.contains(&format!(
                "akidb_quota_refusals_total{{reason=\"{reason}\"}}"
            )),
            "{reason} not counted"
        );
    }
}

/// Serving a non-loopback address with no key is refused, unless `--insecure-no-auth`.
#[test]
fn a_public_address_without_keys_is_refused_unless_insecure() {
    let dir = tempfile::tempdir().unwrap();
    let run = |extra: &[&str]| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_akidb"))
            .args(["serve", "--listen", "0.0.0.0:0", "--data-dir"])
            .arg(dir.path())
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                let _ = tx.send(line);
            }
        });
        let mut lines = Vec::new();
        let mut closed = false;
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while std::time::Instant::now() < deadline {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => {
                    let listening = line.contains("listening");
                    lines.push(line);
                    if listening {
                        break;
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    closed = true;
                    break;
                }
                Err(_) => {}
            }
        }
        // A closed stderr means the process is exiting: wait for it rather
        // than race its exit against `try_wait` (CI lost that race once).
        let exited = if closed {
            Some(child.wait().unwrap())
        } else {
            child.try_wait().unwrap()
        };
        let _ = child.kill();
        let _ = child.wait();
        (exited, lines.join("\n"))
    };
    let (exited, log) = run(&[]);
    assert!(exited.is_some_and(|s| !s.success()), "{log}");
    assert!(
        log.contains("refusing to listen on 0.0.0.0:0 without an API key"),
        "{log}"
    );
    let (exited, log) = run(&["--insecure-no-auth"]);
    assert!(exited.is_none(), "{log}");
    assert!(log.contains("WITHOUT authentication"), "{log}");
}
