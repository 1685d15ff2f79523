"""The playground proxy against a real runner: the page, the API forwarded, SSE streamed through, cancel, hang-ups,
and what it refuses."""

from __future__ import annotations

import http.client
import json
import re
import socket
import threading
import time

import pytest

from ocibuild.errors import UserInputError
from ocibuild.serve import Listen, parse_listen
from ocibuild.serve.proxy import Proxy, static_file


def raw_request(port: int, head: str, body: bytes = b"", timeout: float = 10) -> tuple[int, dict[str, str], bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(head.encode() + body)
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()


def test_page_static_files_and_discovery_document(serve):
    served = serve("echo", title='<b>"echo"</b>')
    client = served.client
    page = client.request("GET", "/playground", headers={"Accept": "text/html"})
    assert page.status == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "&lt;b&gt;&quot;echo&quot;&lt;/b&gt;" in page.body.decode()  # the title is escaped
    assert "<b>" not in page.body.decode().split("<title>")[1].split("</title>")[0]
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert client.request("GET", "/", headers={"Accept": "text/html,*/*"}).body == page.body
    discovery = client.request("GET", "/", headers={"Accept": "application/json"})
    assert discovery.json["predictions_url"] == "/predictions"
    script = client.get("/playground/app.js")
    assert script.status == 200 and script.headers["content-type"].startswith("text/javascript")
    assert script.body == static_file("app.js")
    assert client.get("/playground/style.css").headers["content-type"].startswith("text/css")
    # nothing of the page comes from elsewhere: every URL it loads or fetches is on this origin
    html = static_file("index.html").decode()
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert not re.search(r"url\(|@import", static_file("style.css").decode())
    assert not re.search(r"fetch\(\s*[\"'`](https?:)?//", static_file("app.js").decode())


def test_api_paths_are_forwarded(serve):
    served = serve("echo")
    client = served.client
    assert client.get("/openapi.json").json == served.runner.client.get("/openapi.json").json
    assert client.get("/health-check").json["status"] == "READY"
    reply = client.predict({"prompt": "hi", "n": 2})
    assert reply.status == 200
    assert reply.json["output"].startswith("hihi|")
    invalid = client.predict({"prompt": "hi", "n": 20})
    assert invalid.status == 422
    assert invalid.json["detail"][0]["loc"] == ["body", "input", "n"]
    started = client.post(
        "/predictions", {"id": "async1", "input": {"prompt": "x"}}, headers={"Prefer": "respond-async"}
    )
    assert started.status == 202 and started.json == {"id": "async1", "status": "starting"}
    served.runner.wait_until("READY")
    assert client.request("GET", "/predictions").status == 405  # the runner's answer, passed through


def test_chunked_request_bodies_are_forwarded(serve):
    served = serve("echo")
    body = json.dumps({"input": {"prompt": "chunk"}}).encode()
    head = (
        "POST /predictions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    status, _, payload = raw_request(served.proxy.port, head, chunked)
    assert status == 200
    assert json.loads(payload)["output"].startswith("chunk|")


def test_server_sent_events_arrive_as_they_are_sent(serve):
    served = serve("stream")
    connection = http.client.HTTPConnection("127.0.0.1", served.proxy.port, timeout=30)
    body = json.dumps({"input": {"words": 4, "delay": 0.4}})
    start = time.monotonic()
    connection.request(
        "POST", "/predictions", body, {"Content-Type": "application/json", "Accept": "text/event-stream"}
    )
    response = connection.getresponse()
    assert response.status == 200
    assert response.getheader("Content-Type").startswith("text/event-stream")
    events: list[tuple[float, str, dict]] = []
    name = None
    while True:
        line = response.fp.readline().decode()
        if not line:
            break
        if line.startswith("event:"):
            name = line.split(":", 1)[1].strip()
        elif line.startswith("data:"):
            events.append((time.monotonic() - start, name or "", json.loads(line.split(":", 1)[1])))
            if name == "completed":
                break
    connection.close()
    outputs = [(t, data["chunk"]) for t, kind, data in events if kind == "output"]
    completed = [t for t, kind, _ in events if kind == "completed"]
    assert [chunk for _, chunk in outputs] == ["w0 ", "w1 ", "w2 ", "w3 "]
    assert completed and completed[0] - outputs[0][0] > 1.0  # the first word came well before the end
    assert any(kind == "log" for _, kind, _ in events)


def test_cancel_through_the_proxy(serve):
    served = serve("echo")
    client = served.client
    result: list = []

    def run() -> None:
        result.append(served.client.predict({"prompt": "slow", "mode": "slow", "scale": 30.0}, id="slow1"))

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 10
    while client.get("/health-check").json["status"] != "BUSY":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert client.post("/predictions/slow1/cancel").status == 200
    thread.join(10)
    assert result and result[0].json["status"] == "canceled"
    assert client.post("/predictions/nope/cancel").status == 404


def test_progress_put_reports_a_running_prediction_and_never_starts_one(serve):
    """What the page polls during a sync run: an in-flight id answers 202 with its logs; otherwise a 422 (the
    input is not an object), so a finished prediction is never run again."""
    served = serve("echo")
    client = served.client
    poll = {"id": "p1", "input": "progress"}
    assert client.put("/predictions/p1", poll).status == 422
    thread = threading.Thread(
        target=lambda: served.client.predict({"prompt": "x", "mode": "logs", "n": 6, "scale": 0.3}, id="p1")
    )
    thread.start()
    deadline = time.monotonic() + 10
    while True:
        reply = client.put("/predictions/p1", poll)
        if reply.status == 202 and "line 1" in reply.json.get("logs", ""):
            break
        assert time.monotonic() < deadline, reply.body
        time.sleep(0.1)
    assert reply.json["status"] == "processing"
    thread.join(15)
    assert client.put("/predictions/p1", poll).status == 422
    served.runner.wait_until("READY")


def test_a_client_hanging_up_cancels_its_sync_prediction(serve):
    served = serve("echo")
    body = json.dumps({"input": {"prompt": "x", "mode": "slow", "scale": 30.0}}).encode()
    head = (
        f"POST /predictions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    sock = socket.create_connection(("127.0.0.1", served.proxy.port))
    sock.sendall(head.encode() + body)
    served.runner.wait_until("BUSY", timeout=10)
    sock.close()
    served.runner.wait_until("READY", timeout=10)


def test_refuses_anything_but_the_api(serve):
    served = serve("echo")
    port = served.proxy.port
    assert served.client.get("/etc/passwd").status == 404
    assert served.client.get("/predictions/../../x").status == 404
    assert served.client.get("/playground/../cli.py").status == 404
    status, _, _ = raw_request(port, "GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n")
    assert status == 400
    status, _, _ = raw_request(port, "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
    assert status == 405
    status, _, body = raw_request(port, "GET /health-check HTTP/1.1\r\nHost: rebound.example:8393\r\n\r\n")
    assert status == 403 and b"loopback" in body
    evil = served.client.request(
        "POST", "/predictions", {"input": {"prompt": "x"}}, headers={"Origin": "http://evil.example"}
    )
    assert evil.status == 403
    for origin in ("null", f"http://127.0.0.1:{port}.evil.example"):
        refused = served.client.request("POST", "/shutdown", raw=b"", headers={"Origin": origin})
        assert refused.status == 403
    assert served.runner.client.get("/health-check").json["status"] == "READY"
    same = served.client.request(
        "POST", "/predictions", {"input": {"prompt": "x"}}, headers={"Origin": f"http://127.0.0.1:{port}"}
    )
    assert same.status == 200


def test_without_playground_only_the_api_is_served(serve):
    served = serve("echo", playground=False)
    assert served.client.request("GET", "/", headers={"Accept": "text/html"}).json["openapi_url"] == "/openapi.json"
    assert served.client.get("/playground").status == 404
    assert served.client.get("/playground/app.js").status == 404


def test_model_not_up_yet_is_a_502():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead_port = sock.getsockname()[1]
    with Proxy(dead_port, "127.0.0.1", 0) as proxy:
        status, _, body = raw_request(proxy.port, "GET /health-check HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert status == 502 and b"not answering" in body
        status, _, _ = raw_request(proxy.port, "GET /playground HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert status == 200  # the page loads and waits for the model


def test_parse_listen():
    assert parse_listen(None) == Listen("127.0.0.1", 8393)
    assert parse_listen("9000") == Listen("127.0.0.1", 9000)
    assert parse_listen("0.0.0.0:80") == Listen("0.0.0.0", 80)
    assert parse_listen("[::1]:7000") == Listen("::1", 7000)
    for bad in ("x", "1:2:3x", "70000", ":80"):
        with pytest.raises(UserInputError):
            parse_listen(bad)
