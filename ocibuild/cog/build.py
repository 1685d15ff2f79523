"""Build a Cog project into an OCI image: resolve -> plan -> materialise -> assemble.

- resolve (``cog.resolve``): the complete ``ocibuild.lock``; the only phase that chooses versions;
- plan (``cog.plan``): a pure value, the ordered layer steps of every platform with their input keys;
- materialise: every distinct layer once, in parallel, from the store when its key is known; the first failure
  stops the build (layers not yet started are cancelled), then build.run commands on top of the pinned layers;
- assemble: config, manifest and index, exact bytes.

Layers, lowest first: Debian base + Python, system_packages, Python distributions (one per large wheel), the
bundled runner, build.run commands, the code at /src, weights.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ocibuild.cog.config import LoadedConfig, load_config
from ocibuild.cog.contract import Contract, image_contract
from ocibuild.cog.cudaimage import with_cuda
from ocibuild.cog.files import OUTPUT_DIRNAME, find_cog_yaml
from ocibuild.cog.lockfile import LOCK_NAME, ProjectLock, read_project_lock, write_project_lock
from ocibuild.cog.plan import PINNED, PINNED_EPOCH, PROJECT, LayerStep, Plan, PlatformPlan
from ocibuild.cog.resolve import PlatformInputs, Resolved, ResolveOptions, has_sdists, resolve_project
from ocibuild.cog.runtime_schema import placeholder_schema, read_inputs_in_image, schema_from_file, schema_from_inputs
from ocibuild.cog.schema import SchemaResult, UnresolvedValue, generate_schema, openapi_json
from ocibuild.cogimage import SCHEMA_FILE, WEIGHTS_FILE
from ocibuild.oci import Compression, ImageConfig, ImageFormat, LayerBlob, LayerRecipe, Platform, Store
from ocibuild.oci.image import History, Image, Index, build_image, build_index
from ocibuild.oci.layer import RemoteLayers
from ocibuild.oci.parallel import run_parallel
from ocibuild.progress import NullReporter, Reporter
from ocibuild.run.buildrun import BuildCommand, as_build_command, run_build_commands
from ocibuild.run.sdistbuild import ImageBuildEnv
from ocibuild.sde import resolve_source_date_epoch
from ocibuild.sources import debian
from ocibuild.sources.debian import read_section
from ocibuild.sources.project.code import code_recipe
from ocibuild.sources.project.managed_weights import managed_weights_artifacts
from ocibuild.sources.project.weights import FIND_THRESHOLD as WEIGHTS_THRESHOLD
from ocibuild.sources.project.weights import find_weights, project_weight_files, weights_layers
from ocibuild.sources.python import pip_freeze, python_recipes
from ocibuild.sources.runner import runner_recipe, runner_version


@dataclass
class BuildOptions:
    """Everything a build needs besides the project itself."""

    store: Store
    source_date_epoch: int | None = None
    platforms: Sequence[Platform] = (Platform("linux", "amd64"),)
    format: ImageFormat = ImageFormat.OCI
    compression: Compression | None = Compression.GZIP
    """None: chosen by the image (``default_compression``) when the project is loaded."""
    max_layer_size: int | None = None
    """Split each large wheel's layer by path into layers of at most this many bytes of files (None: no split)."""
    weights_threshold: int = WEIGHTS_THRESHOLD
    update_lock: bool = False
    offline: bool = False
    locked: bool = False
    """Fail (exit 2) when the lock is missing or would change, as ``cargo --locked`` and ``uv --locked`` do."""
    find_links: Sequence[str] = ()
    ca_certs: Sequence[Path] = ()
    secrets: dict[str, Path] = field(default_factory=dict)
    exclude_paths: Sequence[str] = ()
    """Project paths left out of /src besides the defaults (e.g. an output written inside the project)."""
    reporter: Reporter = field(default_factory=NullReporter)
    layer_cache: RemoteLayers | None = None
    """A cache shared between machines (``--cache-repo``): asked for each layer the store lacks, told of each
    layer made here (``ocibuild.registry.layer_cache``)."""
    openapi_schema: Path | None = None
    """``--openapi-schema FILE``: this document, whatever the predictor's source says."""
    schema_in_image: bool = True
    """Import the predictor in the image when its schema cannot be read statically (False: a placeholder)."""


