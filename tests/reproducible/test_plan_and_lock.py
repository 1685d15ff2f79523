"""The plan and the complete lock: layers that survive commits, pinned bases, --locked CI, `ocibuild plan`."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.reproducible.conftest import EXAMPLES, base_env, copy_project, digest_of, ocibuild
from tests.sources.python.conftest import build_wheel_file

REPO = Path(__file__).resolve().parents[2]


def _layers(layout: Path) -> dict[str, str]:
    """Layer name (the history comment) -> digest of the single image in ``layout``."""
    index = json.loads((layout / "index.json").read_text())
    manifest = _blob(layout, index["manifests"][0]["digest"])
    config = _blob(layout, manifest["config"]["digest"])
    names = [h["comment"] for h in config["history"] if not h.get("empty_layer")]
    return dict(zip(names, [layer["digest"] for layer in manifest["layers"]], strict=True))


def _blob(layout: Path, digest: str) -> dict:
    return json.loads((layout / "blobs" / "sha256" / digest.split(":", 1)[1]).read_text())


def _warm_store(warm_hello, tmp_path: Path) -> Path:
    warm_store, _, _ = warm_hello
    root = tmp_path / "store"
    shutil.copytree(warm_store, root, copy_function=lambda s, d: Path(d).hardlink_to(s))
    return root


def _git(project: Path, *args: str, when: int) -> None:
    env = {**base_env(), "GIT_AUTHOR_DATE": f"@{when}", "GIT_COMMITTER_DATE": f"@{when}"}
    env.update(GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.com", GIT_COMMITTER_NAME="t")
    env["GIT_COMMITTER_EMAIL"] = "t@example.com"
    subprocess.run(["git", "-C", str(project), *args], check=True, capture_output=True, env=env)


@pytest.mark.integration
def test_a_commit_touching_only_readme_changes_only_the_code_layer(warm_hello, tmp_path: Path) -> None:
    store = _warm_store(warm_hello, tmp_path)
    project = copy_project(warm_hello[1], tmp_path / "project")
    (project / "README.md").write_text("# hello\n")
    _git(project, "init", "-q", when=1_700_000_000)
    _git(project, "add", "-A", when=1_700_000_000)
    _git(project, "commit", "-qm", "first", when=1_700_000_000)
    first = digest_of(ocibuild(str(project), "--cache-dir", str(store), "-o", str(tmp_path / "a"), "--offline"))

    (project / "README.md").write_text("# hello, again\n")
    _git(project, "commit", "-qam", "docs", when=1_800_000_000)
    second = digest_of(ocibuild(str(project), "--cache-dir", str(store), "-o", str(tmp_path / "b"), "--offline"))

    before, after = _layers(tmp_path / "a"), _layers(tmp_path / "b")
    assert first != second and list(before) == list(after)
    assert [name for name in before if before[name] != after[name]] == ["code"]


@pytest.mark.integration
def test_two_projects_at_different_commit_times_share_their_pinned_layers(warm_hello, tmp_path: Path) -> None:
    store = _warm_store(warm_hello, tmp_path)
    layouts = []
    for name, epoch in (("one", "1600000000"), ("two", "1900000000")):
        project = copy_project(warm_hello[1], tmp_path / name)
        (project / "wheels").mkdir()
        build_wheel_file(project / "wheels", "localpkg", "0.3", {"localpkg/__init__.py": b"VALUE = 3\n"})
        (project / "requirements.txt").write_text("wheels/localpkg-0.3-py3-none-any.whl\n")
        cog = (project / "cog.yaml").read_text()
        (project / "cog.yaml").write_text(cog.replace("build:\n", "build:\n  python_requirements: requirements.txt\n"))
        (project / "predict.py").write_text((project / "predict.py").read_text() + f"\n# {name}\n")
        layout = tmp_path / f"{name}-image"
        env = base_env(SOURCE_DATE_EPOCH=epoch)
        digest_of(ocibuild(str(project), "--cache-dir", str(store), "-o", str(layout), env=env))
        layouts.append(_layers(layout))
    one, two = layouts
    shared = [name for name in one if one[name] == two.get(name)]
    assert shared == [name for name in one if name != "code"], (one, two)
    assert any(name.startswith("python: ") for name in shared) and "runner" in shared
    assert one["code"] != two["code"]


def _tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


@pytest.mark.integration
def test_lock_pins_the_base_in_the_project_and_writes_nothing_else(tmp_path: Path) -> None:
    project = copy_project(EXAMPLES / "hello-world", tmp_path / "project")
    (project / "ocibuild.lock").unlink()
    watched = {name: _tree_digest(REPO / name) for name in ("ocibuild", "base-images", "layers")}
    result = ocibuild("lock", str(project), "--cache-dir", str(tmp_path / "store"))
    assert result.returncode == 0, result.stderr
    assert {name: _tree_digest(REPO / name) for name in watched} == watched
    lock = json.loads((project / "ocibuild.lock").read_text())
    base = lock["base"]["linux/amd64"]
    assert base["name"] == "bookworm-py3.11" and base["archives"][0]["inrelease"].startswith("sha256:")
    assert all(len(p["sha256"]) == 64 for p in base["packages"])
    assert {"debian", "python", "runner", "tar"} <= set(lock["recipes"])


def test_locked_refuses_a_missing_or_stale_lock_naming_the_difference(tmp_path: Path) -> None:
    project = copy_project(EXAMPLES / "hello-world", tmp_path / "project")
    store = str(tmp_path / "store")
    lock = (project / "ocibuild.lock").read_text()

    (project / "ocibuild.lock").unlink()
    missing = ocibuild(str(project), "--cache-dir", store, "--locked")
    assert missing.returncode == 2 and missing.stderr.strip().splitlines()[-1] == (
        "error: ocibuild.lock: missing; --locked builds need a lock (run 'ocibuild lock')"
    )

    (project / "ocibuild.lock").write_text(lock)
    (project / "requirements.txt").write_text("requests==2.32.3\n")
    cog = (project / "cog.yaml").read_text()
    (project / "cog.yaml").write_text(cog.replace("build:\n", "build:\n  python_requirements: requirements.txt\n"))
    stale = ocibuild("plan", str(project), "--cache-dir", store, "--locked")
    assert stale.returncode == 2, stale.stderr
    assert stale.stderr.strip().splitlines()[-1] == (
        "error: ocibuild.lock: --locked, but its Python distributions for linux/amd64 do not match "
        "requirements.txt; run 'ocibuild lock'"
    )
    assert (project / "ocibuild.lock").read_text() == lock

    old = json.loads(lock)
    old["version"] = 1
    del old["base"], old["recipes"]
    (project / "ocibuild.lock").write_text(json.dumps(old))
    (project / "cog.yaml").write_text(cog)
    upgraded = ocibuild("plan", str(project), "--cache-dir", store, "--locked")
    assert upgraded.returncode == 2
    assert "--locked, but it has no base for linux/amd64" in upgraded.stderr


@pytest.mark.integration  # resolves the Python distributions for linux/arm64 (PyPI)
def test_a_build_without_locked_logs_every_lock_change(tmp_path: Path) -> None:
    project = copy_project(EXAMPLES / "hello-world", tmp_path / "project")
    result = ocibuild(
        "plan", str(project), "--cache-dir", str(tmp_path / "store"), "--platform", "linux/amd64",
        "--platform", "linux/arm64",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "ocibuild.lock: base: +linux/arm64" in result.stderr
    assert "ocibuild.lock: python: +linux/arm64" in result.stderr


@pytest.mark.parametrize("name", sorted(p.parent.name for p in EXAMPLES.glob("*/cog.yaml")))
def test_plan_json_names_every_layer_with_its_key_and_stamping(name: str, tmp_path: Path) -> None:
    project = copy_project(EXAMPLES / name, tmp_path / "project")
    result = ocibuild("plan", str(project), "--json", "--offline", "--cache-dir", str(tmp_path / "store"))
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["lock_changes"] == [], "the committed lock is complete"
    gpu = yaml.safe_load((project / "cog.yaml").read_text())["build"].get("gpu", False)
    compression = "zstd:chunked" if gpu else "gzip"  # the default follows the cold-start measurements
    assert plan["compression"] == compression
    (platform,) = plan["platforms"]
    steps = platform["steps"]
    names = [s["name"] for s in steps]
    assert names[0] == "base" and names[-3:] == ["runner", "code", "weights"]
    for step in steps:
        assert step["stamping"] == (
            "project" if step["name"] in ("code",) or step["name"].startswith("run-") else "pinned"
        )
        if step["name"] != "weights" and not step["name"].startswith("run-"):
            sde = 0 if step["stamping"] == "pinned" else plan["source_date_epoch"]
            assert step["key"].endswith(f"|{compression}|sde={sde}")
            assert step["digest"] is None, "an empty store holds no layer"
    assert (
        not (project / ".ocibuild").exists()
        and (project / "ocibuild.lock").read_bytes() == (EXAMPLES / name / "ocibuild.lock").read_bytes()
    )


@pytest.mark.integration
def test_an_explicit_compression_wins_over_the_gpu_default(tmp_path: Path) -> None:
    project = copy_project(EXAMPLES / "gpu-torch", tmp_path / "project")
    store = str(tmp_path / "store")
    chosen = {}
    for given in ("gzip", "zstd"):
        result = ocibuild("plan", str(project), "--json", "--offline", "--cache-dir", store, "--compression", given)
        assert result.returncode == 0, result.stderr
        chosen[given] = json.loads(result.stdout)["compression"]
    assert chosen == {"gzip": "gzip", "zstd": "zstd"}


@pytest.mark.integration
def test_plan_shows_the_digests_the_store_holds(warm_hello, tmp_path: Path) -> None:
    store, project, _ = warm_hello
    result = ocibuild("plan", str(project), "--json", "--offline", "--cache-dir", str(store))
    assert result.returncode == 0, result.stderr
    steps = json.loads(result.stdout)["platforms"][0]["steps"]
    assert all(s["digest"].startswith("sha256:") for s in steps if s["name"] in ("base", "runner", "code"))


def test_a_python_patch_the_debian_base_lacks_is_said_not_dropped(tmp_path: Path) -> None:
    project = copy_project(EXAMPLES / "hello-world", tmp_path / "project")
    cog = (project / "cog.yaml").read_text()
    (project / "cog.yaml").write_text(cog.replace('python_version: "3.11"', 'python_version: "3.11.9"'))
    result = ocibuild("plan", str(project), "--offline", "--cache-dir", str(tmp_path / "store"))
    assert result.returncode == 0, result.stderr
    assert "warning: cog.yaml: python_version 3.11.9: bookworm-py3.11 ships Debian's Python 3.11.2" in result.stderr


TORCH_CPU_WHEEL = Path("/opt/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl")


@pytest.mark.skipif(not TORCH_CPU_WHEEL.is_file(), reason="needs the torch CPU wheel the torch-cpu example locks")
def test_plan_shows_a_split_wheel_as_parts_keyed_by_the_size(tmp_path: Path) -> None:
    project = copy_project(EXAMPLES / "torch-cpu", tmp_path / "project")

    def steps(*args: str) -> dict[str, str]:
        result = ocibuild("plan", str(project), "--json", "--offline", "--cache-dir", str(tmp_path / "store"), *args)
        assert result.returncode == 0, result.stderr
        return {s["name"]: s.get("key") for s in json.loads(result.stdout)["platforms"][0]["steps"]}

    whole, split, smaller = steps(), steps("--max-layer-size", "256M"), steps("--max-layer-size", "128M")
    torch = "python: torch==2.13.0+cpu"
    parts = [name for name in split if name.startswith(torch)]
    assert parts == [f"{torch} (part {i}/3)" for i in (1, 2, 3)]
    unsplit = whole[torch].removesuffix("|gzip|sde=0")
    assert [split[name] for name in parts] == [f"{unsplit}|split={256 << 20}|part={i}/3|gzip|sde=0" for i in (1, 2, 3)]
    assert {k for n, k in split.items() if n.startswith(torch)}.isdisjoint(smaller.values())
    assert {n: k for n, k in split.items() if n not in parts} == {n: k for n, k in whole.items() if n != torch}
