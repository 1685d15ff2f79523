"""Server side: deliver a prediction's webhooks in order, throttling logs and retrying completion."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import urllib.error
import urllib.request
from typing import Any

from cog import RUNNER_VERSION
from cog.server import log
from cog.server.predictions import Prediction

REQUEST_TIMEOUT_S = 30.0
RETRY_STATUSES = (429, 500, 502, 503, 504)
COMPLETION_ATTEMPTS = 12
RETRY_BASE_S = 0.1


def _post(url: str, body: bytes, headers: dict[str, str]) -> int:
    """One blocking POST; returns the HTTP status (0 on a transport error)."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (OSError, ValueError, http.client.HTTPException):
        return 0


class WebhookSender:
    """Sends ``start``, ``output``, ``logs`` (at most one per throttle interval) and ``completed`` events.

    Events are sent one at a time, in order; each carries the prediction's state at send time, so a slow
    receiver sees coalesced logs rather than a backlog.
    """

    def __init__(self, prediction: Prediction, trace_headers: dict[str, str]) -> None:
        request = prediction.request
        assert request.webhook is not None
        self.prediction = prediction
        self.url = request.webhook
        self.events = set(request.webhook_events_filter)
        self.throttle_s = float(os.environ.get("COG_THROTTLE_RESPONSE_INTERVAL", "0.5"))
        self.headers = {"Content-Type": "application/json", "User-Agent": f"cog-runner/{RUNNER_VERSION}"}
        self.headers.update(trace_headers)
        if os.environ.get("WEBHOOK_AUTH_TOKEN"):
            self.headers["Authorization"] = f"Bearer {os.environ['WEBHOOK_AUTH_TOKEN']}"
        self._queue: asyncio.Queue[tuple[str, dict[str, Any] | None]] = asyncio.Queue()
        self._logs_pending = False
        self._last_logs_at = 0.0
        self._task = asyncio.get_running_loop().create_task(self._run())
        prediction.listeners.append(self._on_event)

    def _on_event(self, event: str, data: dict[str, Any]) -> None:
        """Start and output events carry the state of their moment; logs are coalesced and sent later."""
        if event in ("start", "output") and event in self.events:
            self._queue.put_nowait((event, self.prediction.snapshot()))
        elif event == "log" and "logs" in self.events and not self._logs_pending:
            self._logs_pending = True
            delay = max(0.0, self._last_logs_at + self.throttle_s - asyncio.get_running_loop().time())
            asyncio.get_running_loop().call_later(delay, self._queue.put_nowait, ("logs", None))
        elif event == "completed":
            self._queue.put_nowait((event, data))

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            event, state = await self._queue.get()
            if event == "logs":
                if not self._logs_pending or self.prediction.done:
                    continue
                self._logs_pending = False
                self._last_logs_at = loop.time()
                state = self.prediction.snapshot()
            if event == "completed":
                if "completed" in self.events:
                    await self._send_with_retries(state or self.prediction.snapshot())
                return
            await self._send_once(state or self.prediction.snapshot())

    async def _send_once(self, state: dict[str, Any]) -> int:
        body = json.dumps(state, separators=(",", ":"), sort_keys=True).encode()
        return await asyncio.get_running_loop().run_in_executor(None, _post, self.url, body, self.headers)

    async def _send_with_retries(self, state: dict[str, Any]) -> None:
        for attempt in range(COMPLETION_ATTEMPTS):
            status = await self._send_once(state)
            if status and status not in RETRY_STATUSES:
                return
            await asyncio.sleep(RETRY_BASE_S * 2 ** min(attempt, 10))
        log.warning("giving up on completion webhook", prediction=self.prediction.id, url=self.url)
