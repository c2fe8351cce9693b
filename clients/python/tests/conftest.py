"""Starts the real `akidb` binary for the tests: `$AKIDB_BIN`, else the repository's release
build (`target/release/akidb`). A missing binary is an error, never a skip."""

from __future__ import annotations

import os
import pathlib
import queue
import re
import signal
import subprocess
import tempfile
import threading
import time
from typing import Dict, List, Optional, Sequence

import pytest

REPO = pathlib.Path(__file__).resolve().parents[3]
ADMIN_KEY = "akidb-python-tests-admin-key-0123456789abcdef"


def akidb_bin() -> str:
    path = os.environ.get("AKIDB_BIN") or str(REPO / "target" / "release" / "akidb")
    if not os.access(path, os.X_OK):
        raise RuntimeError(
            f"no akidb binary at {path}: build it (cargo build --release) or set AKIDB_BIN"
        )
    return path


class Server:
    """One `akidb serve` on a free loopback port, with its own data directory."""

    def __init__(
        self,
        args: Sequence[str] = (),
        env: Optional[Dict[str, str]] = None,
        data_dir: Optional[str] = None,
        listen: str = "127.0.0.1:0",
    ) -> None:
        self._tmp = None if data_dir else tempfile.TemporaryDirectory(prefix="akidb-py-")
        self.data_dir = data_dir or self._tmp.name  # type: ignore[union-attr]
        self.log: List[str] = []
        cmd = [akidb_bin(), "serve", "--listen", listen, "--data-dir", self.data_dir, *args]
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("AKIDB_")}
        full_env.update({"RUST_LOG": "info", "NO_COLOR": "1", **(env or {})})
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            env=full_env, text=True,
        )
        lines: "queue.Queue[Optional[str]]" = queue.Queue()

        def pump() -> None:
            assert self.proc.stderr is not None
            for line in self.proc.stderr:
                self.log.append(line.rstrip())
                lines.put(line)
            lines.put(None)

        threading.Thread(target=pump, daemon=True).start()
        deadline = time.monotonic() + 60
        addr = None
        while addr is None:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                line = None
            if line is None:
                self.stop()
                raise RuntimeError("akidb did not start:\n" + "\n".join(self.log[-30:]))
            m = re.search(r"listening.*addr=(\S+)", line)
            if m:
                addr = m.group(1)
        scheme = "https" if "tls=true" in line else "http"
        self.url = f"{scheme}://{addr}"

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def close(self) -> None:
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()


@pytest.fixture(scope="session")
def server():
    """One server for the session, open (no keys), for the tests that need no auth."""
    s = Server()
    yield s
    s.close()


@pytest.fixture(scope="session")
def auth_server():
    """One server for the session with a bootstrap admin key."""
    s = Server(env={"AKIDB_ADMIN_API_KEY": ADMIN_KEY})
    yield s
    s.close()


_names = iter(range(1_000_000))


@pytest.fixture
def name(request) -> str:
    """A collection name unique to the test."""
    test = re.sub(r"[^A-Za-z0-9]+", "-", request.node.name)[:40].strip("-")
    return f"py-{next(_names)}-{test}"
