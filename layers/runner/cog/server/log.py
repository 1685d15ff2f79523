"""The runner's own log lines on stderr: JSON by default, plain text with ``LOG_FORMAT=console``.

``COG_LOG_LEVEL`` (debug, info, warning, error) sets the threshold. Output of user code outside a
prediction (setup, background threads) is echoed here too.
"""

from __future__ import annotations

import datetime
import json
import os
import sys
from typing import Any

LEVELS = {"debug": 10, "info": 20, "warning": 30, "warn": 30, "error": 40}


def _threshold() -> int:
    return LEVELS.get(os.environ.get("COG_LOG_LEVEL", "info").lower(), 20)


def _write(level: str, message: str, **fields: Any) -> None:
    if LEVELS[level] < _threshold():
        return
    now = datetime.datetime.now(datetime.timezone.utc)
    if os.environ.get("LOG_FORMAT") == "console":
        extra = "".join(f" {key}={value}" for key, value in fields.items())
        line = f"{now:%H:%M:%S} {level.upper():7} {message}{extra}\n"
    else:
        record = {"timestamp": now.isoformat(), "level": level.upper(), "message": message, **fields}
        line = json.dumps(record, default=str) + "\n"
    try:
        sys.stderr.write(line)
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def debug(message: str, **fields: Any) -> None:
    _write("debug", message, **fields)


def info(message: str, **fields: Any) -> None:
    _write("info", message, **fields)


def warning(message: str, **fields: Any) -> None:
    _write("warning", message, **fields)


def error(message: str, **fields: Any) -> None:
    _write("error", message, **fields)


def user_output(source: str, text: str) -> None:
    """Output of user code that belongs to no prediction."""
    _write("info", text.rstrip("\n"), source=source)
