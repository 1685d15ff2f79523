"""Run images without Docker: a safe layer extractor with a rootfs cache, runc (or unshare + chroot),
``ocibuild predict``'s client, and cog.yaml ``build.run`` commands turned into layers.
"""

from __future__ import annotations

from collections.abc import Sequence

from ocibuild.errors import UserInputError
from ocibuild.oci.image import Image
from ocibuild.oci.store import Store
from ocibuild.run.buildrun import parse_secret_arg, run_build_commands
from ocibuild.run.extract import rootfs_for, rootfs_in_use
from ocibuild.run.gpu import gpu_setup
from ocibuild.run.inputs import parse_input_args
from ocibuild.run.network import Publisher, Readiness, parse_publish
from ocibuild.run.outbound import Outbound
from ocibuild.run.predict import PredictionResult, predict
from ocibuild.run.runtime import Container, reap_dead_runs, run_foreground
from ocibuild.run.spec import BindMount, RunOptions, build_spec, parse_volume
from ocibuild.run.workspace import Workspace


def run_image(
    image: Image,
    store: Store,
    *,
    command: Sequence[str] | None = None,
    env: Sequence[str] = (),
    volumes: Sequence[str] = (),
    publish: Sequence[str] = (),
    gpus: bool = False,
    network: str = "private",
    runtime: str = "auto",
    mounts: Sequence[BindMount] = (),
) -> int:
    """Run ``image`` in the foreground like ``docker run`` and return the container's exit code.

    ``command`` replaces Cmd; ``env`` are ``K=V`` (or ``K``); ``volumes`` are ``SRC:DST[:ro]``; ``publish``
    are ``[IP:]HOST:CONTAINER`` ports (on 127.0.0.1 unless IP is given); ``network`` is ``private`` (a
    namespace of its own, outbound through slirp4netns where it works) or ``host``; ``runtime`` is ``auto``
    (runc, else unshare), ``runc`` or ``unshare``; ``mounts`` are extra bind mounts (managed weights).
    """
    mounts = [*mounts, *(parse_volume(v) for v in volumes)]
    ports = [parse_publish(p) for p in publish]
    if ports and network != "private":
        raise UserInputError("-p publishes ports of a private network; with host networking they are host ports")
    gpu = gpu_setup() if gpus else None
    config = image.config.get("config") or {}
    reap_dead_runs(store.root / "tmp")
    with (
        rootfs_in_use(image.layers, store) as lower,  # prune leaves it alone meanwhile
        Publisher(ports) as publisher,
        Outbound(enabled=network == "private") as outbound,
        Readiness(publisher.attach, outbound.attach) as ready,
        Workspace(lower, store.root / "tmp") as workspace,
    ):
        options = RunOptions(command, env, [*mounts, *outbound.resolv_conf(workspace.dir)], network, gpu)
        spec = build_spec(config, workspace.rootfs, options)
        if network == "private":
            spec["hooks"] = {"createRuntime": [ready.hook()]}
        return run_foreground(Container(spec, workspace.dir, runtime=runtime))


__all__ = [
    "PredictionResult",
    "parse_input_args",
    "parse_secret_arg",
    "predict",
    "rootfs_for",
    "run_build_commands",
    "run_image",
]
