"""Bounded retries: which failures are worth another try, and how long to wait before it."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import requests

from ocibuild.errors import BuildError

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


class TransientError(BuildError):
    """A failure another attempt may fix: a dropped connection, a timeout, 408/429/5xx."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Aborted(BuildError):
    """Another part of the operation failed; this one stopped early."""


@dataclass
class RetryPolicy:
    """Exponential backoff with a cap on tries and on the time spent retrying one step."""

    attempts: int = 6
    base_delay: float = 0.2
    max_delay: float = 4.0
    deadline: float = 20.0
    abort: threading.Event = field(default_factory=threading.Event)

    def wait(self, attempt: int, started: float, retry_after: float | None = None) -> bool:
        """Sleep before try ``attempt + 1``; False when the step should give up instead."""
        if attempt + 1 >= self.attempts or self.abort.is_set():
            return False
        delay = min(self.base_delay * 2**attempt, self.max_delay)
        if retry_after is not None:
            delay = min(max(delay, retry_after), self.max_delay)
        if time.monotonic() - started + delay > self.deadline:
            return False
        return not self.abort.wait(delay)


def describe(error: requests.RequestException) -> str:
    """A short, credential-free description of a transport failure (no URLs, no headers)."""
    text = str(error)
    if isinstance(error, requests.ConnectTimeout):
        return "connection timed out"
    if isinstance(error, requests.Timeout):
        return "read timed out"
    if "Connection refused" in text:
        return "connection refused"
    if "Name or service not known" in text or "NameResolutionError" in text or "getaddrinfo" in text:
        return "host not found"
    if isinstance(error, requests.exceptions.SSLError):
        return "TLS error (use --insecure-registry only for registries without valid TLS)"
    return "connection dropped"


def retry_after_seconds(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
