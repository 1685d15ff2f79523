"""Build a Cog project into an OCI image: plan the layers, materialise them (cached, in parallel), assemble."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ocibuild.cog.config import LoadedConfig, load_config
from ocibuild.cog.contract import SCHEMA_FILE, image_contract
from ocibuild.cog.schema import SchemaResult, generate_schema, openapi_json
from ocibuild.errors import UserInputError
from ocibuild.oci import Compression, ImageConfig, ImageFormat, Platform, Store
from ocibuild.oci.image import History, Image, Index, build_image, build_index
from ocibuild.oci.layer import LayerBlob
from ocibuild.oci.parallel import LayerJob, run_layer_jobs
from ocibuild.progress import NullReporter, Reporter
from ocibuild.sde import resolve_source_date_epoch
from ocibuild.sources.code import code_layer
from ocibuild.sources.runner import runner_layer
from ocibuild.sources.weights import FIND_THRESHOLD as WEIGHTS_THRESHOLD
from ocibuild.sources.weights import find_weights, project_weight_files, weights_layers

OUTPUT_DIRNAME = ".ocibuild"


@dataclass
class BuildOptions:
    """Everything a build needs besides the project itself."""

    store: Store
    source_date_epoch: int | None = None
    platforms: Sequence[Platform] = (Platform("linux", "amd64"),)
    format: ImageFormat = ImageFormat.OCI
    compression: Compression = Compression.GZIP
    weights_threshold: int = WEIGHTS_THRESHOLD
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
    sde = resolve_source_date_epoch(options.source_date_epoch, loaded.project_dir)
    images = [_build_for_platform(loaded, platform, sde, options) for platform in options.platforms]
    target: Image | Index = images[0] if len(images) == 1 else build_index(images, fmt=options.format)
    return BuildResult(target, loaded, sde)


def _build_for_platform(loaded: LoadedConfig, platform: Platform, sde: int, options: BuildOptions) -> Image:
    schema = generate_schema(loaded.project_dir, loaded.predictor_ref, loaded.train_ref)
    python_minor = ".".join(str(loaded.config.build.python_version).split(".")[:2])
    site_packages = f"/usr/local/lib/python{python_minor}/dist-packages"
    contract = image_contract(loaded, schema, pip_freeze="", python_path="/usr/bin/python3")
    weights = find_weights(loaded.project_dir, options.weights_threshold)
    weight_files = project_weight_files(loaded.project_dir, weights)
    jobs = [
        LayerJob(
            "runner",
            "ocibuild: bundled Cog runner",
            lambda: [("runner", runner_layer(site_packages, options.store, options.compression, sde))],
        ),
        LayerJob("code", "COPY . /src", lambda: [("code", _code_layer(loaded, schema, weights, sde, options))]),
        LayerJob("weights", "COPY weights", lambda: weights_layers(weight_files, options.store)),
    ]
    options.reporter.step(f"{platform}: materialising {len(jobs)} layer groups")
    results = run_layer_jobs(jobs)
    layers = [layer for _, _, layer in results]
    history = [History(created_by=job.created_by, comment=name) for job, name, _ in results]
    config = ImageConfig(
        platform=platform,
        env=contract.env,
        entrypoint=contract.entrypoint,
        cmd=contract.cmd,
        working_dir=contract.working_dir,
        exposed_ports=sorted(contract.exposed_ports),
        labels=contract.labels,
    )
    image = build_image(
        layers,
        config,
        history=history,
        annotations=contract.annotations,
        source_date_epoch=sde,
        fmt=options.format,
    )
    options.reporter.step(f"{platform}: image {image.digest}")
    return image


def _code_layer(
    loaded: LoadedConfig, schema: SchemaResult, weights: list[str], sde: int, options: BuildOptions
) -> LayerBlob:
    """The project at /src (without its weights) plus the OpenAPI schema at /src/.cog/openapi_schema.json."""
    return code_layer(
        loaded.project_dir,
        options.store,
        sde,
        exclude_paths=[OUTPUT_DIRNAME, *weights],
        extra_files={SCHEMA_FILE: openapi_json(schema.openapi).encode()},
        compression=options.compression,
    )
