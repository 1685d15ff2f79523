"""``ocibuild login`` / ``logout``: check credentials against a registry, then keep them in the containers auth
file (the one podman and skopeo read: ``$REGISTRY_AUTH_FILE``, else ``$XDG_RUNTIME_DIR/containers/auth.json``,
else ``~/.config/containers/auth.json``).

The file is updated in place of one entry: every other entry is kept as it was; it is written to a temp file
(mode 0600) and renamed over. A file that is not a JSON object is refused, never replaced.
"""

from __future__ import annotations

import base64
import contextlib
import getpass
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from ocibuild.errors import UserInputError
from ocibuild.registry.client import RegistryClient
from ocibuild.registry.credentials import Credentials, containers_auth_paths, normalise_registry
from ocibuild.registry.reference import DOCKER_HUB, DOCKER_HUB_API, uses_plain_http


def login(registry: str, credentials: Credentials, insecure_registries: Sequence[str] = ()) -> Path:
    """Check ``credentials`` against ``registry`` (``GET /v2/`` with Basic or token auth), then store them.
    Returns the auth file written."""
    host = _checked_host(registry)
    api_host = DOCKER_HUB_API if host == DOCKER_HUB else host
    client = RegistryClient(
        api_host, plain_http=uses_plain_http(api_host, tuple(insecure_registries)), credentials=credentials
    )
    client.ping()
    path = auth_file()
    config = _read(path)
    auths = config.setdefault("auths", {})
    encoded = base64.b64encode(f"{credentials.username}:{credentials.password}".encode()).decode()
    auths[host] = {"auth": encoded}
    _write(path, config)
    return path


def logout(registry: str) -> tuple[Path, bool]:
    """Remove the stored credentials for ``registry``; returns the auth file and whether it held any."""
    host = _checked_host(registry)
    path = auth_file()
    config = _read(path)
    auths = config.get("auths")
    if not isinstance(auths, dict) or host not in auths:
        return path, False
    del auths[host]
    _write(path, config)
    return path, True


def auth_file() -> Path:
    return containers_auth_paths()[0]


def _checked_host(registry: str) -> str:
    host = normalise_registry(registry)
    if not host or any(c in host for c in " /@"):
        raise UserInputError(f"{registry}: not a registry host (expected HOST[:PORT])")
    return host


def _read(path: Path) -> dict[str, Any]:
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise UserInputError(f"{path}: cannot read the auth file ({exc}); fix or move it") from None
    if not isinstance(config, dict) or not isinstance(config.get("auths", {}), dict):
        raise UserInputError(f"{path}: not an auth file (expected a JSON object with an auths object)")
    return config


def _write(path: Path, config: dict[str, Any]) -> None:
    target = path.resolve()
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=".auth.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(config, f, indent="\t")
            f.write("\n")
        os.replace(name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)
        raise


def ask_credentials(username: str | None, password_stdin: bool, stdin: TextIO) -> Credentials:
    """The user name and password ``login`` was given: ``--password-stdin`` reads one line of ``stdin``; on a
    terminal what is missing is asked for (the password without echo)."""
    interactive = stdin.isatty()
    if not username:
        if not interactive:
            raise UserInputError("login: give -u USER (no terminal to ask on)")
        username = input("Username: ").strip()
    if password_stdin:
        password = stdin.readline().rstrip("\r\n")
    elif interactive:
        password = getpass.getpass("Password: ")
    else:
        raise UserInputError("login: give --password-stdin and the password on stdin (no terminal to ask on)")
    if not username or not password:
        raise UserInputError("login: the user name and the password must not be empty")
    return Credentials(username, password, "ocibuild login")
