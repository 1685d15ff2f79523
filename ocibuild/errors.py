"""Error types shared by every part of ocibuild; the CLI maps them to exit codes."""

from __future__ import annotations


class OcibuildError(Exception):
    """A failure with a one-line, user-facing message (no traceback unless --debug)."""

    exit_code = 1


class UserInputError(OcibuildError):
    """Bad input from the user (config, paths, requirements, arguments): exit code 2."""

    exit_code = 2


class BuildError(OcibuildError):
    """The build could not be completed (network, tools, registry): exit code 1."""

    exit_code = 1
