"""Build sdists inside the image's own filesystem, as Cog's ``pip install`` in its Dockerfile does.

The rootfs is the image's base, its ``system_packages`` and the build toolbox (compilers, pkg-config, the
interpreter's headers, from the same pinned Debian archive), unpacked once and run on an overlay in the sandbox
build.run uses; the image's own interpreter runs the build backend, so ``-dev`` libraries and ``.pc`` files of
``system_packages`` are found. ``uv build`` (the host's uv binary, bound in read-only) fetches the build
dependencies from the network with the host's CA bundle, as the host's uv would (its cache kept in the store).
Only the wheel comes out: nothing
of the toolbox or the build reaches a layer.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from ocibuild.errors import BuildError
from ocibuild.oci.layer import LayerBlob
from ocibuild.oci.store import Store
from ocibuild.run.extract import rootfs_in_use
from ocibuild.run.runtime import Container, run_foreground
from ocibuild.run.spec import BindMount, RunOptions, build_spec
from ocibuild.run.workspace import Workspace
from ocibuild.sources.python.uv import key_line, uv_binary

WORK = "/ocibuild-sdist"
"""Where the sdist (or a copy of its source tree) and the wheel meet inside the sandbox."""
HOST_CA = "/ocibuild-host-ca.pem"
UV_CACHE = "/ocibuild-uv-cache"
CLUES = re.compile(r"error|not found|no such file|fatal|missing|cannot|unable", re.I)


class ImageBuildEnv:
    """The image's filesystem below its Python layers plus the build toolbox: ``build(source, out_dir)``."""

    def __init__(
        self,
        layers: Callable[[], Sequence[LayerBlob]],
        keys: Sequence[str],
        interpreter: str,
        store: Store,
        runtime: str = "auto",
    ) -> None:
        self._layers = layers
        self._materialised: list[LayerBlob] | None = None
        self._lock = threading.Lock()
        self.interpreter = interpreter
        self.store = store
        self.runtime = runtime
        text = "|".join([*keys, interpreter])
        self.key = hashlib.sha256(text.encode()).hexdigest()[:16]
        """Names the environment (the layer keys and the interpreter): wheels built in another are not reused."""

    def layers(self) -> list[LayerBlob]:
        with self._lock:  # several layer jobs may need it at once: materialised once
            if self._materialised is None:
                self._materialised = list(self._layers())
            return self._materialised

    def build(self, source: Path, out_dir: Path, label: str) -> None:
        """Build ``source`` (an sdist file or a source tree) into a wheel in ``out_dir``; BuildError on failure."""
        work = out_dir / "work"
        work.mkdir()
        inside = f"{WORK}/work/{source.name}"
        if source.is_dir():
            shutil.copytree(source, work / source.name, symlinks=True)
        else:
            shutil.copy2(source, work / source.name)
        cache = self.store.root / "run-cache" / "sdist-uv"  # build backends downloaded once per store
        cache.mkdir(parents=True, exist_ok=True)
        binds = [
            BindMount(str(out_dir), WORK),
            BindMount(str(cache), UV_CACHE),
            BindMount(uv_binary(), "/usr/local/bin/uv", readonly=True),
        ]
        env = [
            "HOME=/root",
            f"UV_CACHE_DIR={UV_CACHE}",
            "UV_PYTHON_DOWNLOADS=never",
            "UV_NO_CONFIG=1",
            "NO_COLOR=1",
        ]
        host_ca = os.environ.get("SSL_CERT_FILE") or "/etc/ssl/certs/ca-certificates.crt"
        if os.path.isfile(host_ca):
            binds.append(BindMount(str(Path(host_ca).resolve()), HOST_CA, readonly=True))
            env.append(f"SSL_CERT_FILE={HOST_CA}")
        argv = ["uv", "build", "--wheel", "--out-dir", f"{WORK}/dist", "--python", self.interpreter, inside]
        code, log = self._run(argv, env, binds)
        shutil.rmtree(work, ignore_errors=True)
        if code != 0:
            raise BuildError(f"{label}: building its sdist in the image failed: {why(log)}")

    def _run(self, argv: list[str], env: list[str], binds: list[BindMount]) -> tuple[int, str]:
        with contextlib.ExitStack() as stack:
            lower = stack.enter_context(rootfs_in_use(self.layers(), self.store))
            workspace = stack.enter_context(Workspace(lower, self.store.root / "tmp"))
            spec = build_spec({"Env": env}, workspace.rootfs, RunOptions(argv, env, binds, user="0:0", cwd="/"))
            log = workspace.dir / "sdist-build.log"
            with open(log, "wb") as out:
                streams = {"stdout": out.fileno(), "stderr": out.fileno()}
                code = run_foreground(Container(spec, workspace.dir, runtime=self.runtime, **streams))
            text = log.read_text(errors="replace")
        if code != 0:
            print(text[-4000:], file=sys.stderr, end="")
        return code, text


def why(log: str) -> str:
    """One line from a failed ``uv build``: the build backend's last lines that look like the cause, then uv's."""
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    end = next((i for i, line in enumerate(lines) if line.startswith("error:")), len(lines))
    backend = lines[:end]
    clues = [line for line in backend if CLUES.search(line)][-2:] or backend[-2:]
    text = " ".join(clues)[:400]
    summary = key_line("\n".join(lines[end:]))
    return f"{text} ({summary})" if text and summary else text or summary or "uv build failed"