@dataclass(frozen=True)
class BuildResult:
    """The built image (or index, for several platforms) and the inputs it came from."""

    target: Image | Index
    loaded: LoadedConfig
    source_date_epoch: int
    lock: ProjectLock | None = None
    """The lock the image was built from (the SBOM and provenance read it)."""
    plan: Plan | None = None

    @property
    def digest(self) -> str:
        return self.target.digest


def load_project(cog_yaml: Path, options: BuildOptions) -> LoadedConfig:
    loaded = load_config(find_cog_yaml(cog_yaml))
    for warning in loaded.warnings:
        options.reporter.warn(warning)
    options.store.offline = options.offline
    if options.compression is None:
        options.compression = default_compression(bool(loaded.config.build.gpu), options.format)
    return loaded


def default_compression(gpu: bool, fmt: ImageFormat) -> Compression:
    """zstd:chunked for GPU images, gzip for the others and for Docker schema2 (which has no zstd media type).

    From ``scripts/bench_coldstart.py`` (``podman pull`` into a fresh store, same run): the GPU example pulls in
    0.33-0.41x gzip's time as zstd:chunked (zstd 0.63x), while the torch-CPU example's best encoding only reached
    0.62-0.77x; gzip is also what Docker before 23.0 and containerd before 1.5 read (README, Compression).
    """
    return Compression.ZSTD_CHUNKED if gpu and fmt is ImageFormat.OCI else Compression.GZIP


def resolve(loaded: LoadedConfig, options: BuildOptions, *, refresh: bool = False) -> Resolved:
    """Resolve the project's lock (logging what changes in it) without writing it."""
    resolved = resolve_project(
        loaded,
        read_project_lock(loaded.project_dir),
        ResolveOptions(
            store=options.store,
            platforms=tuple(options.platforms),
            offline=options.offline,
            refresh=refresh or options.update_lock,
            locked=options.locked,
            find_links=tuple(options.find_links),
        ),
    )
    for change in resolved.changes:
        options.reporter.step(f"{LOCK_NAME}: {change}")
    for warning in [*resolved.requirements.warnings, *resolved.notes]:
        options.reporter.warn(warning)
    return resolved


def build_project(cog_yaml: Path, options: BuildOptions) -> BuildResult:
    """Build the project of ``cog_yaml`` for every platform in ``options``."""
    loaded = load_project(cog_yaml, options)
    resolved = resolve(loaded, options)
    plan, managed = make_plan(loaded, resolved, options)
    images = materialise_and_assemble(plan, options)
    write_project_lock(loaded.project_dir, resolved.lock)
    target: Image | Index
    if managed is not None:
        target = build_index(images, artifacts=managed.descriptors, artifact_blobs=managed.blobs, fmt=options.format)
    else:
        target = images[0] if len(images) == 1 else build_index(images, fmt=options.format)
    return BuildResult(target, loaded, plan.source_date_epoch, resolved.lock, plan)


def lock_project(cog_yaml: Path, options: BuildOptions) -> Path:
    """Resolve every input again and rewrite ``ocibuild.lock`` (the ``ocibuild lock`` command)."""
    loaded = load_project(cog_yaml, options)
    resolved = resolve(loaded, options, refresh=True)
    return write_project_lock(loaded.project_dir, resolved.lock)


@dataclass(frozen=True)
class ManagedWeights:
    """Cog's managed weights: artifact manifests beside the image, ``/src/.cog/weights.json`` inside it."""

    descriptors: list
    blobs: list
    weights_json: bytes
    project_paths: list[str]


def _managed_weights(resolved: Resolved, store: Store) -> ManagedWeights | None:
    if resolved.weights is None:
        return None
    descriptors, blobs, weights_json = managed_weights_artifacts(resolved.weights, store)
    paths = [path for weight_set in resolved.weights for path in weight_set.project_paths]
    return ManagedWeights(descriptors, blobs, weights_json, paths)


