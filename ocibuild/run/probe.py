"""Run one command in an image's rootfs as built so far and capture what it prints: the sandbox of build.run
(an overlay of the cached rootfs, never modified), but with a private network namespace (loopback only, no
outbound network) and a time limit. The build uses it to import the predictor when its schema needs it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass

from ocibuild.errors import BuildError
from ocibuild.oci.layer import LayerBlob
from ocibuild.oci.store import Store
from ocibuild.run.extract import rootfs_in_use
from ocibuild.run.runtime import Container
from ocibuild.run.spec import BindMount, RunOptions, build_spec
from ocibuild.run.workspace import Workspace


@dataclass(frozen=True)
class Captured:
    """The command's exit code and its stdout and stderr."""

    code: int
    stdout: bytes
    stderr: bytes


def run_captured(
    layers: Sequence[LayerBlob],
    store: Store,
    command: Sequence[str],
    *,
    env: Sequence[str] = (),
    volumes: Sequence[BindMount] = (),
    cwd: str = "/",
    timeout: float = 300.0,
    runtime: str = "auto",
) -> Captured:
    """Run ``command`` as root on ``layers`` with no network; BuildError when it outlives ``timeout`` seconds."""
    with rootfs_in_use(layers, store) as lower, Workspace(lower, store.root / "tmp") as workspace:
        options = RunOptions(list(command), env, list(volumes), "private", user="0:0", cwd=cwd)
        spec = build_spec({"Env": list(env)}, workspace.rootfs, options)
        out, err = workspace.dir / "probe.out", workspace.dir / "probe.err"
        with open(out, "wb") as stdout, open(err, "wb") as stderr:
            container = Container(spec, workspace.dir, runtime=runtime, stdout=stdout.fileno(), stderr=stderr.fileno())
            with container:
                deadline = time.monotonic() + timeout
                code = container.wait(0.1)
                while code is None and time.monotonic() < deadline:
                    code = container.wait(0.1)
                if code is None:
                    with contextlib.suppress(Exception):
                        container.stop()
                    raise BuildError(f"{' '.join(command)}: still running after {timeout:g} s; stopped")
        return Captured(code, out.read_bytes(), err.read_bytes())
