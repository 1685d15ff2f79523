"""``ocibuild serve``: run a Cog image (as ``ocibuild run`` does) and serve its HTTP API, with ``--playground`` a
browser page generated from the model's ``/openapi.json``, both on one origin.

The container's port 5000 is published on a free port of 127.0.0.1 (a private network namespace and a
forwarder, like ``run -p``); ``proxy.Proxy`` listens where ``-p [IP:]HOST_PORT`` says (127.0.0.1:8393 by default,
Cog's ``serve`` port) and forwards the API's paths to it. The page, its script and style sheet are package data
in ``static/`` (no build step, nothing fetched at run time).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ocibuild import progress
from ocibuild.errors import UserInputError
from ocibuild.oci.image import Image
from ocibuild.oci.store import Store
from ocibuild.serve.proxy import Proxy

DEFAULT_PORT = 8393
RUNNER_PORT = 5000


@dataclass(frozen=True)
class Listen:
    host: str
    port: int


def parse_listen(text: str | None) -> Listen:
    """``-p HOST_PORT`` or ``-p IP:HOST_PORT`` (``[::1]:PORT`` for IPv6); 127.0.0.1:8393 when not given."""
    if not text:
        return Listen("127.0.0.1", DEFAULT_PORT)
    host, sep, port = text.rpartition(":")
    host = host.strip("[]") if sep else "127.0.0.1"
    if not port.isdigit() or not 0 <= int(port) < 65536 or (sep and not host):
        raise UserInputError(f"-p {text}: expected [IP:]HOST_PORT")
    return Listen(host, int(port))


def open_proxy(listen: Listen, upstream_port: int, *, playground: bool, title: str) -> Proxy:
    try:
        return Proxy(upstream_port, listen.host, listen.port, playground=playground, title=title)
    except OSError as exc:
        raise UserInputError(f"-p {listen.host}:{listen.port}: cannot listen: {exc.strerror or exc}") from None


def serve(
    image: Image,
    store: Store,
    *,
    listen: Listen,
    playground: bool = False,
    title: str = "Cog model",
    env: Sequence[str] = (),
    volumes: Sequence[str] = (),
    gpus: bool = False,
    runtime: str = "auto",
    announce=None,
    weights: Sequence[Any] = (),
) -> int:
    """Run ``image``'s Cog server and serve it on ``listen`` until the container exits or SIGINT/SIGTERM; returns
    the container's exit code. ``announce(url)`` is called once the page and API are reachable."""
    from ocibuild.run.extract import rootfs_for
    from ocibuild.run.gpu import gpu_setup
    from ocibuild.run.network import Publish, Publisher, Readiness
    from ocibuild.run.outbound import Outbound
    from ocibuild.run.runtime import Container, reap_dead_runs, stop_signals, wait_or_stop
    from ocibuild.run.spec import RunOptions, build_spec, parse_volume
    from ocibuild.run.workspace import Workspace

    mounts = [*(parse_volume(v) for v in volumes), *weights]  # managed weights: read-only, marked ready
    gpu = gpu_setup() if gpus else None
    config = image.config.get("config") or {}
    user_env = list(env)
    names = {item.split("=", 1)[0] for item in user_env}
    defaults = [f"{k}={v}" for k, v in (("LOG_FORMAT", "console"),) if k not in names]
    run_env = [*defaults, *user_env, f"PORT={RUNNER_PORT}"]
    reap_dead_runs(store.root / "tmp")
    with Publisher([Publish("127.0.0.1", 0, RUNNER_PORT)]) as publisher:
        proxy = open_proxy(listen, publisher.host_port(), playground=playground, title=title)
        with proxy:
            lower = rootfs_for(image.layers, store)
            with (
                Outbound() as outbound,
                Readiness(publisher.attach, outbound.attach) as ready,
                Workspace(lower, store.root / "tmp") as workspace,
                stop_signals() as received,
            ):
                volumes_all = [*mounts, *outbound.resolv_conf(workspace.dir)]
                options = RunOptions(env=run_env, volumes=volumes_all, network="private", gpu=gpu)
                spec = build_spec(config, workspace.rootfs, options)
                spec["hooks"] = {"createRuntime": [ready.hook()]}
                streams = {"stdin": subprocess.DEVNULL, "stdout": sys.stderr}
                with Container(spec, workspace.dir, runtime=runtime, **streams) as container:
                    (announce or _announce)(proxy.url + ("playground" if playground else ""))
                    return wait_or_stop(container, received, poll_s=0.2)


def _announce(url: str) -> None:
    """The URL on stdout (the command's result); the hint through the reporter (silent with ``-q``)."""
    progress.active().step(f"serving on {url} (Ctrl-C stops)")
    print(url, flush=True)


__all__ = ["DEFAULT_PORT", "Listen", "Proxy", "parse_listen", "serve"]
