"""Load cog.yaml: parse with positions, validate like Cog, and report every problem as one line.

Errors read `cog.yaml:LINE:COL: field.path: message` and raise UserInputError (exit code 2).
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from ocibuild.cog import config_rules
from ocibuild.cog.compat import COG_VERSION
from ocibuild.cog.config_model import (
    Build,
    CogConfig,
    Concurrency,
    RunCommand,
    SecretMount,
    Weight,
    WeightSource,
)
from ocibuild.cog.cuda import CudaChoice, resolve_cuda
from ocibuild.cog.yaml_lines import FieldPath, Marks, Position, YamlSyntaxError, load_with_marks, raw_scalars
from ocibuild.errors import UserInputError

MAX_CONFIG_BYTES = 1024 * 1024  # cog.yaml is a short file; this only stops a runaway read

_VERSION_FIELDS: set[FieldPath] = {
    ("build", "python_version"),
    ("build", "cuda"),
    ("build", "cudnn"),
    ("build", "sdk_version"),
}
# Which model describes the mapping at a data path ("*" stands for any list index).
_SHAPES: dict[tuple[str, ...], type[BaseModel]] = {
    (): CogConfig,
    ("build",): Build,
    ("build", "run", "*"): RunCommand,
    ("build", "run", "*", "mounts", "*"): SecretMount,
    ("concurrency",): Concurrency,
    ("weights", "*"): Weight,
    ("weights", "*", "source"): WeightSource,
    ("weights", "*", "source", "*"): WeightSource,
}
_TYPE_WORDS = {
    "string_type": "must be a string",
    "bool_type": "must be a boolean (true or false)",
    "int_type": "must be an integer",
    "list_type": "must be a list",
    "model_type": "must be a mapping",
    "dict_type": "must be a mapping",
    "missing": "is required",
}


@dataclass(frozen=True)
class LoadedConfig:
    """A validated cog.yaml with its project directory, deprecation warnings and resolved CUDA."""

    config: CogConfig
    project_dir: Path
    path: Path
    warnings: list[str] = field(default_factory=list)
    cuda: CudaChoice | None = None

    @property
    def predictor_ref(self) -> str | None:
        """`run` (or the deprecated `predict`), e.g. "predict.py:Predictor"."""
        return self.config.predictor_ref

    @property
    def train_ref(self) -> str | None:
        """`train`, e.g. "train.py:train"."""
        return self.config.train

    def debian_packages(self) -> list[str]:
        """system_packages for Debian to install, in cog.yaml's order (NVIDIA's apt packages come as wheels)."""
        from_wheels = self.cuda.apt_packages if self.cuda else ()
        return [name for name in self.config.build.system_packages or [] if name not in from_wheels]

    @property
    def requirements_path(self) -> Path | None:
        """The absolute path of `build.python_requirements`, if set."""
        name = self.config.build.python_requirements
        return (self.project_dir / name) if name else None

    @property
    def python_packages(self) -> list[str]:
        """The deprecated inline `build.python_packages` requirement lines."""
        return list(self.config.build.python_packages or [])

    def requirement_lines(self) -> list[str]:
        """The raw requirement lines: the requirements file's, or `python_packages`."""
        path = self.requirements_path
        return path.read_text(encoding="utf-8").splitlines() if path else self.python_packages


