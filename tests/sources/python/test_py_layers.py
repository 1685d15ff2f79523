"""Grouping locked distributions into layers, and the layers' identity across projects (no network)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from ocibuild.oci.store import Store
from ocibuild.sources.python import PythonTarget, group_distributions, pip_freeze, python_layers, python_recipes

from .conftest import unpack_layers

SITE = "usr/local/lib/python3.11/dist-packages"


def dist(name: str, size: int, sha: str = "") -> dict:
    return {"name": name, "version": "1.0", "kind": "wheel", "sha256": sha or name, "size": size}


def test_large_distributions_get_their_own_layer_small_ones_share_one() -> None:
    dists = [dist("torch", 200 << 20), dist("six", 10_000), dist("nvidia-cudnn-cu12", 600 << 20), dist("idna", 1)]
    groups = group_distributions(dists, large_threshold=50 << 20)
    assert [g.name for g in groups] == [
        "python: nvidia-cudnn-cu12==1.0",
        "python: torch==1.0",
        "python: 2 distribution(s)",
    ]
    assert [d["name"] for d in groups[-1].distributions] == ["idna", "six"]


def test_the_layer_key_is_the_wheel_and_the_target_paths() -> None:
    torch = group_distributions([dist("torch", 200 << 20, "abc")], 1)[0]
    same = group_distributions([dist("torch", 200 << 20, "abc")], 1)[0]
    assert torch.key(PythonTarget()) == same.key(PythonTarget())
    assert torch.key(PythonTarget()) != torch.key(PythonTarget.for_python("3.13", "2.41"))


def test_pip_freeze_is_sorted_name_version_lines() -> None:
    section = {"distributions": [dist("Zeta", 1), dist("alpha", 1)]}
    assert pip_freeze(section) == "alpha==1.0\nZeta==1.0"


def _local(project: Path, wheel: Path) -> dict:
    data = wheel.read_bytes()
    name, version = wheel.name.split("-")[:2]
    rel = wheel.relative_to(project).as_posix()
    entry = {"name": name, "version": version, "kind": "wheel", "filename": wheel.name, "path": rel}
    return entry | {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


def test_shared_wheels_share_layer_digests_across_projects(tmp_path: Path, make_wheel, names_in) -> None:
    store = Store(tmp_path / "store")
    big_payload = {"big/__init__.py": b"", "big/blob.bin": bytes(range(256)) * 400}
    projects = {}
    for project, small_version in (("a", "1.0"), ("b", "2.0")):
        root = tmp_path / project
        root.mkdir()
        big = make_wheel(root, "big", "1.0", big_payload)
        small = make_wheel(root, "small", small_version, {"small/__init__.py": small_version.encode()})
        projects[project] = (root, {"distributions": [_local(root, big), _local(root, small)]})

    layers = {
        p: python_layers(section, PythonTarget(), store, 1700000000, 50_000, project_dir=root)
        for p, (root, section) in projects.items()
    }
    (big_a, small_a), (big_b, small_b) = (dict(layers["a"]).values(), dict(layers["b"]).values())
    assert big_a.digest == big_b.digest  # the same wheel: byte for byte the same layer
    assert small_a.digest != small_b.digest  # the changed requirement touches only its own layer
    assert f"{SITE}/big/blob.bin" in names_in(big_a)
    assert f"{SITE}/small/__init__.py" not in names_in(big_a)

    hits = store.stats.key_hits
    again = python_layers(projects["a"][1], PythonTarget(), store, 1700000000, 50_000, project_dir=projects["a"][0])
    assert [layer.digest for _, layer in again] == [big_a.digest, small_a.digest]
    assert store.stats.key_hits == hits + 2


def test_layers_are_reproducible_in_a_fresh_store(tmp_path: Path, make_wheel) -> None:
    root = tmp_path / "p"
    root.mkdir()
    section = {"distributions": [_local(root, make_wheel(root, "demo", "1.0", {"demo/__init__.py": b"x"}))]}
    first = python_layers(section, PythonTarget(), Store(tmp_path / "s1"), 0, project_dir=root)
    second = python_layers(section, PythonTarget(), Store(tmp_path / "s2"), 0, project_dir=root)
    assert [layer.digest for _, layer in first] == [layer.digest for _, layer in second]


def test_no_distributions_no_layers(tmp_path: Path) -> None:
    assert python_layers({"distributions": []}, PythonTarget(), Store(tmp_path), 0) == []


def _big_project(tmp_path: Path, make_wheel) -> tuple[Path, dict]:
    root = tmp_path / "p"
    root.mkdir()
    payload = {f"big/m{i:02}.bin": bytes([i]) * 20_000 for i in range(12)} | {"big/__init__.py": b""}
    small = make_wheel(root, "small", "1.0", {"small/__init__.py": b"s"})
    wheels = [make_wheel(root, "big", "1.0", payload), small]
    return root, {"distributions": [_local(root, w) for w in wheels]}


def test_max_layer_size_splits_a_large_wheel_into_parts_keyed_by_the_size(tmp_path: Path, make_wheel) -> None:
    root, section = _big_project(tmp_path, make_wheel)
    store = Store(tmp_path / "store")
    whole = python_layers(section, PythonTarget(), store, 0, 1000, project_dir=root)
    split = python_layers(section, PythonTarget(), store, 0, 1000, project_dir=root, max_layer_size=100_000)
    other = python_layers(section, PythonTarget(), store, 0, 1000, project_dir=root, max_layer_size=50_000)
    assert [name for name, _ in split] == [
        "python: big==1.0 (part 1/3)",
        "python: big==1.0 (part 2/3)",
        "python: big==1.0 (part 3/3)",
        "python: 1 distribution(s)",
    ]
    assert split[-1][1].digest == whole[-1][1].digest
    fits = python_layers(section, PythonTarget(), store, 0, 1000, project_dir=root, max_layer_size=1 << 30)
    assert fits == whole  # a wheel that fits is the same layer as without the option
    assert len(other) == 7
    small_key = python_recipes(section, PythonTarget(), store, 0, 1000, project_dir=root)[-1][1].key
    keys = {
        size: {
            r.key
            for _, r in python_recipes(section, PythonTarget(), store, 0, 1000, project_dir=root, max_layer_size=size)
        }
        for size in (50_000, 100_000)
    }
    assert keys[50_000] & keys[100_000] == {small_key}  # another size never finds the parts of this one
    assert all(layer.uncompressed_size < 100_000 + (16 << 10) for _, layer in split)  # + headers, padding
    again = python_layers(
        section, PythonTarget(), Store(tmp_path / "s2"), 0, 1000, project_dir=root, max_layer_size=100_000
    )
    assert [layer.digest for _, layer in again] == [layer.digest for _, layer in split]


def test_split_parts_unpack_to_the_unsplit_tree(tmp_path: Path, make_wheel) -> None:
    root, section = _big_project(tmp_path, make_wheel)
    store = Store(tmp_path / "store")
    whole = unpack_layers(python_layers(section, PythonTarget(), store, 0, 1000, project_dir=root), tmp_path / "a")
    split = python_layers(section, PythonTarget(), store, 0, 1000, project_dir=root, max_layer_size=100_000)
    parts = unpack_layers(split, tmp_path / "b")
    assert _tree(parts) == _tree(whole)


def _tree(root: Path) -> dict[str, tuple[int, str]]:
    return {
        p.relative_to(root).as_posix(): (
            p.lstat().st_mode,
            hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "",
        )
        for p in sorted(root.rglob("*"))
    }
