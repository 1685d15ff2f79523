"""A Docker-token-auth front for a real registry, for tests: it serves ``/token`` (Basic credentials in, a scoped
Bearer token out) and forwards API requests only when their token is unexpired and covers the repository and
action, answering 401 with a Bearer challenge otherwise. Tokens are opaque random strings, not JWTs."""

from __future__ import annotations

import base64
import json
import re
import secrets
import socket
import threading
import time
from collections import Counter
from urllib.parse import parse_qs, urlsplit

from scripts.fault_proxy import FaultProxy, read_head

_REPO_PATH = re.compile(r"^/v2/(.+?)/(blobs|manifests|tags)/")


class TokenGate(FaultProxy):
    """``lifetime``: how long tokens really live; ``reported_lifetime``: the ``expires_in`` we tell clients;
    ``delay``: seconds each allowed request waits, so one push outlives a token; ``deny``: scopes never granted
    (like ``repository:x:pull``)."""

    def __init__(self, upstream: str, user: str, password: str, *, lifetime: float = 60, reported_lifetime=None):
        super().__init__(upstream, drop=0, error=0)
        self.user, self.password = user, password
        self.lifetime = lifetime
        self.reported_lifetime = lifetime if reported_lifetime is None else reported_lifetime
        self.tokens: dict[str, tuple[frozenset[str], float]] = {}
        self.issued: Counter[str] = Counter()
        self.rejected = 0
        self.delay = 0.0
        self.deny: set[str] = set()
        self._gate_lock = threading.Lock()

    def _serve(self, client: socket.socket) -> None:
        reader = client.makefile("rb")
        try:
            head = read_head(reader)
            if head is None:
                return
            request_line, *lines = head.decode("latin-1").split("\r\n")
            method, target, _ = request_line.split(" ", 2)
            headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
            url = urlsplit(target)
            if url.path == "/token":
                self._token(client, headers, parse_qs(url.query))
            elif self._allowed(method, url, headers.get("authorization", "")):
                time.sleep(self.delay)
                self._forward(client, reader, head, "pass", 1.0)
            else:
                self._challenge(client, url.path)
        except OSError:
            pass
        finally:
            reader.close()
            client.close()

    def _needed(self, method: str, url) -> set[str]:
        match = _REPO_PATH.match(url.path)
        if not match:
            return set()
        action = "pull" if method in ("GET", "HEAD") else "push"
        needed = {f"repository:{match.group(1)}:{action}"}
        source = parse_qs(url.query).get("from")
        if source:
            needed.add(f"repository:{source[0]}:pull")
        return needed

    def _allowed(self, method: str, url, authorization: str) -> bool:
        if not authorization.startswith("Bearer "):
            return False
        with self._gate_lock:
            granted, expires = self.tokens.get(authorization[7:], (frozenset(), 0.0))
        ok = time.monotonic() < expires and self._needed(method, url) <= granted
        if not ok:
            self.rejected += 1
        return ok

    def _challenge(self, client: socket.socket, path: str) -> None:
        match = _REPO_PATH.match(path)
        scope = f',scope="repository:{match.group(1)}:pull,push"' if match else ""
        body = b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}'
        client.sendall(
            (
                "HTTP/1.1 401 Unauthorized\r\n"
                f'WWW-Authenticate: Bearer realm="http://{self.host}/token",service="gate"{scope}\r\n'
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            ).encode()
            + body
        )

    def _token(self, client: socket.socket, headers: dict[str, str], query: dict[str, list[str]]) -> None:
        expected = "Basic " + base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        if headers.get("authorization") != expected:
            client.sendall(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        granted = set()
        for scope in query.get("scope", []):
            for item in scope.split(" "):
                kind, _, rest = item.partition(":")
                name, _, actions = rest.rpartition(":")
                granted |= {f"{kind}:{name}:{a}" for a in actions.split(",")}
        token = secrets.token_hex(16)
        with self._gate_lock:
            self.tokens[token] = (frozenset(granted - self.deny), time.monotonic() + self.lifetime)
            self.issued[" ".join(sorted(query.get("scope", [])))] += 1
        body = json.dumps({"token": token, "expires_in": self.reported_lifetime}).encode()
        client.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
