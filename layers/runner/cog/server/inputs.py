"""Worker side: turn validated JSON inputs into the Python arguments of ``run()``/``predict()``."""

from __future__ import annotations

import inspect
import io
import os
import pathlib
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cog import fetch
from cog.input import FieldInfo
from cog.types import File, Path, Secret


class InputError(Exception):
    """Inputs the handler cannot accept; ``detail`` has Cog's 422 entries."""

    def __init__(self, detail: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(f"{entry['loc'][-1]}: {entry['msg']}" for entry in detail))
        self.detail = detail


@dataclass(frozen=True)
class Parameter:
    name: str
    annotation: Any
    default: Any
    required: bool


@dataclass(frozen=True)
class Signature:
    """What the runner needs to know about a handler's parameters."""

    parameters: tuple[Parameter, ...]
    accepts_any_keyword: bool

    @classmethod
    def of(cls, fn: Callable[..., Any]) -> Signature:
        try:
            hints = typing.get_type_hints(fn)
        except Exception:
            hints = {}
        parameters = []
        any_keyword = False
        for param in inspect.signature(fn).parameters.values():
            if param.kind is param.VAR_KEYWORD:
                any_keyword = True
                continue
            if param.kind is param.VAR_POSITIONAL:
                continue
            # An omitted input gets its ``Input(default=...)`` value, even ``None`` on an ``int`` (the
            # ``seed: int = Input(default=None)`` idiom), as with coglet. Without any default it is required
            # (unless it accepts None), which matters only when no bundled schema has said so already.
            info = param.default if isinstance(param.default, FieldInfo) else None
            default = info.default if info is not None else param.default
            annotation = hints.get(param.name, param.annotation)
            required = param.default is param.empty or (
                info is not None and not info.default_given and not _accepts_none(annotation)
            )
            parameters.append(Parameter(param.name, annotation, None if required else default, required))
        return cls(tuple(parameters), any_keyword)


def _accepts_none(annotation: Any) -> bool:
    """Optional/``X | None`` annotations, and ``Secret`` (Cog lets an omitted secret be ``None``)."""
    if annotation is Secret or annotation is Any or annotation is inspect.Parameter.empty:
        return True
    return type(None) in typing.get_args(annotation)


def needs_download(raw: dict[str, Any]) -> bool:
    """True when some input value is a URL or data URI that may have to be fetched."""
    stack = list(raw.values())
    while stack:
        value = stack.pop()
        if isinstance(value, str) and fetch.is_remote(value):
            return True
        if isinstance(value, list):
            stack.extend(value)
    return False


def build_arguments(
    signature: Signature, raw: dict[str, Any], download_dir: Callable[[], pathlib.Path]
) -> dict[str, Any]:
    """Keyword arguments for the handler: defaults filled in, files fetched into ``download_dir()``."""
    known = {param.name for param in signature.parameters}
    arguments = {key: value for key, value in raw.items() if key in known or signature.accepts_any_keyword}
    missing = [
        {"loc": ["body", "input", param.name], "msg": "Field required", "type": "value_error.missing"}
        for param in signature.parameters
        if param.required and param.name not in arguments
    ]
    if missing:
        raise InputError(missing)
    fetcher = _Fetcher(download_dir)
    for param in signature.parameters:
        if param.name in arguments:
            arguments[param.name] = _convert(param.annotation, arguments[param.name], fetcher)
        else:
            arguments[param.name] = param.default
    return arguments


class _Fetcher:
    """Downloads file inputs into one (lazily created) directory, giving each its own sub-directory."""

    def __init__(self, directory: Callable[[], pathlib.Path]) -> None:
        self.directory = directory
        self.count = 0

    def path(self, value: str) -> Path:
        if not fetch.is_remote(value):
            return Path(value)
        self.count += 1
        target = self.directory() / str(self.count)
        target.mkdir(parents=True)
        path = Path(target / fetch.filename_for(value))
        fetch.download(value, path)
        return path


_PATH_TYPES = (Path, pathlib.Path, pathlib.PurePath, os.PathLike)


def _convert(annotation: Any, value: Any, fetcher: _Fetcher) -> Any:
    """Coerce one JSON value to the annotated Python type."""
    if value is None:
        return None
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _convert(typing.get_args(annotation)[0], value, fetcher)
    if origin in (typing.Union, types.UnionType):
        members = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        return _convert(members[0], value, fetcher) if len(members) == 1 else value
    if origin in (list, typing.List) and isinstance(value, list):  # noqa: UP006
        (item_type,) = typing.get_args(annotation) or (Any,)
        return [_convert(item_type, item, fetcher) for item in value]
    if not isinstance(annotation, type):
        return value
    if issubclass(annotation, Secret):
        return value if isinstance(value, Secret) else Secret(str(value))
    if isinstance(value, str) and issubclass(annotation, _PATH_TYPES):
        return fetcher.path(value)
    if isinstance(value, str) and issubclass(annotation, (File, io.IOBase)):
        return File.validate(value)
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if annotation is int and isinstance(value, float) and value.is_integer():
        return int(value)
    return value
