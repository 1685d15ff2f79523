"""Build a Cog project into an OCI image: plan the layers, materialise them (cached, in parallel), assemble.

Layers, lowest first: Debian base + Python, system_packages, Python distributions (one per large wheel), the
bundled runner, build.run commands, the code at /src, weights. Everything a build fetches is pinned in
``ocibuild.lock`` (created on the first build, refreshed with ``ocibuild lock`` or ``--update-lock``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ocibuild.cog.config import LoadedConfig, load_config
from ocibuild.cog.contract import SCHEMA_FILE, Contract, image_contract
from ocibuild.cog.lockfile import LOCK_NAME, ProjectLock, read_project_lock, write_project_lock
from ocibuild.cog.schema import generate_schema, openapi_json
from ocibuild.errors import UserInputError
from ocibuild.oci import Compression, ImageConfig, ImageFormat, Platform, Store
from ocibuild.oci.image import History, Image, Index, build_image, build_index
from ocibuild.oci.layer import LayerBlob
from ocibuild.oci.parallel import LayerJob, run_layer_jobs
from ocibuild.progress import NullReporter, Reporter
from ocibuild.run import run_build_commands
from ocibuild.sde import resolve_source_date_epoch
from ocibuild.sources import debian
from ocibuild.sources.project.code import code_layer
from ocibuild.sources.project.managed_weights import managed_weights_artifacts
from ocibuild.sources.project.weights import FIND_THRESHOLD as WEIGHTS_THRESHOLD
from ocibuild.sources.project.weights import (
    WeightsLock,
    WeightSource,
    WeightSpec,
    find_weights,
    project_weight_files,
    resolve_weight_specs,
    weights_layers,
)
from ocibuild.sources.python import (
    PythonTarget,
    Requirements,
    check_lock,
    lock_python,
    pip_freeze,
    python_layers,
    read_requirements,
)
from ocibuild.sources.runner import runner_layer, runner_version

OUTPUT_DIRNAME = ".ocibuild"
WEIGHTS_FILE = ".cog/weights.json"


@dataclass
class BuildOptions:
    """Everything a build needs besides the project itself."""

    store: Store
    source_date_epoch: int | None = None
    platforms: Sequence[Platform] = (Platform("linux", "amd64"),)
    format: ImageFormat = ImageFormat.OCI
    compression: Compression = Compression.GZIP
    weights_threshold: int = WEIGHTS_THRESHOLD
    update_lock: bool = False
    offline: bool = False
    find_links: Sequence[str] = ()
    ca_certs: Sequence[Path] = ()
    secrets: dict[str, Path] = field(default_factory=dict)
    exclude_paths: Sequence[str] = ()
    """Project paths left out of /src besides the defaults (e.g. an output written inside the project)."""
    reporter: Reporter = field(default_factory=NullReporter)


@dataclass(frozen=True)
class BuildResult:
    """The built image (or index, for several platforms) and the inputs it came from."""

    target: Image | Index
    loaded: LoadedConfig
    source_date_epoch: int

    @property
    def digest(self) -> str:
        return self.target.digest


def find_cog_yaml(path: Path) -> Path:
    """``path`` itself when it is a file, else ``path/cog.yaml``; one-line errors otherwise."""
    path = Path(path)
    if path.is_dir():
        path = path / "cog.yaml"
    if not path.exists():
        raise UserInputError(f"{path}: no such file (expected a cog.yaml or a directory holding one)")
    if not path.is_file():
        raise UserInputError(f"{path}: not a regular file")
    return path


def build_project(cog_yaml: Path, options: BuildOptions) -> BuildResult:
    """Build the project of ``cog_yaml`` for every platform in ``options``."""
    loaded = load_config(find_cog_yaml(cog_yaml))
    for warning in loaded.warnings:
        options.reporter.warn(warning)
    options.store.offline = options.offline
    sde = resolve_source_date_epoch(options.source_date_epoch, loaded.project_dir)
    lock = read_project_lock(loaded.project_dir)
    fresh_lock = lock is None or options.update_lock
    if lock is None and options.offline:
        raise UserInputError(f"{LOCK_NAME}: missing; --offline builds need a lock (run 'ocibuild lock' online)")
    lock = lock or ProjectLock()
    managed = _managed_weights(loaded, options, lock, fresh_lock)
    images = [
        _build_for_platform(loaded, platform, sde, options, lock, fresh_lock, managed) for platform in options.platforms
    ]
    write_project_lock(loaded.project_dir, lock)
    target: Image | Index
    if managed is not None:
        target = build_index(images, artifacts=managed.descriptors, artifact_blobs=managed.blobs, fmt=options.format)
    else:
        target = images[0] if len(images) == 1 else build_index(images, fmt=options.format)
    return BuildResult(target, loaded, sde)


@dataclass(frozen=True)
class ManagedWeights:
    """Cog's managed weights: artifact manifests beside the image, ``/src/.cog/weights.json`` inside it."""

    descriptors: list
    blobs: list
    weights_json: bytes
    project_paths: list[str]