def make_plan(loaded: LoadedConfig, resolved: Resolved, options: BuildOptions) -> tuple[Plan, ManagedWeights | None]:
    """The plan of every platform's image; the project's files, schema and weights are read once for all."""
    store = options.store
    sde = resolve_source_date_epoch(options.source_date_epoch, loaded.project_dir)
    managed = _managed_weights(resolved, store)
    schema = _schema(loaded, resolved, options, sde)
    skipped = [*(managed.project_paths if managed else []), *options.exclude_paths, *_secrets_inside(loaded, options)]
    weights = [
        w
        for w in find_weights(loaded.project_dir, options.weights_threshold)
        if not any(w == s or w.startswith(s.rstrip("/") + "/") for s in skipped)
    ]
    extra_files = {SCHEMA_FILE: openapi_json(schema.openapi).encode()}
    if loaded.path.name != "cog.yaml":  # an alternate config is the image's /src/cog.yaml, as Cog copies it
        extra_files["cog.yaml"] = loaded.path.read_bytes()
    if managed is not None:
        extra_files[WEIGHTS_FILE] = managed.weights_json
    code = LayerStep(
        "code",
        "COPY . /src",
        PROJECT,
        code_recipe(
            loaded.project_dir,
            store,
            sde,
            exclude_paths=[OUTPUT_DIRNAME, LOCK_NAME, *skipped, *weights],
            extra_files=extra_files,
        ),
    )
    commands = [as_build_command(c) for c in loaded.config.build.run_commands()]
    platforms = [_platform_plan(loaded, inputs, schema, code, commands, options, sde) for inputs in resolved.platforms]
    plan = Plan(
        platforms,
        project_weight_files(loaded.project_dir, weights),
        sde,
        options.compression,
        resolved.changes,
    )
    return plan, managed


def _schema(loaded: LoadedConfig, resolved: Resolved, options: BuildOptions, sde: int) -> SchemaResult:
    """--openapi-schema, else the static schema, else (a computed Input() value) the one read in the image."""
    if options.openapi_schema is not None:
        options.reporter.step(f"schema: from {options.openapi_schema} (--openapi-schema)")
        return schema_from_file(options.openapi_schema, loaded)
    try:
        return generate_schema(loaded.project_dir, loaded.predictor_ref, loaded.train_ref)
    except UnresolvedValue as exc:
        placeholder = placeholder_schema(loaded)
        if not options.schema_in_image:
            options.reporter.warn(f"{exc}: the build reads it by importing the predictor in the image")
            return placeholder
        options.reporter.step(f"schema: {exc}; importing the predictor in the built image to read it")
    inputs = _host_platform(resolved.platforms)
    commands = [as_build_command(c) for c in loaded.config.build.run_commands()]
    probe = LayerStep("code", "", PROJECT)
    platform = _platform_plan(loaded, inputs, placeholder, probe, commands, options, sde)
    layers = _materialise_below_code(platform, options, sde)
    values = read_inputs_in_image(
        loaded, layers, options.store, python=inputs.target.interpreter, env=platform.contract.env
    )
    return schema_from_inputs(loaded, values)


def _host_platform(platforms: Sequence[PlatformInputs]) -> PlatformInputs:
    """The platform this machine runs natively (the first when none is)."""
    return next((p for p in platforms if _native(p)), platforms[0])


