"""The ``ocibuild serve`` subcommand's arguments and entry point (``cli.py`` only hooks these in)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

HELP = "run a model image and serve its HTTP API (with --playground, a browser page for it) on 127.0.0.1"


def add_parser(sub: Any, *option_adders: Callable[[argparse.ArgumentParser], None]) -> argparse.ArgumentParser:
    serve = sub.add_parser("serve", help=HELP, description=HELP)
    serve.add_argument("image", help="a cog.yaml or its directory (built first), an OCI layout, a tarball or a ref")
    serve.add_argument(
        "--playground", action="store_true", help="serve a form for the model's inputs at / and /playground"
    )
    serve.add_argument(
        "-p", "--publish", metavar="[IP:]HOST_PORT", help="where to listen (default 127.0.0.1:8393; port 0: any)"
    )
    for add in option_adders:
        add(serve)
    return serve


def title_for(image_arg: str) -> str:
    """The page's title: the project's directory name for a cog.yaml/project, else the argument itself."""
    path = Path(image_arg)
    if path.name in ("cog.yaml", "cog.yml"):
        path = path.parent
    if path.exists():
        return path.resolve().name or image_arg
    return image_arg


def run(args: argparse.Namespace, store: Any, resolve_image: Callable[[], Any]) -> int:
    """Check ``-p``, build or fetch the image (``resolve_image``), then serve it until stopped."""
    from ocibuild.serve import parse_listen, serve

    listen = parse_listen(args.publish)
    image, weights = resolve_image()
    return serve(
        image,
        store,
        weights=weights,
        listen=listen,
        playground=args.playground,
        title=title_for(args.image),
        env=args.env,
        volumes=args.volume,
        gpus=args.gpus == "all",
        runtime=args.runtime,
    )