def _managed_weights(
    loaded: LoadedConfig, options: BuildOptions, lock: ProjectLock, fresh: bool
) -> ManagedWeights | None:
    config = loaded.config
    if not config.weights:
        return None
    specs = [
        WeightSpec(
            w.name, w.target, tuple(WeightSource(s.uri, tuple(s.include), tuple(s.exclude)) for s in w.sources())
        )
        for w in config.weights
    ]
    pinned = None if fresh or lock.weights is None else WeightsLock.from_dict(lock.weights)
    if pinned is None and options.offline:
        raise UserInputError(f"{LOCK_NAME}: no lock for weights; run 'ocibuild lock' online")
    sets, weights_lock = resolve_weight_specs(specs, loaded.project_dir, options.store, pinned)
    lock.weights = weights_lock.to_dict()
    descriptors, blobs, weights_json = managed_weights_artifacts(sets, options.store)
    paths = [path for weight_set in sets for path in weight_set.project_paths]
    return ManagedWeights(descriptors, blobs, weights_json, paths)


def lock_project(cog_yaml: Path, options: BuildOptions) -> Path:
    """Resolve every input again and rewrite ``ocibuild.lock`` (the ``ocibuild lock`` command)."""
    loaded = load_config(find_cog_yaml(cog_yaml))
    previous = read_project_lock(loaded.project_dir)
    lock = ProjectLock(python=previous.python) if previous else ProjectLock()  # keeps remembered --find-links
    _managed_weights(loaded, options, lock, fresh=True)
    for platform in options.platforms:
        base_lock = _base_lock(loaded, platform, options, refresh=True)
        _python_section(loaded, base_lock, platform, options, lock, fresh=True)
        _system_layer(base_lock, list(loaded.config.build.system_packages or []), 0, options, lock, fresh=True)
    return write_project_lock(loaded.project_dir, lock)


def _base_lock(loaded: LoadedConfig, platform: Platform, options: BuildOptions, refresh: bool) -> debian.BaseLock:
    defn = debian.load_base_definition(str(loaded.config.build.python_version))
    if refresh and not options.offline:
        base_lock = debian.lock_base(defn, options.store, str(platform))
        debian.write_lock(base_lock, defn.lock_path)
        return base_lock
    return debian.load_lock(defn, str(platform))


def python_target(base_lock: debian.BaseLock, platform: Platform) -> PythonTarget:
    """The Python environment of a base: its interpreter version, glibc (from libc6) and paths."""
    libc = next((p.version for p in base_lock.packages if p.name == "libc6"), "2.36")
    glibc = re.match(r"\d+\.\d+", libc.split(":")[-1])
    site_packages = "/" + debian.load_base_definition(base_lock.python).site_packages
    return PythonTarget(
        base_lock.python,
        str(platform),
        glibc.group(0) if glibc else "2.36",
        site_packages,
        f"/usr/bin/python{base_lock.python}",
    )


