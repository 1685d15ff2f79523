"""``python -m cog.server.introspect [--predict REF] [--train REF]``: the ``Input()`` options of each input, read by
importing the model as the runner does, printed as one JSON object on stdout.

ocibuild runs this inside the built image (no network, a time limit) when an input's choices or default are
computed (``choices=list(MODELS)``, a helper's return value, a shared ``Inputs.prompt = Input(...)``) and
cannot be read from the source; ocibuild then makes the OpenAPI document from the source and these values.
Output: ``{"predict": {"input": {"default": ..., "choices": [...], ...}}, "train": {...}}``; whatever the
model prints while it is imported goes to stderr. Exit 1 with a one-line reason when a value is not JSON.
"""

from __future__ import annotations

import argparse
import enum
import inspect
import json
import os
import pathlib
import sys
import traceback
from typing import Any

from cog.input import FieldInfo
from cog.predictor import entry_point, load_ref

_KEYWORDS = ("description", "ge", "le", "min_length", "max_length", "regex", "choices", "deprecated", "accept")


def _jsonable(value: Any, where: str) -> Any:
    def convert(item: Any) -> Any:
        if isinstance(item, enum.Enum):
            return item.value
        if isinstance(item, pathlib.PurePath):
            return str(item)
        if isinstance(item, tuple | set | frozenset):
            return list(item)
        raise TypeError(f"{where}: {item!r} ({type(item).__name__}) is not a JSON value")

    return json.loads(json.dumps(value, default=convert))


def inputs_of(ref: str, methods: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """Each parameter of the entry point of ``ref`` -> its options (``default`` only when one is given)."""
    function = entry_point(load_ref(ref), methods)
    out: dict[str, dict[str, Any]] = {}
    for name, parameter in inspect.signature(function).parameters.items():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        default = parameter.default
        options: dict[str, Any] = {}
        if isinstance(default, FieldInfo):
            options = {key: getattr(default, key) for key in _KEYWORDS if getattr(default, key) is not None}
            if default.default_given:
                options["default"] = default.default
        elif default is not parameter.empty:
            options["default"] = default
        out[name] = {key: _jsonable(value, f"input {name!r}: {key}") for key, value in options.items()}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cog.server.introspect")
    parser.add_argument("--predict", help="predict.py:Predictor")
    parser.add_argument("--train", help="train.py:train")
    args = parser.parse_args(argv)
    result_fd = os.dup(1)
    os.dup2(2, 1)  # the model's prints must not mix with the JSON
    sys.stdout = sys.stderr
    try:
        result = {}
        if args.predict:
            result["predict"] = inputs_of(args.predict, ("run", "predict"))
        if args.train:
            result["train"] = inputs_of(args.train, ("train",))
    except Exception as exc:
        traceback.print_exc()
        print(f"introspect: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    with os.fdopen(result_fd, "w") as out:
        json.dump(result, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
