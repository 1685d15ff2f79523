"""A top-level ``-> File`` returning an IO object comes back as one file (data URI or upload), not its lines."""

from __future__ import annotations

import base64

import pytest

from tests.runner.harness import with_generated_schema

CASES = [
    ("bytesio", "application/octet-stream", b"line one\nline two\n"),
    ("text", "application/octet-stream", b"text one\ntext two\n"),
    ("spooled", "application/octet-stream", b"spooled\nbytes\n"),
    ("opened", "text/plain", b"named\nfile\n"),
    ("named", "text/plain", b"named\nfile\n"),
]


@pytest.fixture
def directory(tmp_path):
    return with_generated_schema("fileoutputs", tmp_path)


@pytest.mark.parametrize(("kind", "mime", "data"), CASES)
def test_file_object_output_is_a_data_uri(start_server, directory, kind, mime, data):
    body = start_server(directory).client.predict({"kind": kind}).json
    assert body["status"] == "succeeded", body
    assert body["output"] == f"data:{mime};base64,{base64.b64encode(data).decode()}"


@pytest.mark.parametrize(("kind", "mime", "data"), CASES)
def test_file_object_output_is_uploaded(start_server, receiver, directory, kind, mime, data):
    server = start_server(directory, args=("--upload-url", receiver.url + "/upload/"))
    body = server.client.predict({"kind": kind}).json
    assert body["status"] == "succeeded", body
    (upload,) = [item for item in receiver.received if item.method == "PUT"]
    assert body["output"] == f"{receiver.url}/stored{upload.path}"
    assert (upload.body, upload.headers["content-type"]) == (data, mime)