def _requirements(loaded: LoadedConfig) -> Requirements:
    build = loaded.config.build
    return read_requirements(loaded.project_dir, build.python_requirements, build.python_packages or None)


def _torch_suffix(loaded: LoadedConfig) -> str | None:
    """Which PyTorch index builds torch: CPU images use the small ``+cpu`` builds. GPU images take PyPI's Linux
    wheels (CUDA builds with their nvidia-* wheels) unless cog.yaml pins ``cuda:``, which selects that CUDA's
    PyTorch index, as Cog does."""
    if loaded.cuda is None:
        return "cpu"
    return loaded.cuda.torch_index_suffix if loaded.config.build.cuda else None


def _python_section(
    loaded: LoadedConfig,
    base_lock: debian.BaseLock,
    platform: Platform,
    options: BuildOptions,
    lock: ProjectLock,
    fresh: bool,
) -> tuple[PythonTarget, dict, Requirements]:
    target = python_target(base_lock, platform)
    reqs = _requirements(loaded)
    sections = dict(lock.python or {})
    section = sections.get(str(platform))
    # --find-links given once is remembered in the lock, so later builds (and predict/run) need not repeat it
    find_links = list(options.find_links) or list((section or {}).get("find_links", []))
    kwargs = {"find_links": find_links, "torch_index_suffix": _torch_suffix(loaded)}
    if fresh or section is None:
        if options.offline:
            raise UserInputError(f"{LOCK_NAME}: no Python lock for {platform}; run 'ocibuild lock' online")
        section = lock_python(reqs, target, **kwargs)
    else:
        check_lock(section, reqs, target, **kwargs)
    sections[str(platform)] = section
    lock.python = sections
    return target, section, reqs


def _build_for_platform(
    loaded: LoadedConfig,
    platform: Platform,
    sde: int,
    options: BuildOptions,
    lock: ProjectLock,
    fresh: bool,
    managed: ManagedWeights | None,
) -> Image:
    reporter = options.reporter
    store, compression = options.store, options.compression
    base_lock = _base_lock(loaded, platform, options, refresh=False)
    target, python_section, reqs = _python_section(loaded, base_lock, platform, options, lock, fresh)
    for warning in reqs.warnings:
        reporter.warn(warning)
    schema = generate_schema(loaded.project_dir, loaded.predictor_ref, loaded.train_ref)
    freeze = "\n".join(sorted([pip_freeze(python_section), f"cog=={runner_version()}"], key=str.lower)).strip()
    contract = image_contract(loaded, schema, pip_freeze=freeze, python_path=target.interpreter)
    excluded = managed.project_paths if managed is not None else []
    skipped = [*excluded, *options.exclude_paths]
    weights = [
        w
        for w in find_weights(loaded.project_dir, options.weights_threshold)
        if not any(w == s or w.startswith(s.rstrip("/") + "/") for s in skipped)
    ]
    weight_files = project_weight_files(loaded.project_dir, weights)
    extra_files = {SCHEMA_FILE: openapi_json(schema.openapi).encode()}
    if managed is not None:
        extra_files[WEIGHTS_FILE] = managed.weights_json
    packages = list(loaded.config.build.system_packages or [])

    def system() -> list[tuple[str, LayerBlob]]:
        layer = _system_layer(base_lock, packages, sde, options, lock, fresh)
        return [("system-packages", layer)] if layer is not None else []

    lower_jobs = [
        LayerJob(
            "base",
            f"ocibuild: Debian base {base_lock.name}",
            lambda: [
                ("base", layer) for layer in debian.base_layers(base_lock, store, sde, options.ca_certs, compression)
            ],
        ),
        LayerJob("system-packages", f"apt-get install {' '.join(packages)}", system),
        LayerJob(
            "python",
            "pip install -r requirements.txt",
            lambda: python_layers(
                python_section, target, store, sde, project_dir=loaded.project_dir, compression=compression
            ),
        ),
        LayerJob(
            "runner",
            "ocibuild: bundled Cog runner",
            lambda: [("runner", runner_layer(target.site_packages, store, compression, sde))],
        ),
    ]
    upper_jobs = [
        LayerJob(
            "code",
            "COPY . /src",
            lambda: [("code", _code_layer(loaded, extra_files, [*weights, *excluded], sde, options))],
        ),
        LayerJob("weights", "COPY weights", lambda: weights_layers(weight_files, store)),
    ]
    reporter.step(
        f"{platform}: materialising layers ({base_lock.name}, {len(python_section.get('distributions', []))}"
        f" Python distributions, {len(weights)} weight files)"
    )
    results = run_layer_jobs([*lower_jobs, *upper_jobs])
    lower = [r for r in results if r[0] in lower_jobs]
    upper = [r for r in results if r[0] in upper_jobs]
    commands = loaded.config.build.run_commands()
    run_results = []
    if commands:
        reporter.step(f"{platform}: running {len(commands)} build.run command(s)")
        run_layers = run_build_commands(
            [layer for _, _, layer in lower], commands, options.secrets, store, sde, compression, env=contract.env
        )
        run_results = [
            (f"RUN {command.command}", f"run-{i}", layer)
            for i, (command, layer) in enumerate(zip(commands, run_layers, strict=True))
        ]
    ordered = [*_described(lower), *run_results, *_described(upper)]
    history = [History(created_by=created_by, comment=name) for created_by, name, _ in ordered]
    image = build_image(
        [layer for _, _, layer in ordered],
        _image_config(platform, contract),
        history=history,
        annotations=contract.annotations,
        source_date_epoch=sde,
        fmt=options.format,
    )
    reporter.step(f"{platform}: image {image.digest} ({len(ordered)} layers)")
    return image


