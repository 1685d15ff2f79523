"""A layer cache in a registry shared by a fleet (issue 20): two stores stand for two machines, one local registry.

Machine A builds the hello-world example (every layer made from its downloads), pushes it and publishes its layers
to the cache repository. Machine B, with an empty store, builds the same project: no layer is made, no layer byte
is uploaded (each is mounted from the cache repository or already there) and the digest is the same. A cache entry
whose blob bytes or claim are wrong is detected and the layer is built instead; a read-only cache is never written.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

import ocibuild.oci.layer as layer_module
import ocibuild.run.buildrun as buildrun
from ocibuild.cog.build import BuildOptions, build_project
from ocibuild.errors import BuildError
from ocibuild.oci import Store
from ocibuild.oci.layer import LayerBlob
from ocibuild.oci.mediatypes import OCI_LAYER_GZIP, OCI_LAYER_ZSTD, OCI_MANIFEST
from ocibuild.registry import Credentials, Recorder, push
from ocibuild.registry.known import KnownBlobs
from ocibuild.registry.layer_cache import CacheEntryError, LayerCache, cache_tag, entry_manifest, parse_entry
from ocibuild.reproducible import verify_reproducible
from tests.helpers import seed_store
from tests.registry.registry_helpers import PASSWORD, USER, start_registry
from tests.reproducible.conftest import EXAMPLES, copy_project

SDE = 1_700_000_000
pytestmark = pytest.mark.integration


@dataclass
class Published:
    """What machine A left behind: the registry, the cache repository, A's image and the entries it published."""

    registry: object
    cache_repo: str
    project: Path
    digest: str
    entries: dict[str, LayerBlob]


@pytest.fixture(scope="module")
def published(tmp_path_factory, shared_cache) -> Published:
    base = tmp_path_factory.mktemp("machine-a")
    with start_registry(base / "registry") as registry:
        project = copy_project(EXAMPLES / "hello-world", base / "project")
        store = Store(seed_store(shared_cache, base / "store"))  # downloads only: every layer is made here
        cache_repo = f"{registry.host}/fleet/cache"
        cache = LayerCache(cache_repo, store, known=KnownBlobs(base / "known.json"))
        result = build_project(
            project / "cog.yaml", BuildOptions(store=store, source_date_epoch=SDE, layer_cache=cache)
        )
        entries = cache.pending
        assert set(entries.values()) >= set(result.target.layers), "every layer A made is offered to the cache"
        ref = f"{registry.host}/fleet/model-a:v1"
        push(result.target, [ref], known_blobs_file=base / "known.json", progress=Recorder())
        assert cache.publish_pending([ref]) == len(entries) and not cache.pending
        assert cache.stats.uploaded_bytes == len(b"{}"), "layers are mounted from the image just pushed"
        yield Published(registry, cache_repo, project, result.digest, entries)


class _Counter:
    def __init__(self, monkeypatch) -> None:
        self.layers = 0
        real = layer_module.write_layer

        def counting(*args, **kwargs):
            self.layers += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(layer_module, "write_layer", counting)


def _machine_b(published: Published, tmp_path: Path, monkeypatch, **cache_options):
    """A fresh machine: an empty store, its own checkout; returns (result, cache, layers written, warnings)."""
    project = copy_project(published.project, tmp_path / "project-b")
    store = Store(tmp_path / "store-b")
    warnings: list[str] = []
    cache = LayerCache(
        published.cache_repo, store, known=KnownBlobs(tmp_path / "known-b.json"), warn=warnings.append, **cache_options
    )
    counter = _Counter(monkeypatch)
    result = build_project(project / "cog.yaml", BuildOptions(store=store, source_date_epoch=SDE, layer_cache=cache))
    cache.known.save()
    return result, cache, counter.layers, warnings


def test_a_fresh_machine_builds_and_pushes_what_another_published_without_making_or_uploading_a_layer(
    published, tmp_path, monkeypatch
):
    result, cache, written, warnings = _machine_b(published, tmp_path, monkeypatch)
    assert result.digest == published.digest
    assert written == 0, "no layer is materialised on machine B"
    assert cache.stats.hits == len(published.entries) and cache.stats.misses == 0 and not warnings, warnings
    assert not cache.pending, "nothing new to publish"

    recorder = Recorder()
    push(
        result.target,
        [f"{published.registry.host}/fleet/model-b:v1"],
        progress=recorder,
        known_blobs_file=tmp_path / "known-b.json",
    )
    layer_outcomes = {recorder.outcomes[layer.digest] for layer in result.target.layers}
    assert layer_outcomes <= {"mounted", "exists"}, recorder.outcomes
    assert "uploaded" not in layer_outcomes


