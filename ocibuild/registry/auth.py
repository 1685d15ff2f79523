"""Registry authentication: Basic, and Docker/OCI Bearer tokens fetched per scope and renewed on expiry or 401."""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass

import requests
import urllib3

from ocibuild.errors import BuildError
from ocibuild.registry import credentials as creds
from ocibuild.registry.credentials import Credentials
from ocibuild.registry.deadline import Deadline, Limits, read_bounded

DEFAULT_TOKEN_LIFETIME = 60.0
RENEW_MARGIN = 10.0
"""Renew a token this long before it expires (at most a tenth of its lifetime)."""
TOKEN_TIMEOUT = (5.0, 30.0)
TOKEN_BODY_LIMIT = 1 << 20
_PARAM = re.compile(r'(\w+)=(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))')

Scope = tuple[str, ...]
"""Token scopes such as ``("repository:org/model:pull,push",)``."""


def push_scope(repository: str, *mount_from: str) -> Scope:
    return (f"repository:{repository}:pull,push", *(f"repository:{r}:pull" for r in mount_from if r != repository))


def pull_scope(repository: str) -> Scope:
    return (f"repository:{repository}:pull",)


@dataclass(frozen=True)
class Challenge:
    """A parsed ``WWW-Authenticate`` header."""

    scheme: str
    params: dict[str, str]


def parse_challenge(header: str) -> Challenge | None:
    scheme, _, rest = header.strip().partition(" ")
    if not scheme:
        return None
    params = {m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3) for m in _PARAM.finditer(rest)}
    return Challenge(scheme.lower(), params)


@dataclass
class _Token:
    value: str
    renew_at: float


class Authenticator:
    """Adds ``Authorization`` to requests for one registry; thread-safe.

    Credentials are looked up lazily (only when the registry asks), so anonymous registries never run a credential
    helper. ``credentials`` given explicitly win over env and docker config.
    """

    def __init__(
        self,
        session: requests.Session,
        registry: str,
        credentials: Credentials | None = None,
    ) -> None:
        self._session = session
        self._registry = registry
        self._explicit = credentials
        self._credentials: Credentials | None = None
        self._looked_up = False
        self._challenge: Challenge | None = None
        self._tokens: dict[Scope, _Token] = {}
        self._lock = threading.Lock()

    def _creds(self) -> Credentials | None:
        if not self._looked_up:
            self._credentials = self._explicit or creds.resolve(self._registry)
            self._looked_up = True
        return self._credentials

    def headers(self, scope: Scope) -> dict[str, str]:
        """The Authorization header for ``scope`` once the registry has told us how to authenticate."""
        with self._lock:
            challenge = self._challenge
            if challenge is None:
                return {}
            if challenge.scheme == "basic":
                found = self._creds()
                return {"Authorization": found.basic_header()} if found else {}
            token = self._tokens.get(scope)
            if token is None or token.renew_at <= time.monotonic():
                token = self._fetch_token(challenge, scope)
            return {"Authorization": f"Bearer {token.value}"}

    def unauthorized(self, response: requests.Response, scope: Scope, retried: bool) -> None:
        """Handle a 401: learn the challenge and drop the token for ``scope``; raise when retrying is pointless.

        ``retried``: this request already carried fresh credentials (a Basic header, or a new token).
        """
        challenge = parse_challenge(response.headers.get("WWW-Authenticate", ""))
        with self._lock:
            if challenge is None or challenge.scheme not in ("basic", "bearer"):
                raise BuildError(f"{self._registry}: unauthorized and no supported WWW-Authenticate challenge")
            self._challenge = challenge
            self._tokens.pop(scope, None)
            found = self._creds()
            if challenge.scheme == "basic" and found is None:
                raise BuildError(f"{self._registry}: authentication required; {creds.where_to_log_in(self._registry)}")
            if retried:
                raise BuildError(f"{self._registry}: {_rejected(found, self._registry)}")

    def _fetch_token(self, challenge: Challenge, scope: Scope) -> _Token:
        realm = challenge.params.get("realm")
        if not realm:
            raise BuildError(f"{self._registry}: Bearer challenge without a realm")
        wanted = list(scope)
        extra = challenge.params.get("scope")
        if extra:
            wanted += [s for s in extra.split(" ") if s not in wanted]
        found = self._creds()
        params: dict[str, object] = {"scope": wanted}
        if challenge.params.get("service"):
            params["service"] = challenge.params["service"]
        fetched = time.monotonic()
        deadline = Deadline(Limits.from_env().deadline)
        try:
            with deadline:
                if found is not None and found.is_identity_token:
                    form = {
                        **params,
                        "grant_type": "refresh_token",
                        "refresh_token": found.password,
                        "client_id": "ocibuild",
                    }
                    r = self._session.post(realm, data=form, timeout=TOKEN_TIMEOUT, stream=True)
                else:
                    headers = {"Authorization": found.basic_header()} if found else {}
                    r = self._session.get(realm, params=params, headers=headers, timeout=TOKEN_TIMEOUT, stream=True)
                read_bounded(r, TOKEN_BODY_LIMIT, f"{self._registry}: token service")
        except (requests.RequestException, urllib3.exceptions.HTTPError) as e:
            if deadline.expired:
                late = f"no complete answer within {deadline.seconds:.0f} s"
                raise BuildError(f"{self._registry}: token service: {late}") from None
            raise BuildError(f"{self._registry}: token service unreachable ({type(e).__name__})") from None
        if r.status_code in (401, 403):
            if found is None:
                raise BuildError(f"{self._registry}: authentication required; {creds.where_to_log_in(self._registry)}")
            raise BuildError(f"{self._registry}: {_rejected(found, self._registry)}")
        if r.status_code != 200:
            raise BuildError(f"{self._registry}: token service answered HTTP {r.status_code}")
        try:
            body = r.json()
            value = body.get("token") or body.get("access_token")
            lifetime = float(body.get("expires_in") or DEFAULT_TOKEN_LIFETIME)
        except (ValueError, AttributeError, TypeError):
            value = None
        if not value:
            raise BuildError(f"{self._registry}: token service returned no token")
        token = _Token(value, fetched + lifetime - min(RENEW_MARGIN, lifetime / 10))
        self._tokens[scope] = token
        return token


def _rejected(found: Credentials | None, registry: str) -> str:
    if found is None:
        return f"access denied; {creds.where_to_log_in(registry)}"
    return f"credentials for user {found.username!r} (from {found.source or 'arguments'}) were rejected"