def _described(results: list[tuple[LayerJob, str, LayerBlob]]) -> list[tuple[str, str, LayerBlob]]:
    """(history text, layer name, layer): each Python layer names its distributions."""
    return [
        (f"pip install {name}" if job.name == "python" else job.created_by, name, layer) for job, name, layer in results
    ]


def _system_layer(
    base_lock: debian.BaseLock, packages: list[str], sde: int, options: BuildOptions, lock: ProjectLock, fresh: bool
) -> LayerBlob | None:
    """The system_packages layer; the lock's ``debian`` section holds one pinned resolution per platform."""
    if not packages:
        lock.debian = None
        return None
    sections = dict(lock.debian or {})
    previous = None if fresh else sections.get(base_lock.platform)
    if options.offline and previous is None:
        raise UserInputError(f"{LOCK_NAME}: no lock for system_packages on {base_lock.platform}; run 'ocibuild lock'")
    layer, section = debian.system_packages_layer(
        base_lock, packages, options.store, sde, lock_section=previous, compression=options.compression
    )
    sections[base_lock.platform] = section
    lock.debian = sections
    return layer


def _image_config(platform: Platform, contract: Contract) -> ImageConfig:
    return ImageConfig(
        platform=platform,
        env=contract.env,
        entrypoint=contract.entrypoint,
        cmd=contract.cmd,
        working_dir=contract.working_dir,
        exposed_ports=sorted(contract.exposed_ports),
        labels=contract.labels,
        stop_signal="SIGTERM",
    )


def _code_layer(
    loaded: LoadedConfig, extra_files: dict[str, bytes], weights: list[str], sde: int, options: BuildOptions
) -> LayerBlob:
    """The project at /src without its weights, plus generated files (the OpenAPI schema, weights.json)."""
    return code_layer(
        loaded.project_dir,
        options.store,
        sde,
        exclude_paths=[OUTPUT_DIRNAME, LOCK_NAME, *options.exclude_paths, *weights],
        extra_files=extra_files,
        compression=options.compression,
    )