def load_config(path: Path) -> LoadedConfig:
    """Read, validate and complete cog.yaml at `path` (UserInputError with a one-line message if invalid)."""
    name = path.name
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_CONFIG_BYTES + 1)
        if len(raw) > MAX_CONFIG_BYTES:
            raise UserInputError(f"{name}:1:1: file is larger than {MAX_CONFIG_BYTES // 1024} KiB; is this cog.yaml?")
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise UserInputError(f"{name}: file not found: {path}") from None
    except (UnicodeDecodeError, OSError) as exc:
        raise UserInputError(f"{name}:1:1: cannot read file: {exc}") from None
    try:
        data, marks = load_with_marks(text)
    except YamlSyntaxError as exc:
        raise UserInputError(f"{name}:{_at(exc.position)}: invalid YAML: {exc.reason}") from None
    if data is None:
        raise UserInputError(f"{name}:1:1: (root): file is empty; expected a mapping with a build section")
    if not isinstance(data, dict):
        raise UserInputError(f"{name}:1:1: (root): must be a mapping, not {_kind(data)}")
    _use_raw_versions(data, text)
    dropped = _drop_unknown(data)
    ignored = [f"{name}:{_at(marks.key(path))}: {_dotted(path)}: {message}" for path, message in dropped]
    config = _validate(data, marks, name, [path for path, _ in dropped])
    project_dir = path.resolve().parent
    problems = config_rules.check(config, project_dir)
    if problems:
        raise UserInputError(_format(name, marks, problems[0].path, problems[0].message, problems[0].at_key))
    warnings = [f"{name}:{_at(marks.key(p))}: {message}" for p, message in config_rules.deprecations(config)]
    warnings = [*ignored, *warnings]
    if config.build.sdk_version:
        where = _at(marks.value(("build", "sdk_version")))
        warnings.append(
            f"{name}:{where}: build.sdk_version {config.build.sdk_version!r} is not installed: the image runs "
            f"ocibuild's bundled runner, which serves the cog {COG_VERSION} API"
        )
    loaded = LoadedConfig(config, project_dir, path, warnings)
    cuda = _resolve_cuda(loaded, marks, name)
    if cuda is not None:
        warnings += [f"{name}:{_at(marks.value(('build', 'gpu')))}: {w}" for w in cuda.warnings]
    return LoadedConfig(config, project_dir, path, warnings, cuda)


def effective_concurrency(loaded: LoadedConfig, decorator_max: int | None) -> int | None:
    """Cog's effective concurrency: `concurrency.max` wins over `@cog.concurrent(max=N)`."""
    concurrency = loaded.config.concurrency
    if concurrency is not None and concurrency.max is not None:
        return concurrency.max
    return decorator_max


def completed_config_json(loaded: LoadedConfig, concurrency_max: int | None = None) -> str:
    """The completed config as Cog serialises it into the `run.cog.config` label (compact JSON).

    `concurrency_max` is the `@cog.concurrent(max=N)` value from the schema; `concurrency.max` overrides it.
    """
    config = loaded.config
    build = config.build
    build_json: dict[str, Any] = {
        "gpu": build.gpu or None,
        "python_version": build.python_version,
        "python_requirements": build.python_requirements,
        "python_packages": build.python_packages,
        "run": [
            (RunCommand(command=r) if isinstance(r, str) else r).model_dump(exclude_defaults=True)
            for r in build.run or []
        ],
        "system_packages": build.system_packages,
        "pre_install": build.pre_install,
        "cuda": loaded.cuda.cuda if loaded.cuda else build.cuda,
        "cudnn": loaded.cuda.cudnn if loaded.cuda else build.cudnn,
        "sdk_version": build.sdk_version,
    }
    effective = effective_concurrency(loaded, concurrency_max)
    document: dict[str, Any] = {
        "build": _omit_empty(build_json),
        "image": config.image,
        "model": config.model,
        "predict": config.predictor_ref,
        "train": config.train,
        "concurrency": {"max": effective} if effective else None,
        "environment": config.environment,
        "weights": [w.model_dump(exclude_defaults=True) for w in config.weights or []],
    }
    return json.dumps(_omit_empty(document), separators=(",", ":"), ensure_ascii=False)


def _omit_empty(values: dict[str, Any]) -> dict[str, Any]:
    """Go's `omitempty`: drop None, False, "" and empty lists/maps (but keep "build")."""
    return {k: v for k, v in values.items() if k == "build" or v not in (None, False, "", [], {})}


def _at(position: Position) -> str:
    return f"{position.line}:{position.column}"


def _dotted(path: FieldPath) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(root)"


def _format(name: str, marks: Marks, path: FieldPath, message: str, at_key: bool = False) -> str:
    position = marks.key(path) if at_key else marks.value(path)
    return f"{name}:{_at(position)}: {_dotted(path)}: {message}"


def _kind(value: object) -> str:
    return {list: "a list", str: "a string", int: "a number", float: "a number", bool: "a boolean"}.get(
        type(value), f"a {type(value).__name__}"
    )


def _use_raw_versions(data: dict[str, Any], text: str) -> None:
    """Keep `python_version: 3.10` as "3.10": Cog accepts numbers there and reads their literal text."""
    build = data.get("build")
    if not isinstance(build, dict):
        return
    for path, raw in raw_scalars(text, _VERSION_FIELDS).items():
        value = build.get(path[1])
        if isinstance(value, int | float) and not isinstance(value, bool):
            build[path[1]] = raw