def _materialise_below_code(platform: PlatformPlan, options: BuildOptions, sde: int) -> list[LayerBlob]:
    """The layers under /src (pinned ones, then build.run's), built into the store as the build later uses them."""
    store, compression = options.store, options.compression
    toolbox = [platform.toolbox] if platform.toolbox is not None and platform.run else []
    recipes = [step.recipe for step in [*platform.lower, *toolbox] if step.recipe is not None]

    options.reporter.step(f"{platform.platform}: materialising {len(recipes)} layers to import the predictor")
    done = run_parallel({str(i): functools.partial(r.materialise, store, compression) for i, r in enumerate(recipes)})
    layers = [done[str(i)] for i in range(len(recipes))]
    lower, toolbox_layers = layers[: len(layers) - len(toolbox)], layers[len(layers) - len(toolbox) :]
    if not platform.run:
        return lower
    run_layers = run_build_commands(
        [*lower, *toolbox_layers],
        [step.command for step in platform.run],
        options.secrets,
        store,
        sde,
        compression,
        env=[*platform.contract.env, *BUILD_RUN_ENV],
    )
    return [*lower, *run_layers]


def _secrets_inside(loaded: LoadedConfig, options: BuildOptions) -> list[str]:
    """``--secret`` sources that lie inside the project: never copied into any layer."""
    root = loaded.project_dir.resolve()
    return [
        path.resolve().relative_to(root).as_posix()
        for path in options.secrets.values()
        if path.resolve().is_relative_to(root)
    ]


def _platform_plan(
    loaded: LoadedConfig,
    inputs: PlatformInputs,
    schema,
    code: LayerStep,
    commands: list[BuildCommand],
    options: BuildOptions,
    sde: int,
) -> PlatformPlan:
    store, base, target = options.store, inputs.base, inputs.target
    freeze = "\n".join(sorted([pip_freeze(inputs.python), f"cog=={runner_version()}"], key=str.lower)).strip()
    contract = image_contract(
        loaded, schema, pip_freeze=freeze, python_path=target.interpreter, arch=inputs.platform.architecture
    )
    cuda = loaded.cuda.cuda if loaded.cuda else None
    build_run = [c.command for c in loaded.config.build.run_commands()]
    contract = with_cuda(contract, bool(loaded.cuda), cuda, inputs.python, target.site_packages, build_run)
    lower = [
        LayerStep("base", f"ocibuild: Debian base {base.name}", PINNED, recipe)
        for recipe in debian.base_recipes(base, store, PINNED_EPOCH, options.ca_certs)
    ]
    system = debian.system_packages_recipe(base, inputs.system, store, PINNED_EPOCH) if inputs.system else None
    if system is not None:
        packages = " ".join(loaded.debian_packages())
        lower.append(LayerStep("system-packages", f"apt-get install {packages}", PINNED, system))
    toolbox = None
    if inputs.toolbox and (recipe := debian.toolbox_recipe(base, inputs.toolbox, inputs.system, store, PINNED_EPOCH)):
        what = ", ".join(read_section(inputs.toolbox).requested)
        toolbox = LayerStep("build toolbox", f"ocibuild: {what} (build only)", PINNED, recipe)
    build_env = _sdist_env(inputs, [s.recipe for s in lower if s.recipe], toolbox, options)
    if not commands and build_env is None:
        toolbox = None  # sdists for a platform this machine cannot run are built on the host: no toolbox to make
    lower += [
        LayerStep(group.name, group.created_by, PINNED, recipe)
        for group, recipe in python_recipes(
            inputs.python,
            target,
            store,
            PINNED_EPOCH,
            project_dir=loaded.project_dir,
            max_layer_size=options.max_layer_size,
            build_env=build_env,
        )
    ]
    lower.append(
        LayerStep("runner", "ocibuild: bundled Cog runner", PINNED, runner_recipe(target.site_packages, PINNED_EPOCH))
    )
    run = [LayerStep(f"run-{i}", f"RUN {c.command}", PROJECT, command=c) for i, c in enumerate(commands)]
    return PlatformPlan(inputs.platform, lower, run, code, contract, toolbox)


def _sdist_env(
    inputs: PlatformInputs, below: list[LayerRecipe], toolbox: LayerStep | None, options: BuildOptions
) -> ImageBuildEnv | None:
    """Where this platform's sdists are built: the image's base and system_packages with the build toolbox,
    when the lock has sdists and this machine runs the platform natively (else uv builds them on the host)."""
    if not has_sdists(inputs.python) or toolbox is None or toolbox.recipe is None or not _native(inputs):
        return None
    recipes = [*below, toolbox.recipe]
    store, compression = options.store, options.compression

    def layers() -> list[LayerBlob]:
        return [r.cached(store, compression) or r.materialise(store, compression) for r in recipes]

    return ImageBuildEnv(layers, [r.cache_key(compression) for r in recipes], inputs.target.interpreter, store)


