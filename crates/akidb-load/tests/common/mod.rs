//! Starts the real `akidb` server binary and runs the real `akidb-load` binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};

/// The server binary: `target/<profile>/akidb`, next to this test's `deps/` directory.
/// `cargo test --workspace --release` builds it; `cargo test -p akidb-load` alone does not.
pub fn akidb_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable lives in target/<profile>/deps");
    let bin = dir.join("akidb");
    assert!(
        bin.exists(),
        "the akidb server binary is missing at {}: build it first with \
         `cargo build --release -p akidb-server` (same CARGO_TARGET_DIR), \
         or run `cargo test --workspace --release`",
        bin.display()
    );
    bin
}

pub struct Server {
    child: Child,
    pub url: String,
    _data: tempfile::TempDir,
}

impl Server {
    /// `akidb serve` on a free loopback port; waits (up to 60 s) until it logs its address.
    pub fn start() -> Server {
        Server::start_with(&[])
    }

    /// [`Server::start`] with extra `akidb serve` flags (`--tiering false`, `--test-faults ...`).
    pub fn start_with(extra: &[&str]) -> Server {
        let data = tempfile::tempdir().expect("tempdir");
        let (child, addr) =
            akidb_testkit::spawn_akidb(&akidb_binary(), data.path(), extra, "info", false)
                .unwrap_or_else(|e| panic!("{e}"));
        Server {
            child,
            url: format!("http://{addr}"),
            _data: data,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `akidb-load` with `args`, capturing its output.
pub fn load(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_akidb-load"))
        .args(args)
        .output()
        .expect("run akidb-load")
}

pub fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A loopback URL where nothing listens (a port just released by the OS).
pub fn dead_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    format!("http://127.0.0.1:{port}")
}
