"""Image references: ``[REGISTRY/]REPO[:TAG][@sha256:...]`` as Docker spells them."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from ocibuild.errors import UserInputError
from ocibuild.oci.digest import is_digest

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
DEFAULT_TAG = "latest"

_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
_HOST = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:]+\])(?::[0-9]+)?$")


@dataclass(frozen=True)
class Reference:
    """A parsed reference. ``registry`` is the name users write (``docker.io`` for Docker Hub)."""

    registry: str
    repository: str
    tag: str = ""
    digest: str = ""

    @property
    def api_host(self) -> str:
        """The host:port that serves the registry API."""
        return DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.repository}"

    def with_digest(self, digest: str) -> str:
        """``REGISTRY/REPO[:TAG]@digest``: what push prints per tag."""
        tag = f":{self.tag}" if self.tag else ""
        return f"{self.name}{tag}@{digest}"

    def __str__(self) -> str:
        tag = f":{self.tag}" if self.tag else ""
        digest = f"@{self.digest}" if self.digest else ""
        return f"{self.name}{tag}{digest}"


def _credentials_and_rest(text: str) -> tuple[str, str]:
    """``user:password@host/repo[@sha256:...]`` -> (``user:password``, ``host/repo[@sha256:...]``); a password
    may hold ``/`` or ``@``, so everything before the last ``@`` that does not start a digest counts."""
    head, sep, digest = text.rpartition("@")
    tail = ""
    if sep and digest.startswith("sha256:"):
        text, tail = head, sep + digest
    credentials, sep, rest = text.rpartition("@")
    return credentials, (rest if sep else text) + tail


def redact(text: str) -> str:
    """``text`` with any credentials before the registry host replaced by ``***``."""
    credentials, rest = _credentials_and_rest(text.strip())
    return f"***@{rest}" if credentials else rest


def refuse_credentials(text: str) -> None:
    """Raise (without echoing them) when ``text`` holds credentials (``user:password@host/repo``)."""
    if _credentials_and_rest(text.strip())[0]:
        raise UserInputError(
            f"{redact(text)}: credentials inside an image reference are not supported "
            "(set REGISTRY_USERNAME/REGISTRY_PASSWORD or log in with docker login)"
        )


def parse_reference(text: str, *, default_tag: str = DEFAULT_TAG) -> Reference:
    """Parse ``text``; a reference with neither tag nor digest gets ``default_tag`` (unless empty).

    Credentials inside a reference (``user:password@host/repo``) are refused without being echoed.
    """
    refuse_credentials(text)
    rest = text.strip()
    digest = ""
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        if not is_digest(digest):
            raise UserInputError(f"{text}: invalid digest {digest!r} (expected sha256:<64 hex>)")
    first, sep, remainder = rest.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        registry, path = first, remainder
        if not _HOST.match(registry):
            raise UserInputError(f"{text}: invalid registry host {registry!r}")
    else:
        registry, path = DOCKER_HUB, rest
    tag = ""
    last_slash = path.rfind("/")
    colon = path.rfind(":")
    if colon > last_slash:
        path, tag = path[:colon], path[colon + 1 :]
        if not _TAG.match(tag):
            raise UserInputError(f"{text}: invalid tag {tag!r}")
    if not path or not all(_COMPONENT.match(c) for c in path.split("/")):
        raise UserInputError(f"{text}: invalid repository name {path!r} (lowercase letters, digits, . _ - and /)")
    if registry == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    if len(f"{registry}/{path}") > 255:
        raise UserInputError(f"{text}: repository name longer than 255 characters")
    if not tag and not digest:
        tag = default_tag
    return Reference(registry, path, tag, digest)


def is_loopback(host: str) -> bool:
    """True for ``localhost``, 127.0.0.0/8 and ::1, with or without a port."""
    name = host
    if name.startswith("["):
        name = name[1 : name.index("]")]
    elif name.count(":") == 1:
        name = name.split(":", 1)[0]
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def uses_plain_http(host: str, insecure_registries: tuple[str, ...] | list[str] = ()) -> bool:
    """Plain http only for loopback hosts and hosts the user named as insecure."""
    return is_loopback(host) or host in insecure_registries
