"""The ``ocibuild`` command: parse arguments, show progress, map errors to exit codes. The work is in the library.

stdout carries only results (one line per image, ending in its manifest digest); everything else goes to stderr.
Exit codes: 0 success, 1 build failed, 2 bad input or usage.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from ocibuild import __version__
from ocibuild.errors import OcibuildError, UserInputError
from ocibuild.oci import Compression, ImageFormat, Platform, Store
from ocibuild.oci.store import OfflineError, StoreInUseError, default_cache_dir
from ocibuild.progress import MODES, Reporter, active, use
from ocibuild.sizes import parse_size

COMPRESSION_HELP = (
    "layer compression (default: zstd:chunked for gpu: true images, gzip otherwise and with --tarball or "
    "--format docker; gzip for Docker < 23 and containerd < 1.5)"
)
MAX_LAYER_SIZE_HELP = (
    "split each large wheel's layer by path into layers of at most SIZE bytes of files (e.g. 256M; default: no split)"
)


class _HelpFormatter(argparse.HelpFormatter):
    """Help that shows each option's default, when it has a meaningful one and the text does not say it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default in (None, False, [], argparse.SUPPRESS) or "default" in text or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)"


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UserInputError(f"usage: {message}")


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--debug", action="store_true", help="show tracebacks and debug output")
    p.add_argument("-q", "--quiet", action="store_true", help="print only results and errors (--progress quiet)")
    p.add_argument(
        "--progress",
        choices=MODES,
        default="auto",
        help="auto: live bars on a terminal, else plain lines with a periodic 'still working' line",
    )
    p.add_argument("--cache-dir", type=Path, help=f"the store (default $OCIBUILD_CACHE or {default_cache_dir()})")


