"""Where registry credentials come from, first found wins: the environment (``OCIBUILD_REGISTRY_USERNAME``/
``_PASSWORD``, ``REGISTRY_USERNAME``/``_PASSWORD``), the containers auth files (``$REGISTRY_AUTH_FILE``, else
``$XDG_RUNTIME_DIR/containers/auth.json`` and ``~/.config/containers/auth.json``; ``ocibuild login`` writes the
first), then Docker's ``config.json`` (``$DOCKER_CONFIG``). Each file is read like Docker's: credHelpers, auths,
credsStore.

Secrets live only in ``Credentials`` objects whose repr hides them; nothing here puts them in a message.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from ocibuild.registry.reference import DOCKER_HUB

IDENTITY_TOKEN_USER = "<token>"
"""The username credential helpers return with an OAuth2 refresh ("identity") token as the secret."""

_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io"}
_HUB_SERVER = "https://index.docker.io/v1/"
_ENV_PAIRS = (
    ("OCIBUILD_REGISTRY_USERNAME", "OCIBUILD_REGISTRY_PASSWORD"),
    ("REGISTRY_USERNAME", "REGISTRY_PASSWORD"),
)


@dataclass(frozen=True)
class Credentials:
    """A username and secret (password, access token or identity token)."""

    username: str
    password: str = field(repr=False)
    source: str = ""

    @property
    def is_identity_token(self) -> bool:
        return self.username == IDENTITY_TOKEN_USER

    def basic_header(self) -> str:
        return "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()


def from_env() -> Credentials | None:
    for user_var, pass_var in _ENV_PAIRS:
        user, password = os.environ.get(user_var), os.environ.get(pass_var)
        if user and password:
            return Credentials(user, password, f"${user_var}")
    return None


def docker_config_path() -> Path:
    base = os.environ.get("DOCKER_CONFIG")
    return Path(base) / "config.json" if base else Path.home() / ".docker" / "config.json"


def containers_auth_paths() -> list[Path]:
    """The containers auth files, in the order podman and skopeo read them; ``ocibuild login`` writes the first."""
    explicit = os.environ.get("REGISTRY_AUTH_FILE")
    if explicit:
        return [Path(explicit)]
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    paths = [Path(runtime) / "containers" / "auth.json"] if runtime and os.path.isdir(runtime) else []
    return [*paths, Path.home() / ".config" / "containers" / "auth.json"]


def auth_file_paths() -> list[Path]:
    """Every file credentials are read from, in order."""
    return [*containers_auth_paths(), docker_config_path()]


def normalise_registry(text: str) -> str:
    """The registry host users mean by ``text`` (``https://index.docker.io/v1/`` and aliases -> ``docker.io``)."""
    host = _host_of(text.strip())
    return DOCKER_HUB if host in _HUB_ALIASES else host


def _host_of(key: str) -> str:
    """The host of a config.json ``auths`` key, which may be a URL (``https://index.docker.io/v1/``)."""
    return urlsplit(key).netloc if "://" in key else key.split("/", 1)[0]


def _same_registry(a: str, b: str) -> bool:
    return a == b or (a in _HUB_ALIASES and b in _HUB_ALIASES)


def _server_url(registry: str) -> str:
    return _HUB_SERVER if registry in _HUB_ALIASES else registry


def from_helper(helper: str, registry: str) -> Credentials | None:
    """Ask ``docker-credential-<helper> get``; None when it has nothing for ``registry`` or is missing."""
    binary = f"docker-credential-{helper}"
    if not shutil.which(binary):
        return None
    try:
        proc = subprocess.run(
            [binary, "get"], input=_server_url(registry).encode(), capture_output=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0:
        return None
    try:
        payload = json.loads(proc.stdout)
        user, secret = payload["Username"], payload["Secret"]
    except (ValueError, KeyError, TypeError):
        return None
    return Credentials(user, secret, binary) if secret else None


def _from_auth_entry(entry: dict, source: str) -> Credentials | None:
    if entry.get("identitytoken"):
        return Credentials(IDENTITY_TOKEN_USER, entry["identitytoken"], source)
    if entry.get("username") and entry.get("password"):
        return Credentials(entry["username"], entry["password"], source)
    if entry.get("auth"):
        try:
            user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        if user and password:
            return Credentials(user, password, source)
    return None


def from_auth_file(registry: str, path: Path) -> Credentials | None:
    """Credentials for ``registry`` from a Docker-format auth file: credHelpers, then auths, then credsStore."""
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(config, dict):
        return None
    for host, helper in (config.get("credHelpers") or {}).items():
        if _same_registry(_host_of(host), registry):
            return from_helper(helper, registry)
    for key, entry in (config.get("auths") or {}).items():
        if _same_registry(_host_of(key), registry) and isinstance(entry, dict):
            found = _from_auth_entry(entry, str(path))
            if found:
                return found
    store = config.get("credsStore")
    return from_helper(store, registry) if store else None


def resolve(registry: str) -> Credentials | None:
    """Credentials for ``registry``: env vars first, then the auth files (see the module docstring)."""
    registry = normalise_registry(registry)
    found = from_env()
    for path in auth_file_paths():
        found = found or from_auth_file(registry, path)
    return found


def where_to_log_in(registry: str) -> str:
    """The ways that would give credentials for ``registry``, for an error message."""
    home = str(Path.home())
    files = ", ".join(str(p).replace(home, "~", 1) if str(p).startswith(home) else str(p) for p in auth_file_paths())
    return f"run `ocibuild login {registry}` or set REGISTRY_USERNAME and REGISTRY_PASSWORD (also read: {files})"