def _blob_file(registry, digest: str) -> Path:
    hexa = digest.split(":", 1)[1]
    return (
        Path(registry.root) / "storage" / "docker" / "registry" / "v2" / "blobs" / "sha256" / hexa[:2] / hexa / "data"
    )


def _smallest(published: Published) -> tuple[str, LayerBlob]:
    return min(published.entries.items(), key=lambda item: item[1].size)


def test_a_corrupted_blob_in_the_cache_is_detected_and_the_layer_rebuilt(published, tmp_path, monkeypatch):
    key, layer = _smallest(published)
    path = _blob_file(published.registry, layer.digest)
    original = path.read_bytes()
    path.write_bytes(bytes([original[0] ^ 0xFF]) + original[1:])  # same size, other bytes
    try:
        result, cache, written, warnings = _machine_b(published, tmp_path, monkeypatch)
    finally:
        path.write_bytes(original)
    assert result.digest == published.digest
    assert written == 1 and cache.stats.rejected == 1 and cache.stats.hits == len(published.entries) - 1
    assert any(layer.digest[:19] in w and "expected" in w for w in warnings), warnings
    assert list(cache.pending) == [key], "the rebuilt layer is offered again"


def _put_entry(published: Published, key: str, data: bytes) -> None:
    request = urllib.request.Request(
        f"http://{published.registry.host}/v2/fleet/cache/manifests/{cache_tag(key)}",
        data=data,
        method="PUT",
        headers={"Content-Type": OCI_MANIFEST},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 201


@pytest.mark.parametrize("lie", ["wrong size", "another key", "not an entry"])
def test_an_entry_that_claims_a_wrong_digest_or_size_or_key_is_rejected_and_the_layer_rebuilt(
    published, tmp_path, monkeypatch, lie
):
    key, layer = _smallest(published)
    other_key, other = max(published.entries.items(), key=lambda item: item[1].size)
    # (A digest the registry does not hold cannot be claimed: it refuses the manifest, MANIFEST_BLOB_UNKNOWN.)
    if lie == "wrong size":  # another layer the registry holds, under this key's size
        claimed = LayerBlob(layer.diff_id, other.digest, layer.size, layer.media_type, layer.path)
        data = entry_manifest(key, claimed)
    elif lie == "another key":  # a valid entry, but for another key, tagged as this one
        data = entry_manifest(other_key, other)
    else:  # an image manifest of the same layer, without the claim's annotations
        doc = json.loads(entry_manifest(key, layer))
        del doc["annotations"]
        data = json.dumps(doc).encode()
    _put_entry(published, key, data)
    try:
        result, cache, written, warnings = _machine_b(published, tmp_path, monkeypatch)
    finally:
        _put_entry(published, key, entry_manifest(key, layer))
    assert result.digest == published.digest
    assert written == 1 and cache.stats.rejected == 1, (written, cache.stats, warnings)
    assert len(warnings) == 1 and "building the layer" in warnings[0], warnings


def _tags(published: Published, repository: str) -> list[str]:
    url = f"http://{published.registry.host}/v2/{repository}/tags/list"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return json.loads(response.read()).get("tags") or []
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return []
        raise


def test_a_read_only_cache_is_used_but_never_written(published, tmp_path, monkeypatch):
    before = sorted(_tags(published, "fleet/cache"))
    project = copy_project(published.project, tmp_path / "project-b")
    predict = project / "predict.py"
    predict.write_text(predict.read_text() + "\n# an untrusted branch's edit\n")
    store = Store(tmp_path / "store-b")
    warnings: list[str] = []
    cache = LayerCache(published.cache_repo, store, readonly=True, warn=warnings.append)
    counter = _Counter(monkeypatch)
    result = build_project(project / "cog.yaml", BuildOptions(store=store, source_date_epoch=SDE, layer_cache=cache))
    assert result.digest != published.digest
    assert counter.layers == 1 and cache.stats.misses == 1, "only the changed code layer is made"
    assert cache.stats.hits == len(published.entries) - 1 and not warnings, warnings
    assert not cache.pending and cache.publish_pending([]) == 0
    code = result.target.layers[-1]
    assert not cache.publish("some key", code)
    assert sorted(_tags(published, "fleet/cache")) == before, "the read-only cache was written"


def test_an_unreachable_cache_is_a_warning_and_turns_itself_off(tmp_path):
    with start_registry(tmp_path / "gone") as registry:
        host = registry.host
    warnings: list[str] = []
    cache = LayerCache(f"{host}/fleet/cache", Store(tmp_path / "store"), warn=warnings.append)
    assert cache.lookup("any key") is None and cache.lookup("another key") is None
    assert len(warnings) == 1 and "building without the cache" in warnings[0], warnings


def test_cache_repo_names_a_repository():
    with pytest.raises(ValueError, match="without a tag"):
        LayerCache("127.0.0.1:5000/fleet/cache:v1", Store.__new__(Store))


def test_the_cli_takes_the_cache_repo_from_the_environment(monkeypatch):
    from ocibuild.cli import make_parser

    monkeypatch.setenv("OCIBUILD_CACHE_REPO", "registry.example/team/cache")
    args = make_parser().parse_args(["build", ".", "--cache-repo-readonly"])
    assert args.cache_repo == "registry.example/team/cache" and args.cache_repo_readonly
    assert make_parser().parse_args(["build", ".", "--cache-repo", "r.example/c"]).cache_repo == "r.example/c"


def _layer(media_type: str = OCI_LAYER_GZIP) -> LayerBlob:
    return LayerBlob("sha256:" + "1" * 64, "sha256:" + "2" * 64, 10, media_type, Path("/nonexistent"), 20)


def test_an_entry_is_a_claim_for_one_key_and_its_compression():
    key = "python-dists/2|torch|gzip|sde=0"
    claim = parse_entry(entry_manifest(key, _layer()), key)
    assert (claim.digest, claim.size, claim.diff_id, claim.uncompressed_size) == (
        "sha256:" + "2" * 64,
        10,
        "sha256:" + "1" * 64,
        20,
    )
    with pytest.raises(CacheEntryError, match="another key"):
        parse_entry(entry_manifest(key, _layer()), key.replace("torch", "numpy"))
    with pytest.raises(CacheEntryError, match="gzip key"):
        parse_entry(entry_manifest(key, _layer(OCI_LAYER_ZSTD)), key)
    with pytest.raises(CacheEntryError, match="not a layer cache entry"):
        parse_entry(b"[]", key)


def test_the_tag_of_a_key_is_a_valid_tag_that_names_the_compressors(monkeypatch):
    import ocibuild.registry.layer_cache as layer_cache

    tag = cache_tag("any | key / with : odd characters " * 20)
    assert len(tag) <= 128 and tag.replace("-", "").isalnum()
    before = cache_tag("k")
    monkeypatch.setattr(layer_cache, "compressors", lambda: "isal==9.9,zstandard==0.25.0")
    assert cache_tag("k") != before, "another compressor build never shares an entry"


def test_publish_and_lookup_through_a_registry_that_wants_credentials(auth_registry, make_image, store, tmp_path):
    layer = make_image(31, layers=1).layers[0]
    key = "test-layer/1|seed=31|gzip|sde=0"
    repo = f"{auth_registry.host}/fleet/cache"
    writer = LayerCache(repo, store, credentials=Credentials(USER, PASSWORD))
    writer.built(key, layer)
    assert writer.publish_pending() == 1 and writer.stats.published == 1

    fresh = Store(tmp_path / "fresh")
    warnings: list[str] = []
    anonymous = LayerCache(repo, fresh, warn=warnings.append)
    assert anonymous.lookup(key) is None and len(warnings) == 1, "no credentials: a warning, never a failure"

    reader = LayerCache(repo, fresh, credentials=Credentials(USER, PASSWORD), readonly=True)
    found = reader.lookup(key)
    assert found == LayerBlob(
        layer.diff_id,
        layer.digest,
        layer.size,
        layer.media_type,
        fresh.blob_path(layer.digest),
        layer.uncompressed_size,
    )
    assert fresh.blob_path(layer.digest).read_bytes() == layer.path.read_bytes()
    assert reader.stats.downloaded_bytes == layer.size
    assert reader.lookup(key.replace("seed=31", "seed=32")) is None and reader.stats.misses == 1

    fresh.offline = True
    assert reader.lookup(key) is None, "--offline never asks the cache"


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "ocibuild", *args], capture_output=True, text=True, env=env, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_the_cli_builds_from_the_cache_mounts_on_push_and_publishes_what_it_made(published, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("OCIBUILD_CACHE", "SOURCE_DATE_EPOCH")}
    env["OCIBUILD_CACHE_REPO"] = published.cache_repo
    host = published.registry.host
    common = ["--progress", "plain", "--source-date-epoch", str(SDE), "--push"]

    project = copy_project(published.project, tmp_path / "project")
    same = _cli(
        "build", str(project), "--cache-dir", str(tmp_path / "b"), "-t", f"{host}/cli/same:v1", *common, env=env
    )
    assert same.stdout.strip().endswith(published.digest)
    outcomes = re.findall(r"^[0-9a-f]{12}: (\w+)", same.stderr, re.M)
    assert outcomes.count("uploaded") == 1 and outcomes.count("mounted") == len(outcomes) - 1, same.stderr  # config
    assert "published" not in same.stderr and "warning" not in same.stderr, same.stderr

    plan = _cli(
        "plan", str(project), "--json", "--cache-dir", str(tmp_path / "p"), "--source-date-epoch", str(SDE), env=env
    )
    steps = [step for platform in json.loads(plan.stdout)["platforms"] for step in platform["steps"] if step.get("key")]
    assert {step["cache"] for step in steps} == {layer.digest for layer in published.entries.values()}

    (project / "predict.py").write_text((project / "predict.py").read_text() + "\n# a new commit\n")
    before = set(_tags(published, "fleet/cache"))
    changed = _cli(
        "build", str(project), "--cache-dir", str(tmp_path / "c"), "-t", f"{host}/cli/changed:v1", *common, env=env
    )
    assert "published 1 layer(s)" in changed.stderr, changed.stderr
    assert len(set(_tags(published, "fleet/cache")) - before) == 1

    readonly = _cli(
        "build",
        str(project),
        "--cache-dir",
        str(tmp_path / "d"),
        "--cache-repo-readonly",
        "-o",
        str(tmp_path / "layout"),
        "--progress",
        "plain",
        "--source-date-epoch",
        str(SDE),
        env=env,
    )
    assert readonly.stdout.strip().endswith(changed.stdout.strip().rsplit("@", 1)[1])
    assert "published" not in readonly.stderr and "materialising" in readonly.stderr


