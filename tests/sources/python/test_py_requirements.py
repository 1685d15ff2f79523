"""Reading requirements: options, markers, hashes, local archives, includes, and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from ocibuild.errors import UserInputError
from ocibuild.sources.python import read_requirements


def project(tmp_path: Path, text: str, name: str = "requirements.txt") -> Path:
    (tmp_path / name).write_text(text)
    return tmp_path


def test_options_markers_and_hashes_are_kept(tmp_path: Path) -> None:
    text = (
        "--index-url https://example.org/simple\n"
        "--extra-index-url=https://download.pytorch.org/whl/cpu\n"
        "-f ./wheels   # local wheels\n"
        "--pre\n"
        "--trusted-host example.org\n"
        "numpy==2.4.6 ; python_version >= '3.11'\n"
        "requests[socks]>=2 \\\n"
        "    --hash=sha256:aaaa\n"
        "# a comment\n"
        "\n"
    )
    (tmp_path / "wheels").mkdir()
    reqs = read_requirements(project(tmp_path, text), "requirements.txt")
    assert reqs.index_url == "https://example.org/simple"
    assert reqs.extra_index_urls == ("https://download.pytorch.org/whl/cpu",)
    assert reqs.find_links == ("./wheels",)
    assert reqs.pre
    assert [r.text for r in reqs.requirements] == [
        "numpy==2.4.6 ; python_version >= '3.11'",
        "requests[socks]>=2 --hash=sha256:aaaa",
    ]
    assert [r.location for r in reqs.requirements] == ["requirements.txt:6", "requirements.txt:7"]
    assert reqs.names == {"numpy", "requests"}


def test_cog_and_coglet_are_dropped_with_a_warning(tmp_path: Path) -> None:
    reqs = read_requirements(project(tmp_path, "cog==0.16.0\nCogLet\nrequests\n"), "requirements.txt")
    assert reqs.names == {"requests"}
    assert reqs.warnings == (
        "requirements.txt:1: skipping 'cog': the image's bundled runner provides cog",
        "requirements.txt:2: skipping 'coglet': the image's bundled runner provides cog",
    )


def test_local_archives_inside_the_project(tmp_path: Path) -> None:
    (tmp_path / "dist").mkdir()
    (tmp_path / "dist" / "pkg-1.0-py3-none-any.whl").write_bytes(b"wheel")
    reqs = read_requirements(project(tmp_path, "dist/pkg-1.0-py3-none-any.whl\n"), "requirements.txt")
    assert reqs.requirements[0].path == "./dist/pkg-1.0-py3-none-any.whl"
    assert reqs.uv_lines() == [str(tmp_path.resolve() / "dist" / "pkg-1.0-py3-none-any.whl")]
    assert reqs.local_files[0][0] == "./dist/pkg-1.0-py3-none-any.whl"


def test_fingerprint_does_not_depend_on_the_project_location(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for root in (a, b):
        (root / "dist").mkdir(parents=True)
        (root / "dist" / "pkg-1.0-py3-none-any.whl").write_bytes(b"wheel")
        (root / "requirements.txt").write_text("./dist/pkg-1.0-py3-none-any.whl\nsix\n")
    assert (
        read_requirements(a, "requirements.txt").fingerprint_data()
        == read_requirements(b, "requirements.txt").fingerprint_data()
    )


def test_includes_and_constraints(tmp_path: Path) -> None:
    (tmp_path / "base.txt").write_text("six\n")
    (tmp_path / "pins.txt").write_text("six==1.16.0\n")
    reqs = read_requirements(project(tmp_path, "-r base.txt\n-c pins.txt\nidna\n"), "requirements.txt")
    assert [r.text for r in reqs.requirements] == ["six", "idna"]
    assert [r.location for r in reqs.requirements] == ["base.txt:1", "requirements.txt:3"]
    assert [r.text for r in reqs.constraints] == ["six==1.16.0"]


def test_python_packages_from_cog_yaml(tmp_path: Path) -> None:
    reqs = read_requirements(tmp_path, None, ["torch==2.3.1", "cog"])
    assert reqs.names == {"torch"}
    assert reqs.source == "cog.yaml python_packages"
    assert reqs.warnings[0].startswith("cog.yaml: build.python_packages[1]: skipping 'cog'")


def test_no_requirements(tmp_path: Path) -> None:
    assert read_requirements(tmp_path, None, None).requirements == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("six\n--frobnicate x\n", "requirements.txt:2: unsupported option --frobnicate"),
        ("-e .\n", "requirements.txt:1: editable requirements are not supported in an image"),
        ("six\n\n!!bad\n", "requirements.txt:3: invalid requirement: '!!bad'"),
        ("../outside-1.0-py3-none-any.whl\n", "is outside the project directory"),
        ("./missing-1.0-py3-none-any.whl\n", "requirements.txt:1: ./missing-1.0-py3-none-any.whl does not exist"),
        ("--index-url\n", "requirements.txt:1: --index-url needs a value"),
        ("-r nothere.txt\n", "requirements.txt:1: nothere.txt does not exist"),
    ],
)
def test_errors_name_the_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    root = tmp_path / "project"
    root.mkdir()
    with pytest.raises(UserInputError) as err:
        read_requirements(project(root, text), "requirements.txt")
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_requirements_file(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match=r"requirements\.txt does not exist"):
        read_requirements(tmp_path, "requirements.txt")
