"""Cog's semantic rules for cog.yaml (pkg/config/validate.go, env.go, weights) and its deprecation warnings."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ocibuild.cog.config_model import CogConfig
from ocibuild.cog.yaml_lines import FieldPath

MIN_PYTHON = (3, 10)
MIN_PYTHON_CONCURRENCY = (3, 11)
MIN_CUDA_MAJOR = 11
MIN_SDK = (0, 16, 0)
_PEP440 = re.compile(r"^v?(\d+(?:\.\d+)*)((a|b|rc)\d+)?(\.post\d+)?(\.dev\d+)?$")
ENV_ENTRY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=.*$", re.DOTALL)
ENV_DENIED = frozenset(
    {
        "PATH",
        "LD_LIBRARY_PATH",
        "PYTHONPATH",
        "VIRTUAL_ENV",
        "PYTHONUNBUFFERED",
        "LIBRARY_PATH",
        "HF_ENDPOINT",
        "HF_HUB_ENABLE_HF_TRANSFER",
    }
)
ENV_DENIED_PREFIXES = ("R8_", "REPLICATE_", "CUDA_", "NVIDIA_", "NV_", "PGET_", "KUBERNETES_")
WEIGHT_NAME = re.compile(r"^[a-z0-9]+([._-][a-z0-9]+)*$")
WEIGHT_SCHEMES = ("hf://", "file://", "https://")
_VERSION = re.compile(r"^(\d+)\.(\d+)(\.\d+)?$")
_REPO_COMPONENT = re.compile(r"^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*$")
_REGISTRY_HOST = re.compile(r"^[A-Za-z0-9.-]+(:\d+)?$")


@dataclass(frozen=True)
class Problem:
    """A rule broken at `path`; `at_key` points the report at the key rather than the value."""

    path: FieldPath
    message: str
    at_key: bool = False


def check(config: CogConfig, project_dir: Path) -> list[Problem]:
    """Every semantic rule Cog applies to a parsed cog.yaml, in file order of the sections."""
    problems: list[Problem] = []
    problems += _check_build(config, project_dir)
    problems += _check_refs(config)
    problems += _check_ref_files(config, project_dir)
    problems += _check_concurrency(config)
    problems += _check_environment(config.environment or [])
    problems += _check_weights(config)
    return problems


def deprecations(config: CogConfig) -> list[tuple[FieldPath, str]]:
    """Deprecated fields in use: (path of the key, "X is deprecated; use Y")."""
    found: list[tuple[FieldPath, str]] = []
    if config.predict is not None:
        found.append((("predict",), "predict is deprecated; use run"))
    if config.build.python_packages is not None:
        found.append(
            (("build", "python_packages"), "build.python_packages is deprecated; use build.python_requirements")
        )
    if config.build.pre_install is not None:
        found.append((("build", "pre_install"), "build.pre_install is deprecated; use build.run"))
    if config.concurrency is not None and config.concurrency.max is not None:
        found.append((("concurrency", "max"), "concurrency.max is deprecated; use @cog.concurrent(max=N) on run()"))
    return found


def version_tuple(text: str) -> tuple[int, int] | None:
    """(major, minor) of `major.minor[.patch]`, or None when the text has another shape."""
    match = _VERSION.match(text.strip())
    return (int(match.group(1)), int(match.group(2))) if match else None


def _check_build(config: CogConfig, project_dir: Path) -> list[Problem]:
    build = config.build
    problems: list[Problem] = []
    python = version_tuple(build.python_version)
    if python is None:
        problems.append(Problem(("build", "python_version"), "must be major.minor[.patch], e.g. '3.12'"))
    elif python < MIN_PYTHON:
        problems.append(Problem(("build", "python_version"), "minimum supported Python version is 3.10"))
    if build.cuda is not None:
        cuda = version_tuple(build.cuda)
        if cuda is None:
            problems.append(Problem(("build", "cuda"), "must be major.minor[.patch], e.g. '12.8'"))
        elif cuda[0] < MIN_CUDA_MAJOR:
            problems.append(Problem(("build", "cuda"), f"minimum supported CUDA version is {MIN_CUDA_MAJOR}"))
    if build.python_packages is not None and build.python_requirements is not None:
        problems.append(
            Problem(
                ("build", "python_packages"),
                "only one of python_packages or python_requirements can be set, not both",
                at_key=True,
            )
        )
    if build.python_requirements is not None:
        requirements = project_dir / build.python_requirements
        if not requirements.is_file():
            problems.append(
                Problem(("build", "python_requirements"), f"file does not exist: {build.python_requirements}")
            )
    for index, item in enumerate(build.run or []):
        command = item if isinstance(item, str) else item.command
        path = ("build", "run", index) if isinstance(item, str) else ("build", "run", index, "command")
        if "\n" in command:
            problems.append(Problem(path, "command must be a single line (no newline)"))
    if build.sdk_version is not None and build.sdk_version != "prerelease":
        problems += _check_sdk_version(build.sdk_version)
    return problems


def _check_ref_files(config: CogConfig, project_dir: Path) -> list[Problem]:
    """A predictor or trainer file must be inside the project (the image gets only the project): no absolute
    path, and nothing that leaves it through `..` or a symlink."""
    problems: list[Problem] = []
    root = project_dir.resolve()
    for key in ("run", "predict", "train"):
        ref = getattr(config, key)
        parts = ref.split(".py:") if ref is not None else []
        if len(parts) != 2 or not all(parts):
            continue
        file = parts[0] + ".py"
        if PurePosixPath(file).is_absolute() or Path(file).is_absolute():
            problems.append(Problem((key,), f"{file} is an absolute path; give the file relative to the project"))
        elif not (root / file).resolve().is_relative_to(root):
            problems.append(Problem((key,), f"{file} is outside the project directory {root}"))
    return problems


def _check_sdk_version(text: str) -> list[Problem]:
    path = ("build", "sdk_version")
    match = _PEP440.match(text.strip())
    if match is None:
        return [Problem(path, "must be a PEP 440 version or 'prerelease'")]
    release = tuple(int(part) for part in match.group(1).split("."))
    if release < MIN_SDK:
        return [Problem(path, "minimum supported cog SDK version is 0.16.0")]
    return []


def _check_refs(config: CogConfig) -> list[Problem]:
    problems: list[Problem] = []
    if config.run is not None and config.predict is not None:
        problems.append(Problem(("predict",), "run and predict are mutually exclusive; use run", at_key=True))
    for key, example in (("run", "run.py:Runner"), ("predict", "predict.py:Predictor"), ("train", "train.py:Trainer")):
        ref = getattr(config, key)
        if ref is not None and (len(ref.split(".py:")) != 2 or not all(ref.split(".py:"))):
            problems.append(Problem((key,), f"must be in the form '{example}'"))
    if config.image is not None and config.model is not None:
        problems.append(Problem(("model",), "image and model are mutually exclusive", at_key=True))
    if config.model is not None:
        problems += _check_model_repo(config.model)
    if config.weights is not None and config.model is None:
        problems.append(Problem(("weights",), "requires model to be set", at_key=True))
    return problems


def _check_model_repo(model: str) -> list[Problem]:
    path = ("model",)
    components = model.split("/")
    if "@" in model or ":" in components[-1]:
        return [Problem(path, "must be a repository without a tag or digest, e.g. 'r8.im/user/model'")]
    host = components[0] if len(components) > 1 and ("." in components[0] or ":" in components[0]) else None
    names = components[1:] if host else components
    if (host and not _REGISTRY_HOST.match(host)) or not all(_REPO_COMPONENT.match(n) for n in names):
        return [Problem(path, f"'{model}' is not a valid repository name")]
    return []


def _check_concurrency(config: CogConfig) -> list[Problem]:
    concurrency = config.concurrency
    if concurrency is None or concurrency.max is None:
        return []
    if concurrency.max < 1:
        return [Problem(("concurrency", "max"), "must be at least 1")]
    python = version_tuple(config.build.python_version)
    if concurrency.max > 1 and python is not None and python < MIN_PYTHON_CONCURRENCY:
        return [Problem(("concurrency", "max"), "concurrency above 1 requires Python 3.11 or newer")]
    return []


def _check_environment(entries: list[str]) -> list[Problem]:
    problems: list[Problem] = []
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        path = ("environment", index)
        if not ENV_ENTRY.match(entry):
            problems.append(Problem(path, f"{entry!r} is not in the NAME=value format"))
            continue
        name = entry.split("=", 1)[0]
        if name in ENV_DENIED or name.startswith(ENV_DENIED_PREFIXES):
            problems.append(Problem(path, f"environment variable {name!r} is reserved and cannot be set"))
        elif name in seen:
            problems.append(Problem(path, f"environment variable {name!r} is already defined"))
        seen.add(name)
    return problems


def _check_weights(config: CogConfig) -> list[Problem]:
    problems: list[Problem] = []
    names: set[str] = set()
    targets: list[tuple[int, PurePosixPath]] = []
    for index, weight in enumerate(config.weights or []):
        base = ("weights", index)
        if not WEIGHT_NAME.match(weight.name):
            problems.append(Problem((*base, "name"), f"must match {WEIGHT_NAME.pattern}"))
        elif weight.name in names:
            problems.append(Problem((*base, "name"), f"duplicate weight name {weight.name!r}"))
        names.add(weight.name)
        problems += _check_target(index, weight.target, targets)
        problems += _check_sources(index, weight)
    return problems


def _check_target(index: int, target: str, seen: list[tuple[int, PurePosixPath]]) -> list[Problem]:
    path = ("weights", index, "target")
    if not target.startswith("/"):
        return [Problem(path, "must be an absolute path")]
    normalised = PurePosixPath(target)
    if normalised == PurePosixPath("/"):
        return [Problem(path, "must not be /")]
    for other_index, other in seen:
        if normalised == other or normalised.is_relative_to(other) or other.is_relative_to(normalised):
            return [Problem(path, f"overlaps weights[{other_index}].target {other}")]
    seen.append((index, normalised))
    return []


def _check_sources(index: int, weight) -> list[Problem]:
    base = ("weights", index, "source")
    if isinstance(weight.source, list) and not weight.source:
        return [Problem(base, "must not be an empty list")]
    problems: list[Problem] = []
    for position, source in enumerate(weight.sources()):
        where = (*base, position) if isinstance(weight.source, list) else base
        scheme = source.uri.split("://", 1)[0] if "://" in source.uri else None
        if not source.uri:
            problems.append(Problem((*where, "uri"), "must not be empty"))
        elif scheme is not None and not source.uri.startswith(WEIGHT_SCHEMES):
            problems.append(Problem((*where, "uri"), f"unsupported scheme {scheme!r}; use hf://, file://, https://"))
        for key in ("include", "exclude"):
            for n, pattern in enumerate(getattr(source, key)):
                if not pattern or pattern.startswith("!") or "\\" in pattern:
                    problems.append(
                        Problem((*where, key, n), "pattern must be non-empty, without a leading '!' or a '\\'")
                    )
    return problems