def make_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ocibuild", description="Build Cog-compatible OCI images without Docker.")
    parser.add_argument("--version", action="version", version=f"ocibuild {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    build = sub.add_parser("build", help="build an image from a cog.yaml (the default command)")
    build.add_argument("path", type=Path, help="a cog.yaml or the directory that holds it")
    build.add_argument(
        "-o", "--output", type=Path, help="OCI layout directory (default .ocibuild/image beside cog.yaml)"
    )
    build.add_argument("--tarball", type=Path, help="also write one tarball that is an OCI layout and a docker-archive")
    build.add_argument("-t", "--tag", action="append", default=[], help="image reference (repeatable)")
    build.add_argument(
        "--source-date-epoch",
        type=int,
        help="time of the project's own layers and the config (default: $SOURCE_DATE_EPOCH, else the last git commit "
        "time, else 0); pinned layers always carry 0",
    )
    build.add_argument(
        "--platform",
        action="append",
        default=[],
        help="target platform(s), e.g. linux/arm64 or linux/amd64,linux/arm64 (several give an image index; "
        "default: linux/amd64)",
    )
    build.add_argument("--format", choices=[f.value for f in ImageFormat], default="oci", help="media types")
    build.add_argument("--compression", choices=[c.value for c in Compression], help=COMPRESSION_HELP)
    build.add_argument("--max-layer-size", default=None, help=MAX_LAYER_SIZE_HELP)
    build.add_argument("--image-refs", type=Path, help="write the result lines to this file too")
    build.add_argument("--digest-file", type=Path, help="write the manifest digest to this file")
    build.add_argument(
        "--push", action="store_true", help="push to every -t reference (default: cog.yaml's image, else its model)"
    )
    build.add_argument("--jobs", type=int, default=4, help="blobs uploaded at once when pushing")
    build.add_argument(
        "--openapi-schema",
        type=Path,
        help="use this OpenAPI document as the image's schema instead of generating one (as cog build's flag)",
    )
    build.add_argument(
        "--verify-reproducible",
        action="store_true",
        help="build twice (the second time in a fresh cache) and fail if any digest differs",
    )
    build.add_argument(
        "--cache-repo",
        default=os.environ.get("OCIBUILD_CACHE_REPO") or None,
        help="REGISTRY/REPO: a layer cache shared by every machine (default $OCIBUILD_CACHE_REPO); layers found "
        "there are not built, layers built here are published after the image",
    )
    build.add_argument(
        "--cache-repo-readonly", action="store_true", help="use --cache-repo but never write to it (untrusted builds)"
    )
    _add_resolve_options(build)
    _add_registry_options(build)
    _add_common(build)
    _attest_commands().add_build_options(build)
    _attest_commands().add_sign_option(build)

    lock = sub.add_parser("lock", help="resolve every input again (base included) and rewrite ocibuild.lock")
    lock.add_argument("path", type=Path, help="a cog.yaml or the directory that holds it")
    lock.add_argument(
        "--platform", action="append", default=[], help="target platform(s), e.g. linux/amd64,linux/arm64 (repeatable)"
    )
    lock.add_argument("--find-links", action="append", default=[], help="extra local wheel folder for uv")
    _add_common(lock)

    plan = sub.add_parser("plan", help="print the layers a build would make: names, input keys, cached digests")
    plan.add_argument("path", type=Path, help="a cog.yaml or the directory that holds it")
    plan.add_argument("--json", action="store_true", help="print the plan as JSON")
    plan.add_argument(
        "--platform", action="append", default=[], help="target platform(s), e.g. linux/amd64,linux/arm64 (repeatable)"
    )
    plan.add_argument("--source-date-epoch", type=int, help="as for build")
    plan.add_argument("--compression", choices=[c.value for c in Compression], help=COMPRESSION_HELP)
    plan.add_argument("--max-layer-size", default=None, help=MAX_LAYER_SIZE_HELP)
    plan.add_argument(
        "--cache-repo",
        default=os.environ.get("OCIBUILD_CACHE_REPO") or None,
        help="also show the digests this layer cache holds for layers the store lacks (as for build)",
    )
    _add_resolve_options(plan)
    _add_common(plan)

    push = sub.add_parser("push", help="push an OCI layout (or dual tarball) to a registry")
    push.add_argument("layout", help="an OCI layout directory or a dual tarball")
    push.add_argument("refs", nargs="+", help="REGISTRY/REPO:TAG (one or more)")
    push.add_argument("--jobs", type=int, default=4, help="blobs uploaded at once")
    push.add_argument("--image-refs", type=Path, help="write the result lines to this file too")
    push.add_argument("--digest-file", type=Path, help="write the manifest digest to this file")
    _attest_commands().add_sign_option(push)
    _add_registry_options(push)
    _add_common(push)

    pull = sub.add_parser("pull", help="pull an image from a registry into an OCI layout (every digest verified)")
    pull.add_argument("ref", help="REGISTRY/REPO:TAG or REGISTRY/REPO@sha256:...")
    pull.add_argument("output", type=Path, help="OCI layout directory to write")
    pull.add_argument("--platform", help="pick one platform of an index, e.g. linux/amd64")
    _add_registry_options(pull)
    _add_common(pull)

    login = sub.add_parser("login", help="check credentials for a registry and keep them in the containers auth file")
    login.add_argument("registry", help="registry host, e.g. ghcr.io or localhost:5000")
    login.add_argument("-u", "--username", help="user name (asked for on a terminal when missing)")
    login.add_argument("--password-stdin", action="store_true", help="read the password or token from stdin")
    _add_registry_options(login)
    _add_common(login)
    logout = sub.add_parser("logout", help="remove the credentials `ocibuild login` stored for a registry")
    logout.add_argument("registry", help="registry host")
    _add_common(logout)

    prune = sub.add_parser("prune", help="free disk space: remove unpacked root filesystems from the store")
    prune.add_argument("--all", action="store_true", help="empty the whole store (every later build starts cold)")
    _add_common(prune)

    schema = sub.add_parser("schema", help="print the OpenAPI schema of the predictor (static, no import)")
    schema.add_argument("path", type=Path, help="a cog.yaml or the directory that holds it")
    _add_common(schema)

    run = sub.add_parser("run", help="run an image (layout, tarball, registry ref or cog.yaml) under runc")
    run.add_argument("image", help="an OCI layout, a dual tarball, a cog.yaml (built first) or REGISTRY/REPO:TAG")
    run.add_argument("cmd", metavar="CMD", nargs=argparse.REMAINDER, help="override the image's Cmd")
    run.add_argument("-p", "--publish", action="append", default=[], help="[IP:]HOST:CONTAINER (IP: 127.0.0.1)")
    _add_run_options(run)
    _add_common(run)

    predict = sub.add_parser("predict", help="run one prediction, like `cog predict`, without Docker")
    predict.add_argument(
        "image",
        nargs="?",
        default=".",
        help="a cog.yaml or its directory (built first; default: the current directory), an OCI layout, a tarball "
        "or a ref",
    )
    predict.add_argument("-i", "--input", action="append", default=[], help="name=value or name=@file (repeatable)")
    predict.add_argument("--json", help="all inputs as one JSON object, or @FILE, or @- for standard input")
    predict.add_argument("-o", "--output", type=Path, help="where to write file outputs")
    predict.add_argument("--setup-timeout", type=float, default=300.0, help="seconds setup() may take")
    _add_run_options(predict)
    _add_common(predict)

    from ocibuild.serve.command import add_parser as add_serve_parser

    add_serve_parser(sub, _add_run_options, _add_common)
    _attest_commands().add_commands(sub, _add_common, _add_registry_options)
    return parser


def _attest_commands():
    """``ocibuild.attest.commands``: SBOM and provenance options and commands (imported when the parser is made)."""
    from ocibuild.attest import commands

    return commands


def _add_resolve_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--update-lock", action="store_true", help="resolve again and rewrite ocibuild.lock")
    p.add_argument(
        "--locked", action="store_true", help="fail (exit 2) when ocibuild.lock is missing or would change (for CI)"
    )
    p.add_argument("--offline", action="store_true", help="use only the lock and the store: no network at all")
    p.add_argument("--find-links", action="append", default=[], help="extra local wheel folder for uv")
    p.add_argument("--ca-cert", action="append", default=[], type=Path, help="add a CA certificate to the image")
    p.add_argument("--secret", action="append", default=[], help="id=NAME,src=FILE for build.run secret mounts")


def _add_registry_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--insecure-registry", action="append", default=[], help="allow plain http to this host")


def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("-e", "--env", action="append", default=[], help="K=V environment variable (repeatable)")
    p.add_argument("-v", "--volume", action="append", default=[], help="SRC:DST[:ro] bind mount (repeatable)")
    p.add_argument("--gpus", choices=["all"], help="give the container the host's NVIDIA GPUs")
    p.add_argument(
        "--runtime",
        choices=["auto", "runc", "unshare"],
        default="auto",
        help="container runtime (auto: runc if usable)",
    )
    _add_registry_options(p)


def _normalise_argv(argv: list[str]) -> list[str]:
    """``ocibuild PATH ...`` means ``ocibuild build PATH ...``."""
    first = next((a for a in argv if not a.startswith("-")), None)
    if first is not None and first not in COMMANDS and not {"-h", "--help", "--version"} & set(argv[:1]):
        return ["build", *argv]
    return argv


def main(argv: Sequence[str] | None = None) -> int:
    args_list = _normalise_argv(list(sys.argv[1:] if argv is None else argv))
    debug = "--debug" in args_list
    try:
        args = make_parser().parse_args(args_list)
        if args.command is None:
            raise UserInputError("usage: ocibuild [build] PATH [options]; see ocibuild --help")
        return _dispatch(args)
    except OcibuildError as exc:
        if debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except (OfflineError, StoreInUseError) as exc:
        if debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `ocibuild schema . | head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:  # an unexpected failure is still one line unless --debug
        if debug:
            raise
        print(f"error: {type(exc).__name__}: {exc} (run with --debug for details)", file=sys.stderr)
        return 1


def _dispatch(args: argparse.Namespace) -> int:
    mode = "quiet" if getattr(args, "quiet", False) else getattr(args, "progress", "auto")
    with use(Reporter(mode=mode)):
        return COMMANDS[args.command](args)


def _registry_progress():
    """Push and pull progress in the mode of the command's reporter."""
    from ocibuild.registry.progress import PlainProgress, Progress, RichProgress

    mode = active().mode
    return Progress() if mode == "quiet" else RichProgress(sys.stderr) if mode == "tty" else PlainProgress(sys.stderr)


def _open_store(args: argparse.Namespace) -> Store:
    root = args.cache_dir or default_cache_dir()
    if root.exists() and not root.is_dir():
        raise UserInputError(f"--cache-dir {root}: exists and is not a directory")
    try:
        return Store(root)
    except OSError as exc:
        raise UserInputError(f"--cache-dir {root}: cannot use it: {exc.strerror}") from None


def _platforms(values: list[str]) -> list[Platform]:
    try:
        names = [p.strip() for value in values or ["linux/amd64"] for p in value.split(",") if p.strip()]
        return [Platform.parse(p) for p in dict.fromkeys(names)]
    except ValueError as exc:
        raise UserInputError(f"--platform: {exc}") from None


def _compression(args: argparse.Namespace) -> Compression | None:
    """``--compression``, else gzip where the output must be read by Docker's own formats, else None (the build
    chooses by image: ``ocibuild.cog.build.default_compression``)."""
    if args.compression:
        return Compression(args.compression)
    if getattr(args, "tarball", None) is not None or getattr(args, "format", "oci") == "docker":
        return Compression.GZIP
    return None


def _max_layer_size(value: str | None) -> int | None:
    try:
        return parse_size(value) if value is not None else None
    except ValueError as exc:
        raise UserInputError(f"--max-layer-size {value}: {exc}") from None


def _build_options(args: argparse.Namespace, store: Store, reporter: Reporter):
    from ocibuild.cog.build import BuildOptions
    from ocibuild.run import parse_secret_arg

    for cert in args.ca_cert:
        if not cert.is_file():
            raise UserInputError(f"--ca-cert {cert}: no such file")
    return BuildOptions(
        store=store,
        source_date_epoch=args.source_date_epoch,
        platforms=_platforms(args.platform),
        format=ImageFormat(getattr(args, "format", "oci")),
        compression=_compression(args),
        max_layer_size=_max_layer_size(args.max_layer_size),
        update_lock=args.update_lock,
        offline=args.offline,
        locked=args.locked,
        find_links=args.find_links,
        ca_certs=args.ca_cert,
        secrets=dict(parse_secret_arg(text) for text in args.secret),
        reporter=reporter,
        openapi_schema=getattr(args, "openapi_schema", None),
    )


def _cmd_build(args: argparse.Namespace) -> int:
    from ocibuild.cog.files import OUTPUT_DIRNAME, default_image_name, find_cog_yaml
    from ocibuild.memo import recall, remember
    from ocibuild.outputs import check_layout_output, write_outputs
    from ocibuild.sde import resolve_source_date_epoch

    reporter = active()
    cog_yaml = find_cog_yaml(args.path)
    output = args.output or cog_yaml.parent / OUTPUT_DIRNAME / "image"
    check_layout_output(output, "--output")
    if args.tarball is not None and args.tarball.is_dir():
        raise UserInputError(f"--tarball {args.tarball}: is a directory")
    for name in ("image_refs", "digest_file"):
        _check_result_file(getattr(args, name), "--" + name.replace("_", "-"))
    if args.tarball is not None and len(_platforms(args.platform)) > 1:
        raise UserInputError("--tarball: a docker-archive holds one image; build one --platform at a time")
    _attest_commands().check_sign_key(args)
    if args.tarball is not None:
        from ocibuild.cog.config import load_config
        from ocibuild.outputs import TARBALL_WEIGHTS

        if load_config(cog_yaml).config.weights:
            raise UserInputError(TARBALL_WEIGHTS)
    store = _open_store(args)
    sde = resolve_source_date_epoch(args.source_date_epoch, cog_yaml.parent)  # once: the memo and the build share it
    memo = _memo_key(args, cog_yaml, output, sde)
    hit = recall(store, memo) if memo is not None else None
    attached = _attest_commands().recall(store, hit[0].digest, args, cog_yaml.parent) if hit is not None else None
    if hit is not None and attached is not None:
        target, sde, name = hit
        reporter.step(f"unchanged since the last build (project, lock, options and ocibuild): {target.digest}")
        lines = write_outputs(target, output, args.tarball, args.tag, reporter, sde, name, attached)
        _emit(lines, target.digest, args)
        return 0

    from ocibuild.cog.build import build_project
    from ocibuild.cog.config import load_config

    if args.push and not args.tag and not _push_target(load_config(cog_yaml).config):
        raise UserInputError("--push: no target; give -t REGISTRY/REPO:TAG or set image: (or model:) in cog.yaml")
    options = _build_options(args, store, reporter)
    options.source_date_epoch = sde
    options.exclude_paths = _inside(cog_yaml.parent, [output, args.tarball])
    cache = _layer_cache(args, store) if args.cache_repo else None
    options.layer_cache = cache
    try:
        result = build_project(cog_yaml, options)
    finally:
        if cache is not None:
            cache.known.save()  # the push mounts what came from the cache instead of uploading it
    if args.verify_reproducible:
        from ocibuild.reproducible import verify_reproducible

        verify_reproducible(cog_yaml, options, result)
    name = default_image_name(cog_yaml, result.loaded.config.image)
    if memo is not None and _memo_key(args, cog_yaml, output, sde) == memo:  # nothing changed while building
        remember(store, memo, result.target, result.source_date_epoch, name)
    target_ref = _push_target(result.loaded.config)
    refs = args.tag or ([target_ref] if args.push and target_ref else [])
    platforms = [str(p) for p in _platforms(args.platform)]
    attached = _attest_commands().build_attestations(result, args, store, platforms)
    lines = write_outputs(result.target, output, args.tarball, refs, reporter, result.source_date_epoch, name, attached)
    if args.push:
        lines = _push(result.target, refs, args, attached)
    if cache is not None:
        _publish(cache, refs if args.push else [])
    _emit(lines, result.digest, args)
    return 0


def _layer_cache(args: argparse.Namespace, store: Store):
    from ocibuild.registry.known import KnownBlobs
    from ocibuild.registry.layer_cache import LayerCache

    try:
        return LayerCache(
            args.cache_repo,
            store,
            readonly=getattr(args, "cache_repo_readonly", True),  # plan only reads
            insecure_registries=getattr(args, "insecure_registry", []),
            known=KnownBlobs(_known_blobs_file(args)),
            warn=active().warn,
            jobs=getattr(args, "jobs", 4),
        )
    except ValueError as exc:
        raise UserInputError(str(exc)) from None


def _publish(cache, pushed: list[str]) -> None:
    """Publish the layers this build made to the cache (after the image is written and pushed; never fails)."""
    if cache.readonly or not cache.pending:
        return
    published = cache.publish_pending(pushed)
    cache.known.save()
    active().step(f"cache {cache.name}: published {published} layer(s)")


def _known_blobs_file(args: argparse.Namespace) -> Path:
    return (args.cache_dir or default_cache_dir()) / "registry" / "known-blobs.json"


def _push_target(config) -> str | None:
    """cog.yaml's ``image:``, else its ``model:``: where ``--push`` goes without ``-t``, as ``cog push``."""
    return config.image or config.model


def _memo_key(args: argparse.Namespace, cog_yaml: Path, output: Path, source_date_epoch: int) -> str | None:
    """The build memo's key, for builds that only read the project (None: always build)."""
    if args.push or args.verify_reproducible or args.update_lock or args.secret or args.ca_cert:
        return None
    from ocibuild.memo import memo_key

    project = cog_yaml.parent
    options = {
        "cog_yaml": cog_yaml.name,
        "platforms": [str(p) for p in _platforms(args.platform)],
        "format": args.format,
        "compression": chosen.value if (chosen := _compression(args)) else "by image",
        "source_date_epoch": source_date_epoch,
        "find_links": list(args.find_links),
    }
    if args.max_layer_size is not None:
        options["max_layer_size"] = _max_layer_size(args.max_layer_size)
    if args.openapi_schema is not None:
        try:
            options["openapi_schema"] = hashlib.sha256(args.openapi_schema.read_bytes()).hexdigest()
        except OSError:
            return None  # the build names the problem
    return memo_key(project, options, _inside(project, [output, args.tarball]))


def _push(target, refs: list[str], args: argparse.Namespace, referrers=()) -> list[str]:
    from ocibuild.registry import push

    lines = push(
        target,
        refs,
        jobs=args.jobs,
        insecure_registries=tuple(args.insecure_registry),
        progress=_registry_progress(),
        known_blobs_file=_known_blobs_file(args),
    )
    if referrers:  # SBOM and provenance, after the image they refer to
        from ocibuild.registry.referrers import push_referrers

        for note in push_referrers(referrers, refs, insecure_registries=tuple(args.insecure_registry)):
            active().step(note)
    if getattr(args, "sign_key", None):
        for signed in _attest_commands().sign_refs(refs, args.sign_key, args.insecure_registry):
            active().step(f"signed {signed}")
    return lines


def _cmd_lock(args: argparse.Namespace) -> int:
    from ocibuild.cog.build import BuildOptions, lock_project

    reporter = active()
    options = BuildOptions(
        store=_open_store(args), platforms=_platforms(args.platform), find_links=args.find_links, reporter=reporter
    )
    path = lock_project(Path(args.path), options)
    reporter.step(f"wrote {path}")
    return 0


def _cmd_plan(args: argparse.Namespace) -> int:
    import json

    from ocibuild.cog.build import plan_project

    store = _open_store(args)
    plan = plan_project(args.path, _build_options(args, store, active()))
    doc = plan.to_json(store)
    if args.cache_repo:
        cache = _layer_cache(args, store)
        for step in (s for platform in doc["platforms"] for s in platform["steps"] + platform["build_only"]):
            if step.get("key") and not step.get("digest"):
                step["cache"] = cache.peek(step["key"])
    if args.json:
        print(json.dumps(doc, indent=2, sort_keys=True))
        return 0
    for platform in doc["platforms"]:
        print(f"{platform['platform']} (source_date_epoch {doc['source_date_epoch']}):")
        for step in platform["steps"]:
            state = step.get("digest") or ("not built" if step.get("key") else "")
            if step.get("cache"):
                state = f"in {args.cache_repo}: {step['cache']}"
            print(f"  {step['name']:<40} {step['stamping']:<8} {state}")
    return 0


def _cmd_push(args: argparse.Namespace) -> int:
    from ocibuild.image_source import load_layout_or_archive

    for name in ("image_refs", "digest_file"):
        _check_result_file(getattr(args, name), "--" + name.replace("_", "-"))
    source = Path(args.layout)
    if source.is_dir() and (source / "cog.yaml").is_file() and not (source / "index.json").is_file():
        raise UserInputError(
            f"{source}: a Cog project, not an image; build and push it with: ocibuild build {source} --push -t REF"
        )
    _attest_commands().check_sign_key(args)
    store = _open_store(args)
    target = load_layout_or_archive(args.layout, store)
    lines = _push(target, args.refs, args, _attest_commands().layout_referrers(args.layout, store))
    _emit(lines, target.digest, args)
    return 0


def _cmd_pull(args: argparse.Namespace) -> int:
    from ocibuild.registry import pull

    target = pull(
        args.ref,
        args.output,
        insecure_registries=tuple(args.insecure_registry),
        platform=args.platform,
        store=_open_store(args),
        progress=_registry_progress(),
    )
    print(f"{args.output}@{target.digest}", flush=True)
    return 0


def _check_result_file(path: Path | None, option: str) -> None:
    """Refuse a result file that cannot be written, before any work is done."""
    if path is not None and (path.is_dir() or not path.parent.is_dir()):
        raise UserInputError(f"{option} {path}: not a writable file path (is its folder missing?)")


def _inside(project: Path, paths: list[Path | None]) -> list[str]:
    """The project-relative forms of ``paths`` that lie inside the project (outputs never go into /src)."""
    root = project.resolve()
    inside = []
    for path in paths:
        if path is not None and path.resolve().is_relative_to(root) and path.resolve() != root:
            inside.append(path.resolve().relative_to(root).as_posix())
    return inside


def _emit(lines: list[str], digest: str, args: argparse.Namespace) -> None:
    from ocibuild.outputs import write_digest_file, write_image_refs

    for line in lines:
        print(line, flush=True)
    if getattr(args, "image_refs", None):
        write_image_refs(args.image_refs, lines)
    if getattr(args, "digest_file", None):
        write_digest_file(args.digest_file, digest)


def _cmd_schema(args: argparse.Namespace) -> int:
    from ocibuild.cog.files import find_cog_yaml
    from ocibuild.cog.schema import schema_command

    print(schema_command(find_cog_yaml(args.path)))
    return 0


def _resolve_image(args: argparse.Namespace, store: Store):
    """The image ``args.image`` names, and a read-only mount of each of its managed weight sets (marked ready)."""
    from ocibuild.cog.build import BuildOptions, build_project
    from ocibuild.image_source import host_architecture, pick_platform_image, resolve_target
    from ocibuild.oci.image import Index
    from ocibuild.registry import pull
    from ocibuild.run.weights import weight_mounts, weight_sets

    reporter = active()

    def build(path: Path):
        host = (Platform("linux", host_architecture()),)
        return build_project(path, BuildOptions(store=store, platforms=host, reporter=reporter)).target

    def fetch(ref: str):
        progress = _registry_progress()
        host = Platform("linux", host_architecture())
        insecure = tuple(args.insecure_registry)
        return pull(ref, None, insecure_registries=insecure, platform=host, store=store, progress=progress)

    target, read_blob = resolve_target(args.image, store, build, fetch)
    sets = weight_sets(target.index_bytes, read_blob) if isinstance(target, Index) else []
    if sets:
        reporter.step(f"managed weights: {', '.join(f'{s.name} at {s.target}' for s in sets)} (mounted, ready)")
    return pick_platform_image(target), weight_mounts(sets, store)


def _cmd_run(args: argparse.Namespace) -> int:
    from ocibuild.run import run_image

    store = _open_store(args)
    image, weights = _resolve_image(args, store)
    command = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    return run_image(
        image,
        store,
        command=command or None,
        env=args.env,
        volumes=args.volume,
        publish=args.publish,
        gpus=args.gpus == "all",
        runtime=args.runtime,
        mounts=weights,
    )


def _cmd_predict(args: argparse.Namespace) -> int:
    from ocibuild.run import predict
    from ocibuild.run.outputs import check_output_path

    check_output_path(args.output)  # before a build or a pull
    store = _open_store(args)
    image, weights = _resolve_image(args, store)
    predict(  # anything but a succeeded prediction is a BuildError (exit 1)
        image,
        store,
        args.input,
        args.json,
        args.output,
        env=args.env,
        gpus=args.gpus == "all",
        setup_timeout=args.setup_timeout,
        volumes=args.volume,
        runtime=args.runtime,
        mounts=weights,
    )
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from ocibuild.serve.command import run as serve

    store = _open_store(args)
    return serve(args, store, lambda: _resolve_image(args, store))


def _cmd_login(args: argparse.Namespace) -> int:
    from ocibuild.registry.login import ask_credentials, login

    credentials = ask_credentials(args.username, args.password_stdin, sys.stdin)
    path = login(args.registry, credentials, args.insecure_registry)
    active().step(f"logged in to {args.registry} (credentials in {path})")
    return 0


def _cmd_logout(args: argparse.Namespace) -> int:
    from ocibuild.registry.login import logout

    path, removed = logout(args.registry)
    active().step(f"{'removed' if removed else 'no'} credentials for {args.registry} in {path}")
    return 0


def _cmd_prune(args: argparse.Namespace) -> int:
    store = _open_store(args)
    freed = store.prune(everything=args.all)
    active().step(f"freed {freed / 1e6:.0f} MB in {store.root}")
    return 0


def _cmd_attestation(args: argparse.Namespace) -> int:
    return _attest_commands().cmd_show(args, _open_store(args))


def _cmd_sign(args: argparse.Namespace) -> int:
    return _attest_commands().cmd_sign(args)


def _cmd_verify(args: argparse.Namespace) -> int:
    return _attest_commands().cmd_verify(args)


COMMANDS = {
    "build": _cmd_build,
    "schema": _cmd_schema,
    "run": _cmd_run,
    "predict": _cmd_predict,
    "serve": _cmd_serve,
    "lock": _cmd_lock,
    "plan": _cmd_plan,
    "push": _cmd_push,
    "pull": _cmd_pull,
    "login": _cmd_login,
    "logout": _cmd_logout,
    "prune": _cmd_prune,
    "sbom": _cmd_attestation,
    "provenance": _cmd_attestation,
    "sign": _cmd_sign,
    "verify": _cmd_verify,
}
"""Every subcommand and the function that carries it out."""

if __name__ == "__main__":
    sys.exit(main())
