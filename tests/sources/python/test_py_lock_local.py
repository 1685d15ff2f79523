"""Locking with uv without an index: a wheel kept inside the project, and the out-of-date check."""

from __future__ import annotations

from pathlib import Path

import pytest

from ocibuild.errors import BuildError, UserInputError
from ocibuild.oci.store import Store
from ocibuild.sources.python import PythonTarget, check_lock, lock_python, python_layers, read_requirements


@pytest.fixture
def project(tmp_path: Path, make_wheel) -> Path:
    root = tmp_path / "project"
    (root / "wheels").mkdir(parents=True)
    make_wheel(root / "wheels", "localpkg", "0.3", {"localpkg/__init__.py": b"VALUE = 3\n"})
    (root / "requirements.txt").write_text("wheels/localpkg-0.3-py3-none-any.whl\n")
    return root


def test_a_project_wheel_is_locked_by_project_path(project: Path, tmp_path: Path, unpack) -> None:
    reqs = read_requirements(project, "requirements.txt")
    section = lock_python(reqs, PythonTarget())
    (entry,) = section["distributions"]
    assert entry["path"] == "wheels/localpkg-0.3-py3-none-any.whl"
    assert "url" not in entry
    assert (entry["name"], entry["version"], entry["kind"]) == ("localpkg", "0.3", "wheel")
    check_lock(section, reqs, PythonTarget())

    layers = python_layers(section, PythonTarget(), Store(tmp_path / "store"), 0, project_dir=project)
    tree = unpack(layers, tmp_path / "rootfs")
    assert (tree / "usr/local/lib/python3.11/dist-packages/localpkg/__init__.py").read_text() == "VALUE = 3\n"


def test_an_out_of_date_lock_is_one_line(project: Path) -> None:
    reqs = read_requirements(project, "requirements.txt")
    section = lock_python(reqs, PythonTarget())
    message = "ocibuild.lock is out of date for requirements.txt; run 'ocibuild lock'"

    (project / "requirements.txt").write_text("wheels/localpkg-0.3-py3-none-any.whl\nsix\n")
    with pytest.raises(UserInputError) as err:
        check_lock(section, read_requirements(project, "requirements.txt"), PythonTarget())
    assert str(err.value) == message
    with pytest.raises(UserInputError, match="out of date"):
        check_lock(section, reqs, PythonTarget.for_python("3.13", "2.41"))
    with pytest.raises(UserInputError, match="out of date"):
        check_lock(None, reqs, PythonTarget())


def test_a_changed_project_wheel_makes_the_lock_out_of_date(project: Path, make_wheel) -> None:
    reqs = read_requirements(project, "requirements.txt")
    section = lock_python(reqs, PythonTarget())
    make_wheel(project / "wheels", "localpkg", "0.3", {"localpkg/__init__.py": b"VALUE = 4\n"})
    with pytest.raises(UserInputError, match="out of date"):
        check_lock(section, read_requirements(project, "requirements.txt"), PythonTarget())


def test_a_project_wheel_for_another_platform_is_refused(tmp_path: Path, make_wheel) -> None:
    make_wheel(tmp_path, "winonly", "1.0", {"winonly/__init__.py": b""}, tag="cp311-cp311-win_amd64")
    (tmp_path / "requirements.txt").write_text("winonly-1.0-cp311-cp311-win_amd64.whl\n")
    with pytest.raises(UserInputError) as err:
        lock_python(read_requirements(tmp_path, "requirements.txt"), PythonTarget())
    assert "\n" not in str(err.value)
    assert "winonly" in str(err.value)


def test_an_unreachable_index_is_a_failed_build_naming_the_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UV_HTTP_RETRIES", "0")
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "uv-cache"))
    project = tmp_path / "project"
    project.mkdir()
    (project / "requirements.txt").write_text("--index-url http://127.0.0.1:9/simple\nsomepkg==1.0\n")
    with pytest.raises(BuildError) as caught:
        lock_python(read_requirements(project, "requirements.txt"), PythonTarget())
    assert not isinstance(caught.value, UserInputError) and caught.value.exit_code == 1
    assert str(caught.value).startswith("requirements.txt: cannot reach 127.0.0.1:9 to resolve: ")


def test_a_local_archive_whose_path_has_spaces(tmp_path: Path, make_wheel) -> None:
    (tmp_path / "dist dir").mkdir()
    make_wheel(tmp_path / "dist dir", "spaced", "0.1", {"spaced/__init__.py": b""})
    (tmp_path / "requirements.txt").write_text("./dist dir/spaced-0.1-py3-none-any.whl\n")
    (req,) = read_requirements(tmp_path, "requirements.txt").requirements
    assert req.path == "./dist dir/spaced-0.1-py3-none-any.whl"


def test_the_local_artifacts_of_cogs_integration_test(tmp_path: Path, make_wheel) -> None:
    """Cog's local_python_requirement_artifact fixture: an sdist, a zip whose name has spaces, a wheel."""
    (tmp_path / "dist").mkdir()
    make_wheel(tmp_path / "dist", "local_wheel_pkg", "0.3.0", {"local_wheel_pkg/__init__.py": b""})
    for name in ("local_pkg-0.1.0.tar.gz", "local zip pkg-0.2.0.zip"):
        (tmp_path / "dist" / name).write_bytes(b"archive")
    lines = ["./dist/local_pkg-0.1.0.tar.gz", "./dist/local zip pkg-0.2.0.zip", "dist/local zip pkg-0.2.0.zip"]
    (tmp_path / "requirements.txt").write_text("\n".join([*lines, "./dist/local_wheel_pkg-0.3.0-py3-none-any.whl"]))
    paths = [req.path for req in read_requirements(tmp_path, "requirements.txt").requirements]
    assert paths == [
        "./dist/local_pkg-0.1.0.tar.gz",
        "./dist/local zip pkg-0.2.0.zip",
        "./dist/local zip pkg-0.2.0.zip",  # the same path, written without ./
        "./dist/local_wheel_pkg-0.3.0-py3-none-any.whl",
    ]
