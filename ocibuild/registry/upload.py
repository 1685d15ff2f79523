"""Upload one blob: skip it if present, mount it if known elsewhere, else stream it and resume after failures.

Upload flow: ``POST`` opens a session; one streaming ``PATCH`` (or ``PATCH``es of ``chunk_size`` with
``Content-Range``) sends the bytes from disk; ``PUT ?digest=`` commits. After a dropped connection or a 408/429/5xx
we ask the session how much it holds (``GET`` -> ``Range``) and continue from there; a session the registry lost
(404) or a commit it rejects (digest mismatch) starts over, a bounded number of times.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from ocibuild.errors import BuildError
from ocibuild.registry.auth import Scope, push_scope
from ocibuild.registry.body import SliceBody
from ocibuild.registry.client import UPLOAD_TIMEOUT, RegistryClient, range_end, registry_error
from ocibuild.registry.progress import Progress
from ocibuild.registry.retry import TransientError

MAX_RESTARTS = 5
OCTET = "application/octet-stream"


@dataclass(frozen=True)
class Blob:
    digest: str
    size: int
    source: bytes | Path


class _Restart(Exception):
    """The upload session is gone or produced a bad blob: open a new one."""


def push_blob(
    client: RegistryClient,
    repository: str,
    blob: Blob,
    *,
    mount_from: str | None,
    chunk_size: int | None,
    progress: Progress,
) -> str:
    """Make ``blob`` exist in ``repository``; returns ``exists``, ``mounted`` or ``uploaded``.

    A mount that the registry refuses (even for lack of pull access to ``mount_from``) falls back to an upload.
    """
    scope = push_scope(repository)
    if client.blob_exists(repository, blob.digest, scope):
        return "exists"
    progress.blob_started(blob.digest, blob.size)
    location = None
    if mount_from:
        try:
            location = client.mount(repository, blob.digest, mount_from, push_scope(repository, mount_from))
        except BuildError as e:
            client.on_retry(f"{e}; uploading instead")
        else:
            if location is None:
                return "mounted"
    _Uploader(client, repository, blob, scope, chunk_size, progress).run(location)
    return "uploaded"


class _Uploader:
    def __init__(
        self,
        client: RegistryClient,
        repository: str,
        blob: Blob,
        scope: Scope,
        chunk_size: int | None,
        progress: Progress,
    ) -> None:
        self.client = client
        self.repository = repository
        self.blob = blob
        self.scope = scope
        self.chunk_size = chunk_size
        self.progress = progress
        self.what = f"upload blob {blob.digest[:19]}"
        self.location = ""
        self.offset = 0

    def run(self, location: str | None) -> None:
        self.location = location or self.client.start_upload(self.repository, self.scope)
        self.offset = 0
        attempt, restarts, started = 0, 0, time.monotonic()
        while True:
            mark = self.offset
            try:
                self._send()
                self._commit()
                return
            except TransientError as e:
                if self.offset > mark:  # chunks went through before the failure: a fresh retry budget
                    attempt, started = 0, time.monotonic()
                if not self.client.policy.wait(attempt, started, e.retry_after):
                    raise BuildError(f"{e} (gave up after {attempt + 1} tries)") from None
                attempt += 1
                self.client.on_retry(f"{e}; resuming (retry {attempt})")
                if self._resync():
                    continue
                reason = "upload session lost"
            except _Restart as e:
                reason = str(e)
            if self.client.blob_exists(self.repository, self.blob.digest, self.scope):
                return  # an earlier commit went through though its answer was lost
            restarts += 1
            if restarts > MAX_RESTARTS:
                raise BuildError(f"{self.client.host}: {self.what}: failed {restarts} times (last: {reason})")
            self.client.on_retry(f"{self.client.host}: {self.what}: starting over ({reason})")
            self.location, self.offset = self.client.start_upload(self.repository, self.scope), 0
            attempt, started = 0, time.monotonic()

    def _resync(self) -> bool:
        """Continue where the registry says the upload stopped; False when it lost the session."""
        state = self.client.upload_status(self.location, self.scope)
        if state is None:
            return False
        self.offset, self.location = state
        return True

    def _send(self) -> None:
        """PATCH the bytes from ``self.offset`` to the end, keeping the newest location and offset."""
        size = self.blob.size
        while self.offset < size:
            start = self.offset
            end = min(size, start + self.chunk_size) if self.chunk_size else size
            headers = {"Content-Type": OCTET}
            if self.chunk_size or start:
                headers["Content-Range"] = f"{start}-{end - 1}"

            def body(start: int = start, end: int = end) -> SliceBody:
                return SliceBody(self.blob.source, start, end, self._report)

            r = self.client.send(
                "PATCH",
                self.location,
                self.scope,
                what=self.what,
                headers=headers,
                body=body,
                retry=False,
                timeout=UPLOAD_TIMEOUT,
            )
            if r.status_code == 404:
                raise _Restart("upload session lost")
            if r.status_code == 416:
                raise TransientError(f"{self.client.host}: {self.what}: registry holds a different offset")
            if r.status_code != 202:
                raise self.client.fail(r, self.what)
            self.location = self.client.absolute(r.headers.get("Location", self.location))
            held = r.headers.get("Range")
            self.offset = range_end(held) if held else end
            if self.offset != end:
                raise TransientError(f"{self.client.host}: {self.what}: registry holds {self.offset} of {end} bytes")

    def _commit(self) -> None:
        r = self.client.send(
            "PUT",
            self.location,
            self.scope,
            what=self.what,
            headers={"Content-Type": OCTET},
            body=b"",
            params={"digest": self.blob.digest},
            retry=False,
            timeout=UPLOAD_TIMEOUT,
        )
        if r.status_code in (201, 204):
            return
        if r.status_code in (400, 404):
            raise _Restart(registry_error(r))
        raise self.client.fail(r, self.what)

    def _report(self, position: int) -> None:
        self.progress.blob_progress(self.blob.digest, position)
