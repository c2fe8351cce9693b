"""The README's Python quick start, run verbatim against the binary: its output must be what
the README says it prints."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from conftest import REPO


def test_readme_python_quick_start_runs_verbatim(server):
    readme = (REPO / "README.md").read_text()
    section = readme.split("### Python quick start", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
        env={**os.environ, "AKIDB_URL": server.url},
    )
    assert out.returncode == 0, out.stderr
    promised = re.search(r"It prints `(.*?)` and `(.*?)`", section)
    assert out.stdout.splitlines() == [promised.group(1), promised.group(2)]
