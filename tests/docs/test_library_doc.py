"""docs/library.md's example runs as written and prints a digest."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.helpers import REPO


def test_library_example_runs():
    text = (REPO / "docs" / "library.md").read_text()
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(r"sha256:[0-9a-f]{64}\n", result.stdout)
