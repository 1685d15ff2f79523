"""Rootless: as an unprivileged user, runc (user namespace) and the unshare fallback both run the image.

The child runs the system Python with only the standard library (layers uncompressed, so no isal).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SYSTEM_PYTHON = "/usr/bin/python3"
SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from ocibuild.oci import Compression, Entry, ImageConfig, Store, build_image, write_layer
    from ocibuild.run import run_build_commands, run_image

    store = Store(Path(sys.argv[1]) / "store")
    base = write_layer([Entry.file_from("bin/busybox", Path("/bin/busybox"), 0o755), Entry.symlink("bin/sh", "busybox"),
                        Entry.file("etc/passwd", b"root:x:0:0::/root:/bin/sh\\n")], store, Compression.NONE)
    config = ImageConfig(env=["PATH=/bin"], cmd=["/bin/sh", "-c", "echo uid=$(id -u) >&2"])
    image = build_image([base], config)
    for runtime in ("runc", "unshare"):
        print(runtime, run_image(image, store, runtime=runtime), flush=True)
    [layer] = run_build_commands([base], ["echo built > /built"], {}, store, 0, Compression.NONE, env=["PATH=/bin"])
    print("layer", layer.size > 0, sorted(p.name for p in (store.root / "tmp").iterdir()))
    """
)


def test_unprivileged_user_runs_images_and_build_commands() -> None:
    if shutil.which("setpriv") is None or not os.access(SYSTEM_PYTHON, os.X_OK):
        pytest.fail("setpriv and /usr/bin/python3 are needed (util-linux, python3)")
    scratch = Path(tempfile.mkdtemp(prefix="ocibuild-rootless-"))
    try:
        os.chmod(scratch, 0o777)
        result = subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", SYSTEM_PYTHON, "-c", SCRIPT, str(scratch)],
            env={"PATH": os.environ["PATH"], "HOME": str(scratch), "PYTHONPATH": str(REPO)},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["runc 0", "unshare 0", "layer True []"], result.stderr
    assert result.stderr.count("uid=0") == 2, "the caller is root inside its user namespace"
