"""Resolving ``weights:`` entries: project paths, pinned https:// files, hf:// repositories."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ocibuild.errors import BuildError, UserInputError
from ocibuild.oci import Store
from ocibuild.sources.project.weights import WeightsLock, WeightSource, WeightSpec, resolve_weight_specs

from .conftest import make_project

COMMIT = "a" * 40
SERVED = {
    "/files/model.bin": b"model bytes",
    "/api/models/org/repo/revision/main": json.dumps(
        {"sha": COMMIT, "siblings": [{"rfilename": "config.json"}, {"rfilename": "unet/w.safetensors"}]}
    ).encode(),
    f"/org/repo/resolve/{COMMIT}/config.json": b"{}",
    f"/org/repo/resolve/{COMMIT}/unet/w.safetensors": b"safetensors",
}


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def served() -> dict[str, bytes]:
    """What the test server answers (path -> body); a test may change it."""
    return dict(SERVED)


@pytest.fixture
def server(served: dict[str, bytes]) -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = served.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(
        tmp_path / "project",
        {
            "weights/a.safetensors": b"a",
            "weights/b.bin": b"b",
            "weights/sub/c.safetensors": b"c",
            "weights/README.md": b"r",
        },
    )


def resolve(project: Path, store: Store, *sources: WeightSource, target: str = "/src/weights", lock=None):
    return resolve_weight_specs([WeightSpec("model", target, tuple(sources))], project, store, lock)


def paths(sets) -> list[str]:
    return [f.path for f in sets[0].files]


def test_directory_source_with_include_and_exclude(project: Path, store: Store) -> None:
    sets, _ = resolve(project, store, WeightSource("weights", include=("*.safetensors",)))
    assert paths(sets) == ["/src/weights/a.safetensors", "/src/weights/sub/c.safetensors"]
    assert sets[0].project_paths == ("weights",)
    sets, _ = resolve(project, store, WeightSource("file://weights", include=("*.safetensors",), exclude=("sub",)))
    assert paths(sets) == ["/src/weights/a.safetensors"]


def test_single_file_source_keeps_its_name(project: Path, store: Store) -> None:
    sets, _ = resolve(project, store, WeightSource("file://./weights/b.bin"), target="/models")
    assert paths(sets) == ["/models/b.bin"]
    assert sets[0].files[0].source == project / "weights" / "b.bin"


@pytest.mark.parametrize("uri", ["../outside", "file://../outside", "/etc", "weights/../../x"])
def test_source_outside_the_project_is_a_one_line_error(project: Path, store: Store, uri: str) -> None:
    with pytest.raises(UserInputError, match="outside the project") as err:
        resolve(project, store, WeightSource(uri))
    assert "\n" not in str(err.value)


def test_symlink_leading_out_of_the_project_is_an_error(project: Path, store: Store, tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (project / "linked").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(UserInputError, match="leads outside the project"):
        resolve(project, store, WeightSource("linked"))


def test_links_inside_the_project_are_resolved_like_a_hub_cache(project: Path, store: Store) -> None:
    snapshot = project / "hub" / "snapshots" / "abc"
    snapshot.mkdir(parents=True)
    (project / "hub" / "blobs").mkdir()
    (project / "hub" / "blobs" / "0123").write_bytes(b"weights")
    (snapshot / "model.bin").symlink_to("../../blobs/0123")
    sets, _ = resolve(project, store, WeightSource("hub/snapshots/abc"))
    assert paths(sets) == ["/src/weights/model.bin"]
    assert sets[0].files[0].source == project / "hub" / "blobs" / "0123"


def test_reserved_cog_directory_in_a_source_is_refused(project: Path, store: Store) -> None:
    (project / "weights" / ".cog").mkdir()
    (project / "weights" / ".cog" / "ready").write_text("")
    with pytest.raises(UserInputError, match="reserved"):
        resolve(project, store, WeightSource("weights"))


@pytest.mark.parametrize("target", ["/", "relative/dir"])
def test_target_must_be_an_absolute_directory(project: Path, store: Store, target: str) -> None:
    with pytest.raises(UserInputError, match="target"):
        resolve(project, store, WeightSource("weights"), target=target)


def test_two_sources_with_the_same_file_are_refused(project: Path, store: Store) -> None:
    with pytest.raises(UserInputError, match="two sources"):
        resolve(project, store, WeightSource("weights/b.bin"), WeightSource("weights", include=("b.bin",)))


def test_https_file_is_downloaded_pinned_and_verified(project: Path, store: Store, server: str) -> None:
    url = f"{server}/files/model.bin"
    sets, lock = resolve(project, store, WeightSource(url))
    assert lock.urls == {url: sha(b"model bytes")}
    assert sets[0].files[0].digest == sha(b"model bytes")
    assert sets[0].files[0].source.read_bytes() == b"model bytes"
    assert paths(sets) == ["/src/weights/model.bin"]


def test_pinned_https_file_in_the_store_needs_no_network(project: Path, store: Store) -> None:
    digest = store.put_bytes(b"cached")
    url = "https://127.0.0.1:9/never/model.bin"
    sets, _ = resolve(project, store, WeightSource(url), lock=WeightsLock(urls={url: digest}))
    assert sets[0].files[0].digest == digest


def test_https_digest_mismatch_is_a_build_error(project: Path, store: Store, server: str) -> None:
    url = f"{server}/files/model.bin"
    with pytest.raises(BuildError, match="the lock pins sha256:0000"):
        resolve(project, store, WeightSource(url), lock=WeightsLock(urls={url: "sha256:" + "0" * 64}))


def test_unpinned_https_file_with_a_lock_is_a_user_error(project: Path, store: Store) -> None:
    with pytest.raises(UserInputError, match=r"not pinned in ocibuild\.lock"):
        resolve(project, store, WeightSource("https://example.com/m.bin"), lock=WeightsLock())


def test_hf_repository_is_resolved_through_the_hub_api(
    project: Path, store: Store, server: str, served: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_ENDPOINT", server)
    sets, lock = resolve(project, store, WeightSource("hf://org/repo", include=("*.safetensors",)))
    assert paths(sets) == ["/src/weights/unet/w.safetensors"]
    assert lock.hf == {"hf://org/repo": {"commit": COMMIT, "files": ["config.json", "unet/w.safetensors"]}}
    pinned = f"{server}/org/repo/resolve/{COMMIT}/unet/w.safetensors"
    assert lock.urls == {pinned: sha(b"safetensors")}  # files left out by include are never downloaded

    # With the lock, the pinned files come from the store: no Hub, no download.
    offline = WeightsLock.from_dict(json.loads(json.dumps(lock.to_dict())))
    served.clear()
    sets, again = resolve(project, store, WeightSource("hf://org/repo", include=("unet/*",)), lock=offline)
    assert paths(sets) == ["/src/weights/unet/w.safetensors"] and again == offline

    # A file the lock never pinned needs a re-lock.
    with pytest.raises(UserInputError, match=r"not pinned in ocibuild\.lock"):
        resolve(project, store, WeightSource("hf://org/repo"), lock=offline)


def test_hf_unreachable_fails_with_one_line(project: Path, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    with pytest.raises(BuildError, match=r"^weights model: cannot reach the Hugging Face Hub for org/repo@v1") as err:
        resolve(project, store, WeightSource("hf://org/repo@v1"))
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("uri", ["hf://just-a-name", "s3://bucket/key"])
def test_bad_uris_are_user_errors(project: Path, store: Store, uri: str) -> None:
    with pytest.raises(UserInputError):
        resolve(project, store, WeightSource(uri))


def test_lock_section_round_trips_and_rejects_bad_digests() -> None:
    lock = WeightsLock(urls={"https://x/y": sha(b"y")}, hf={"hf://a/b": {"commit": COMMIT, "files": ["f"]}})
    assert WeightsLock.from_dict(lock.to_dict()) == lock
    with pytest.raises(UserInputError, match="not a sha256 digest"):
        WeightsLock.from_dict({"urls": {"https://x/y": "md5:1"}})