def _native(inputs: PlatformInputs) -> bool:
    machine = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(os.uname().machine, "")
    return inputs.platform.architecture == machine


BUILD_RUN_ENV = (
    "PIP_BREAK_SYSTEM_PACKAGES=1",
    "PIP_ROOT_USER_ACTION=ignore",
    "PIP_DISABLE_PIP_VERSION_CHECK=1",
    "PYTHONDONTWRITEBYTECODE=1",
)
"""build.run's pip installs into the image's site-packages, as in Cog's images (Debian marks its Python managed);
no stray bytecode of the toolbox or the standard library lands in a build.run layer."""


def plan_project(cog_yaml: Path, options: BuildOptions) -> Plan:
    """The plan ``build_project`` would carry out (resolving, but writing nothing; ``ocibuild plan``). With
    ``max_layer_size`` it fetches the large wheels into the store: their file lists decide how many parts they make."""
    loaded = load_project(cog_yaml, options)
    options = dataclasses.replace(options, schema_in_image=False)  # a plan builds nothing
    return make_plan(loaded, resolve(loaded, options), options)[0]


def materialise_and_assemble(plan: Plan, options: BuildOptions) -> list[Image]:
    """Every layer of ``plan`` (each distinct one once), then each platform's image."""
    store, compression, reporter = options.store, options.compression, options.reporter
    recipes = {
        step.recipe.cache_key(compression): step.recipe for platform in plan.platforms for step in platform.materialised
    }
    reporter.step(f"materialising {len(recipes)} layers and {len(plan.weights)} weight files")
    names = {step.recipe.cache_key(compression): step.name for p in plan.platforms for step in p.materialised}

    def materialise(key: str, recipe: LayerRecipe) -> LayerBlob:
        cached = recipe.cached(store, compression)
        if cached is not None:
            return cached
        with reporter.task(f"layer {names[key]}") as task:
            return recipe.make(store, compression, on_bytes=task.advance, remote=options.layer_cache)

    jobs = {key: functools.partial(materialise, key, recipe) for key, recipe in recipes.items()}
    jobs["weights"] = functools.partial(weights_layers, plan.weights, store)
    done = run_parallel(jobs)
    images = []
    for platform in plan.platforms:
        layers = [(step, done[step.recipe.cache_key(compression)]) for step in platform.lower if step.recipe]
        if platform.run:
            reporter.step(f"{platform.platform}: running {len(platform.run)} build.run command(s)")
            toolbox = [done[platform.toolbox.recipe.cache_key(compression)]] if platform.toolbox else []
            run_layers = run_build_commands(
                [*(layer for _, layer in layers), *toolbox],
                [step.command for step in platform.run],
                options.secrets,
                store,
                plan.source_date_epoch,
                compression,
                env=[*platform.contract.env, *BUILD_RUN_ENV],
                remote=options.layer_cache,
            )
            layers += list(zip(platform.run, run_layers, strict=True))
        assert platform.code.recipe is not None
        layers.append((platform.code, done[platform.code.recipe.cache_key(compression)]))
        ordered = [(step.created_by, step.name, layer) for step, layer in layers]
        ordered += [("COPY weights", name, layer) for name, layer in done["weights"]]
        image = build_image(
            [layer for _, _, layer in ordered],
            _image_config(platform.platform, platform.contract),
            history=[History(created_by=created_by, comment=name) for created_by, name, _ in ordered],
            annotations=platform.contract.annotations,
            source_date_epoch=plan.source_date_epoch,
            fmt=options.format,
        )
        reporter.step(f"{platform.platform}: image {image.digest} ({len(ordered)} layers)")
        images.append(image)
    return images


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
