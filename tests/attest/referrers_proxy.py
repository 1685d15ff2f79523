"""A stand-in for a registry with the OCI 1.1 referrers API: a loopback proxy in front of ``docker-registry``.

Everything is forwarded; manifests pushed with a ``subject`` are remembered (and answered with ``OCI-Subject``),
and ``GET /v2/<repo>/referrers/<digest>`` is answered with an index of them, as zot or distribution 3 would.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

REFERRERS = re.compile(r"^/v2/(?P<repo>.+)/referrers/(?P<digest>sha256:[0-9a-f]{64})$")
MANIFEST = re.compile(r"^/v2/(?P<repo>.+)/manifests/(?P<ref>[^/]+)$")
HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


class ReferrersProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.referrers: dict[tuple[str, str], list[dict]] = {}
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                path = self.path.split("?")[0]
                found = REFERRERS.match(path)
                if found and self.command == "GET":
                    listed = proxy.referrers.get((found["repo"], found["digest"]), [])
                    doc = {
                        "schemaVersion": 2,
                        "mediaType": "application/vnd.oci.image.index.v1+json",
                        "manifests": listed,
                    }
                    self._answer(
                        200, {"Content-Type": "application/vnd.oci.image.index.v1+json"}, json.dumps(doc).encode()
                    )
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
                r = requests.request(
                    self.command,
                    f"http://{proxy.upstream}{self.path}",
                    headers=headers,
                    data=body,
                    allow_redirects=False,
                    timeout=60,
                )
                extra = {}
                manifest = MANIFEST.match(path)
                if manifest and self.command == "PUT" and r.status_code == 201 and body:
                    doc = json.loads(body)
                    if "subject" in doc:
                        descriptor = {
                            "mediaType": doc["mediaType"],
                            "digest": r.headers["Docker-Content-Digest"],
                            "size": len(body),
                            "artifactType": doc.get("artifactType", ""),
                        }
                        if doc.get("annotations"):
                            descriptor["annotations"] = doc["annotations"]
                        key = (manifest["repo"], doc["subject"]["digest"])
                        proxy.referrers.setdefault(key, []).append(descriptor)
                        extra["OCI-Subject"] = doc["subject"]["digest"]
                out = {k: v for k, v in r.headers.items() if k.lower() not in HOP}
                self._answer(
                    r.status_code,
                    {**out, **extra},
                    b"" if self.command == "HEAD" else r.content,
                    int(r.headers.get("Content-Length") or len(r.content)),
                )

            def _answer(self, status: int, headers: dict, body: bytes, length: int | None = None) -> None:
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body) if length is None else length))
                self.end_headers()
                if body:
                    self.wfile.write(body)

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _forward

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.host = f"127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> ReferrersProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