def test_build_run_layers_come_from_the_cache_without_running_the_command(shared_cache, tmp_path, monkeypatch):
    project = copy_project(EXAMPLES / "hello-world", tmp_path / "project-a")
    cog_yaml = project / "cog.yaml"
    cog_yaml.write_text(cog_yaml.read_text().replace("build:\n", 'build:\n  run:\n    - "echo fleet > /fleet.txt"\n'))
    with start_registry(tmp_path / "registry") as registry:
        repo = f"{registry.host}/fleet/cache"
        store_a = Store(seed_store(shared_cache, tmp_path / "store-a"))
        cache_a = LayerCache(repo, store_a)
        a = build_project(cog_yaml, BuildOptions(store=store_a, source_date_epoch=SDE, layer_cache=cache_a))
        made = len(cache_a.pending)
        assert made >= len(a.target.layers), "every layer, the build.run one included, is offered to the cache"
        assert cache_a.publish_pending() == made

        project_b = copy_project(project, tmp_path / "project-b")  # with the lock A wrote (its toolbox too)
        store_b = Store(tmp_path / "store-b")
        cache_b = LayerCache(repo, store_b)
        counter = _Counter(monkeypatch)

        def never(*args, **kwargs):
            raise AssertionError("a build.run command ran on machine B")

        monkeypatch.setattr(buildrun, "_run_one", never)
        b = build_project(
            project_b / "cog.yaml", BuildOptions(store=store_b, source_date_epoch=SDE, layer_cache=cache_b)
        )
    assert b.digest == a.digest and counter.layers == 0 and cache_b.stats.misses == 0


def test_a_well_formed_lie_is_only_caught_by_rebuilding_and_verify_reproducible_catches_it(
    published, shared_cache, tmp_path, monkeypatch
):
    """The threat model's limit: an entry that names another real layer (right digest, size and diff_id for *that*
    layer) passes every check, so whoever may write the cache decides the layer. --verify-reproducible rebuilds
    every layer without the cache and names the difference."""
    key, layer = _smallest(published)
    _, other = max(published.entries.items(), key=lambda item: item[1].size)
    _put_entry(published, key, entry_manifest(key, other))
    try:
        result, cache, written, warnings = _machine_b(published, tmp_path, monkeypatch)
        assert result.digest != published.digest and written == 0 and not warnings, "the lie went through"
        downloads = Store(seed_store(shared_cache, tmp_path / "downloads"))  # the rebuild reads no network
        options = BuildOptions(store=downloads, source_date_epoch=SDE, offline=True, layer_cache=cache)
        with pytest.raises(BuildError, match="not reproducible: layer"):
            verify_reproducible(tmp_path / "project-b" / "cog.yaml", options, result)
    finally:
        _put_entry(published, key, entry_manifest(key, layer))
