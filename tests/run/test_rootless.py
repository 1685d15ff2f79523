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

from tests.runner.harness import free_port

REPO = Path(__file__).resolve().parents[2]
SYSTEM_PYTHON = "/usr/bin/python3"
SETPRIV = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
SCRIPT = textwrap.dedent(
    """
    import sys
    import threading
    import time
    import urllib.request
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
    www = write_layer([Entry.file("www/index.html", b"rootless")], store, Compression.NONE)
    serve = ImageConfig(env=["PATH=/bin"], cmd=["/bin/sh", "-c", "busybox httpd -p 5000 -h /www && sleep 4"])
    for runtime in ("runc", "unshare"):
        port = int(sys.argv[2 if runtime == "runc" else 3])
        args = (build_image([base, www], serve), store)
        thread = threading.Thread(target=run_image, args=args, kwargs={"runtime": runtime, "publish": [f"{port}:5000"]})
        thread.start()
        for _ in range(100):
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).read().decode()
                print(runtime, body, flush=True)
                break
            except OSError:
                time.sleep(0.05)
        thread.join()
    """
)


def test_unprivileged_user_runs_images_and_build_commands() -> None:
    if shutil.which("setpriv") is None or not os.access(SYSTEM_PYTHON, os.X_OK):
        pytest.fail("setpriv and /usr/bin/python3 are needed (util-linux, python3)")
    scratch = Path(tempfile.mkdtemp(prefix="ocibuild-rootless-"))
    try:
        os.chmod(scratch, 0o777)
        result = subprocess.run(
            [*SETPRIV, SYSTEM_PYTHON, "-c", SCRIPT, str(scratch), str(free_port()), str(free_port())],
            env={"PATH": os.environ["PATH"], "HOME": str(scratch), "PYTHONPATH": str(REPO)},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "runc 0",
        "unshare 0",
        "layer True []",
        "runc rootless",  # published from the container's network namespace, entered through its user namespace
        "unshare rootless",
    ], result.stderr
    assert result.stderr.count("uid=0") == 2, "the caller is root inside its user namespace"