def _validate(data: dict[str, Any], marks: Marks, name: str, dropped: list[FieldPath]) -> CogConfig:
    try:
        return CogConfig.model_validate(data)
    except ValidationError as exc:
        errors = [(_data_path(data, e["loc"]), e) for e in exc.errors()]
        for path, error in errors:  # a required key that was misspelt: name the misspelling, not "is required"
            near = [p for p in dropped if p[:-1] == path[:-1] and error["type"] == "missing"]
            near = [p for p in near if difflib.get_close_matches(str(p[-1]), [str(path[-1])])]
            if near:
                hint = f"unknown key; did you mean {path[-1]!r}?"
                raise UserInputError(_format(name, marks, near[0], hint, at_key=True)) from None
        path, error = max(errors, key=lambda pe: (len(pe[0]), pe[1]["type"] == "extra_forbidden"))
        if error["type"] == "extra_forbidden":
            raise UserInputError(_format(name, marks, path, _unknown_key(path), at_key=True)) from None
        message = _TYPE_WORDS.get(error["type"], " ".join(str(error["msg"]).split()))
        raise UserInputError(_format(name, marks, path, message, at_key=error["type"] == "missing")) from None
    except RecursionError:
        raise UserInputError(f"{name}:1:1: (root): the document refers to itself") from None


def _data_path(data: Any, loc: tuple[Any, ...]) -> FieldPath:
    """Pydantic's error location without its union-member tags, as a path into the data."""
    path: list[str | int] = []
    current = data
    for index, part in enumerate(loc):
        in_dict = isinstance(current, dict) and part in current
        if in_dict or (isinstance(current, list) and isinstance(part, int) and part < len(current)):
            current = current[part]
            path.append(part)
        elif index == len(loc) - 1 and isinstance(part, str) and isinstance(current, dict):
            path.append(part)
    return tuple(path)


def _drop_unknown(data: dict[str, Any]) -> list[tuple[FieldPath, str]]:
    """Remove keys Cog's typed loader would drop (it ignores unknown keys); each one becomes a warning."""
    dropped: list[tuple[FieldPath, str]] = []
    for shape, model in _SHAPES.items():
        for path, node in _nodes(data, shape):
            if not isinstance(node, dict):
                continue
            for key in [k for k in node if k not in model.model_fields]:
                dropped.append(
                    ((*path, key), _unknown_key((*path, key)).replace("unknown key", "unknown key, ignored"))
                )
                del node[key]
    return sorted(dropped, key=lambda item: [str(part) for part in item[0]])


def _nodes(data: Any, shape: tuple[str, ...], path: FieldPath = ()) -> list[tuple[FieldPath, Any]]:
    """The values at ``shape`` (``*`` stands for every list item) with their paths."""
    if not shape:
        return [(path, data)]
    head, rest = shape[0], shape[1:]
    if head == "*":
        items = list(enumerate(data)) if isinstance(data, list) else []
    else:
        items = [(head, data[head])] if isinstance(data, dict) and head in data else []
    return [found for key, value in items for found in _nodes(value, rest, (*path, key))]


def _unknown_key(path: FieldPath) -> str:
    key = str(path[-1])
    shape = tuple("*" if isinstance(p, int) else p for p in path[:-1])
    model = _SHAPES.get(shape)
    known = list(model.model_fields) if model else []
    close = difflib.get_close_matches(key, known, n=1)
    if close:
        return f"unknown key; did you mean {close[0]!r}?"
    if shape == () and key in Build.model_fields:
        return f"unknown key; did you mean 'build.{key}'?"
    return f"unknown key; expected one of: {', '.join(known)}" if known else "unknown key"


def _resolve_cuda(loaded: LoadedConfig, marks: Marks, name: str) -> CudaChoice | None:
    build = loaded.config.build
    if not build.gpu:
        return None
    try:
        lines = loaded.requirement_lines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserInputError(_format(name, marks, ("build", "python_requirements"), f"cannot read: {exc}")) from None
    try:
        build_run = [item.command for item in build.run_commands()]
        return resolve_cuda(True, build.cuda, build.cudnn, lines, build_run, build.system_packages or ())
    except UserInputError as exc:
        where = ("build", "cudnn") if build.cudnn else ("build", "cuda") if build.cuda else ("build", "gpu")
        raise UserInputError(_format(name, marks, where, str(exc))) from None
