"""A thin registry API client on the session of ``oras.provider.Registry``.

oras-py gives us the HTTP session (TLS settings, cookies ignored for Harbor) and the http/https choice. We do not
use its ``do_request`` (it sleeps ~131 s on a dead registry), its auth backends (one token for all scopes) or its
upload helpers (whole blobs in memory, re-serialised manifests): this module sends each call itself, with bounded
retries and per-scope auth, and leaves upload resumption to ``ocibuild.registry.upload``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import urljoin

import oras.provider
import requests
import urllib3
from requests.adapters import HTTPAdapter

from ocibuild.errors import BuildError
from ocibuild.registry.auth import Authenticator, Scope
from ocibuild.registry.credentials import Credentials
from ocibuild.registry.deadline import Deadline, Limits, install_watched_pools, read_bounded
from ocibuild.registry.retry import RETRY_STATUSES, RetryPolicy, TransientError, describe, retry_after_seconds

SEND_BLOCK = 1 << 20
API_BODY_LIMIT = 1 << 20
"""The most bytes read of an API answer that is not a blob or manifest (errors, upload status, tokens)."""
MAX_MANIFEST = 4 << 20
TIMEOUT = (5.0, 30.0)
"""Connect and read timeouts; a registry that accepts connections but never answers fails within ~30 s."""
UPLOAD_TIMEOUT = (5.0, 300.0)
"""For PATCH/PUT of blob bytes: some registries take minutes to commit a multi-GB blob."""
MANIFEST_ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    ]
)


class _Adapter(HTTPAdapter):
    """Sends request bodies in 1 MiB blocks instead of urllib3's 16 KiB, on connections deadlines can cut."""

    def init_poolmanager(self, connections, maxsize, block=False, **pool_kwargs):  # type: ignore[override]
        super().init_poolmanager(connections, maxsize, block, blocksize=SEND_BLOCK, **pool_kwargs)
        install_watched_pools(self.poolmanager)

    def proxy_manager_for(self, proxy, **proxy_kwargs):  # type: ignore[override]
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        install_watched_pools(manager)  # deadlines hold behind an HTTP(S)_PROXY too
        return manager


def registry_error(response: requests.Response) -> str:
    """``HTTP 400 (DIGEST_INVALID: ...)`` from a registry error body, kept short."""
    detail = ""
    try:
        errors = response.json().get("errors") or []
        if errors:
            detail = f" ({errors[0].get('code', '')}: {errors[0].get('message', '')})"[:200]
    except (ValueError, AttributeError):
        pass
    return f"HTTP {response.status_code}{detail}"


