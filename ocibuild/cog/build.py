"""Build a Cog project into an OCI image: plan the layers, materialise them (cached, in parallel), assemble."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ocibuild.cog.config import LoadedConfig, load_config
from ocibuild.errors import UserInputError
from ocibuild.oci import Compression, ImageConfig, ImageFormat, Platform, Store
from ocibuild.oci.image import History, Image, Index, build_image, build_index
from ocibuild.oci.layer import LayerBlob
from ocibuild.oci.parallel import LayerJob, run_layer_jobs
from ocibuild.progress import NullReporter, Reporter
from ocibuild.sde import resolve_source_date_epoch

OUTPUT_DIRNAME = ".ocibuild"


@dataclass
class BuildOptions:
    """Everything a build needs besides the project itself."""

    store: Store
    source_date_epoch: int | None = None
    platforms: Sequence[Platform] = (Platform("linux", "amd64"),)
    format: ImageFormat = ImageFormat.OCI
    compression: Compression = Compression.GZIP
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
    jobs = _layer_jobs(loaded, platform, sde, options)
    options.reporter.step(f"{platform}: materialising {len(jobs)} layer groups")
    results = run_layer_jobs(jobs)
    layers = [layer for _, _, layer in results]
    history = [History(created_by=job.created_by, comment=name) for job, name, _ in results]
    config = ImageConfig(platform=platform, working_dir="/src", cmd=["python", "-m", "cog.server.http"])
    image = build_image(layers, config, history=history, source_date_epoch=sde, fmt=options.format)
    options.reporter.step(f"{platform}: image {image.digest}")
    return image


def _layer_jobs(loaded: LoadedConfig, platform: Platform, sde: int, options: BuildOptions) -> list[LayerJob]:
    from ocibuild.oci.entries import entries_from_tree

    project = loaded.project_dir
    skip = {".git", ".cog", OUTPUT_DIRNAME, "__pycache__", ".venv"}

    def code() -> list[tuple[str, LayerBlob]]:
        include = [p for p in sorted(project.iterdir()) if p.name not in skip]
        entries = [e for e in entries_from_tree(project, "src", include=include) if "__pycache__" not in e.path]
        from ocibuild.oci.layer import write_layer

        return [("code", write_layer(entries, options.store, options.compression, sde))]

    return [LayerJob("code", "COPY . /src", code)]