class RegistryClient:
    """Calls to one registry host. Safe to share between threads."""

    def __init__(
        self,
        host: str,
        *,
        plain_http: bool,
        credentials: Credentials | None = None,
        policy: RetryPolicy | None = None,
        pool_size: int = 8,
        limits: Limits | None = None,
    ) -> None:
        self.host = host
        self.limits = limits or Limits.from_env()
        self._oras = oras.provider.Registry(hostname=host, insecure=plain_http)
        self.session: requests.Session = self._oras.session
        adapter = _Adapter(pool_connections=2, pool_maxsize=pool_size)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.base = f"{self._oras.prefix}://{host}"
        self.auth = Authenticator(self.session, host, credentials)
        self.policy = policy or RetryPolicy()
        self.on_retry: Callable[[str], None] = lambda message: None

    def url(self, repository: str, tail: str) -> str:
        return f"{self.base}/v2/{repository}/{tail}"

    def absolute(self, location: str) -> str:
        """Upload locations may be relative; keep their query (``_state``)."""
        return urljoin(self.base + "/", location)

    def send(
        self,
        method: str,
        url: str,
        scope: Scope,
        *,
        what: str,
        headers: dict[str, str] | None = None,
        body: bytes | Callable[[], object] | None = None,
        params: dict[str, str] | None = None,
        stream: bool = False,
        retry: bool = True,
        timeout: tuple[float, float] = TIMEOUT,
        max_body: int = API_BODY_LIMIT,
    ) -> requests.Response:
        """One API call. 401s are answered with credentials; dropped connections, 408, 429 and 5xx are retried
        with bounded backoff when ``retry``, else raised as ``TransientError`` for the caller to resume.

        Each try must be answered within the limits' deadline (longer by the time ``body`` takes at the floor
        rate): headers, and unless ``stream`` the whole body, of which at most ``max_body`` bytes are read."""
        attempt = 0
        auth_tries = 0
        started = time.monotonic()
        while True:
            auth = self.auth.headers(scope)
            data = body() if callable(body) else body
            # A call allowed a longer read timeout (a registry committing a large blob) gets that much longer.
            seconds = self.limits.seconds_for(_length(data)) + max(0.0, timeout[1] - TIMEOUT[1])
            deadline = Deadline(seconds)
            try:
                with deadline:
                    response = self.session.request(
                        method,
                        url,
                        headers={**(headers or {}), **auth},
                        data=data,
                        params=params,
                        stream=True,
                        timeout=timeout,
                    )
                    if not stream:
                        read_bounded(response, max_body, f"{self.host}: {what}")
            except (requests.RequestException, urllib3.exceptions.HTTPError) as e:
                if deadline.expired:
                    raise self.too_slow(what, seconds) from None
                failure, retry_after = describe(e), None
            else:
                if response.status_code == 401 and auth_tries < 2:
                    response.close()
                    sent = auth.get("Authorization", "")
                    self.auth.unauthorized(response, scope, retried=auth_tries > 0 or sent.startswith("Basic"))
                    auth_tries += 1
                    continue
                if response.status_code not in RETRY_STATUSES:
                    return response
                failure, retry_after = registry_error(response), retry_after_seconds(response)
                response.close()
            finally:
                if hasattr(data, "close"):
                    data.close()  # type: ignore[union-attr]
            message = f"{self.host}: {what}: {failure}"
            if not retry:
                raise TransientError(message, retry_after)
            if not self.policy.wait(attempt, started, retry_after):
                raise BuildError(f"{message} (gave up after {attempt + 1} tries in {time.monotonic() - started:.0f} s)")
            attempt += 1
            self.on_retry(f"{message}; retry {attempt}")

    def too_slow(self, what: str, seconds: float) -> BuildError:
        return BuildError(f"{self.host}: {what}: no complete answer within {seconds:.0f} s (the registry is too slow)")

    def fail(self, response: requests.Response, what: str) -> BuildError:
        if response.status_code == 403:
            return BuildError(f"{self.host}: {what}: access denied (HTTP 403)")
        return BuildError(f"{self.host}: {what}: {registry_error(response)}")

    # calls
    def ping(self, scope: Scope = ()) -> None:
        r = self.send("GET", f"{self.base}/v2/", scope, what="cannot reach the registry")
        if r.status_code != 200:
            raise BuildError(f"{self.host}: not an OCI registry ({registry_error(r)} on /v2/)")

    def blob_exists(self, repository: str, digest: str, scope: Scope) -> bool:
        r = self.send("HEAD", self.url(repository, f"blobs/{digest}"), scope, what=f"check blob {digest[:19]}")
        if r.status_code in (200, 404):
            return r.status_code == 200
        raise self.fail(r, f"check blob {digest[:19]}")

    def mount(self, repository: str, digest: str, source: str, scope: Scope) -> str | None:
        """Mount ``digest`` from repository ``source``: None when mounted, else the upload session it opened."""
        r = self.send(
            "POST",
            self.url(repository, "blobs/uploads/"),
            scope,
            what=f"mount blob {digest[:19]}",
            params={"mount": digest, "from": source},
        )
        if r.status_code == 201:
            return None
        if r.status_code == 202 and "Location" in r.headers:
            return self.absolute(r.headers["Location"])
        raise self.fail(r, f"mount blob {digest[:19]}")

    def start_upload(self, repository: str, scope: Scope) -> str:
        r = self.send("POST", self.url(repository, "blobs/uploads/"), scope, what="start upload")
        if r.status_code == 202 and "Location" in r.headers:
            return self.absolute(r.headers["Location"])
        raise self.fail(r, "start upload")

    def upload_status(self, location: str, scope: Scope) -> tuple[int, str] | None:
        """Bytes the registry holds for an upload session and its newest location; None if the session is gone."""
        r = self.send("GET", location, scope, what="upload status")
        if r.status_code in (404, 400):
            return None
        if r.status_code != 204:
            raise self.fail(r, "upload status")
        offset = range_end(r.headers.get("Range", ""))
        return offset, self.absolute(r.headers.get("Location", location))

    def put_manifest(self, repository: str, reference: str, data: bytes, media_type: str, scope: Scope) -> str:
        """PUT exact manifest bytes; returns the registry's ``Docker-Content-Digest`` ('' if it sent none)."""
        what = f"push manifest {reference if ':' not in reference else reference[:19]}"
        r = self.send(
            "PUT",
            self.url(repository, f"manifests/{reference}"),
            scope,
            what=what,
            headers={"Content-Type": media_type},
            body=data,
        )
        if r.status_code not in (200, 201):
            raise self.fail(r, what)
        return r.headers.get("Docker-Content-Digest", "")

    def get_manifest(self, repository: str, reference: str, scope: Scope) -> requests.Response:
        r = self.send(
            "GET",
            self.url(repository, f"manifests/{reference}"),
            scope,
            what=f"get manifest {reference[:19]}",
            headers={"Accept": MANIFEST_ACCEPT},
            max_body=MAX_MANIFEST,
        )
        if r.status_code == 404:
            raise BuildError(f"{self.host}/{repository}:{reference}: manifest not found")
        if r.status_code != 200:
            raise self.fail(r, f"get manifest {reference[:19]}")
        return r

    def get_blob(self, repository: str, digest: str, scope: Scope, offset: int = 0) -> requests.Response:
        """A streaming GET of a blob, from ``offset`` when the registry honours Range (206)."""
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        what = f"download blob {digest[:19]}"
        r = self.send("GET", self.url(repository, f"blobs/{digest}"), scope, what=what, headers=headers, stream=True)
        if r.status_code not in (200, 206):
            r.close()
            raise self.fail(r, what)
        return r


def _length(data: object) -> int:
    """The size of a request body (bytes or a sized file-like view), 0 when it has none."""
    try:
        return len(data)  # type: ignore[arg-type]
    except TypeError:
        return 0


def range_end(value: str) -> int:
    """Bytes held, from an upload ``Range: 0-<last>`` header (distribution sends ``0-0`` for an empty upload)."""
    _, _, end = value.partition("-")
    try:
        last = int(end)
    except ValueError:
        return 0
    return last + 1 if last > 0 else 0
