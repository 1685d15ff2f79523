"""The ocibuild command: results on stdout, one-line errors with exit codes, reproducible digests."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.helpers import REPO

RESULT = re.compile(r"^\S+@sha256:[0-9a-f]{64}$")


def ocibuild(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None, umask: int | None = None):
    full_env = {**os.environ, **(env or {})}
    preexec = (lambda: os.umask(umask)) if umask is not None else None
    return subprocess.run(
        [sys.executable, "-m", "ocibuild", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        preexec_fn=preexec,
        timeout=600,
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    dest = tmp_path / "proj"
    shutil.copytree(REPO / "examples" / "hello-world", dest, ignore=shutil.ignore_patterns(".ocibuild"))
    return dest


@pytest.mark.integration  # downloads the base's .debs into a fresh store
def test_stdout_holds_only_the_result_line(project: Path, tmp_path: Path):
    result = ocibuild(str(project), "--cache-dir", str(tmp_path / "cache"), "--source-date-epoch", "0")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1 and RESULT.match(lines[0]), result.stdout
    assert lines[0].startswith(str(project / ".ocibuild" / "image") + "@")
    assert (project / ".ocibuild" / "image" / "index.json").exists()


@pytest.mark.integration  # downloads the base's .debs into a fresh store
def test_build_subcommand_tarball_image_refs_and_digest_file(project: Path, tmp_path: Path):
    refs, digest_file = tmp_path / "refs.txt", tmp_path / "digest.txt"
    result = ocibuild(
        "build",
        str(project / "cog.yaml"),
        "-o",
        str(tmp_path / "out"),
        "--tarball",
        str(tmp_path / "img.tar"),
        "--cache-dir",
        str(tmp_path / "cache"),
        "-q",
        "--image-refs",
        str(refs),
        "--digest-file",
        str(digest_file),
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{tmp_path / 'img.tar'}@"), "one line per image"
    assert refs.read_text().splitlines() == lines
    assert lines[0].rsplit("@", 1)[1] == digest_file.read_text().strip()
    with tarfile.open(tmp_path / "img.tar") as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
    assert manifest[0]["RepoTags"] == ["proj:latest"], "without -t or image:, the image is named after its folder"


def test_outputs_that_fit_together(project: Path, tmp_path: Path):
    cache = str(tmp_path / "cache")
    not_yaml = ocibuild(str(project / "predict.py"), "--cache-dir", cache)
    assert not_yaml.returncode == 2
    assert (
        not_yaml.stderr.strip()
        == f"error: {project / 'predict.py'}: not a cog.yaml; give the project directory or its cog.yaml"
    )
    two = ocibuild(
        str(project),
        "--platform",
        "linux/amd64,linux/arm64",
        "--tarball",
        str(tmp_path / "x.tar"),
        "--cache-dir",
        cache,
    )
    assert two.returncode == 2 and "build one --platform at a time" in two.stderr and not (tmp_path / "cache").exists()
    push = ocibuild("push", str(project), "127.0.0.1:1/x:y", "--cache-dir", cache)
    assert push.returncode == 2 and f"ocibuild build {project} --push -t REF" in push.stderr
    piped = subprocess.run(
        f"set -o pipefail; {sys.executable} -m ocibuild schema {project} | head -c 1",
        shell=True, executable="/bin/bash", capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert piped.returncode == 0 and piped.stdout == "{" and piped.stderr == ""


def test_platforms_take_a_comma_list():
    from ocibuild.cli import _platforms

    assert [str(p) for p in _platforms(["linux/amd64,linux/arm64", "linux/arm64"])] == ["linux/amd64", "linux/arm64"]


def test_sizes_take_binary_units():
    from ocibuild.sizes import parse_size

    assert [parse_size(t) for t in ("512", "64K", "256M", "256MiB", "1.5g", "2 GB")] == [
        512,
        64 << 10,
        256 << 20,
        256 << 20,
        3 << 29,
        2 << 30,
    ]
    for bad in ("", "M", "-1M", "1.5.2G", "12X"):
        with pytest.raises(ValueError):
            parse_size(bad)


@pytest.mark.integration  # downloads the base's .debs into a fresh store
def test_same_inputs_give_the_same_digest_anywhere(project: Path, tmp_path: Path):
    other = tmp_path / "elsewhere" / "checkout"
    shutil.copytree(project, other)
    for path in other.rglob("*"):
        os.utime(path, (1_234_567_890, 1_234_567_890))
    (other / "predict.py").chmod(0o600)
    first = ocibuild(str(project), "--cache-dir", str(tmp_path / "c1"), env={"SOURCE_DATE_EPOCH": "1700000000"})
    second = ocibuild(
        str(other),
        "--cache-dir",
        str(tmp_path / "c2"),
        umask=0o077,
        env={"SOURCE_DATE_EPOCH": "1700000000", "TZ": "Asia/Kolkata", "LANG": "C"},
    )
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert first.stdout.rsplit("@", 1)[1] == second.stdout.rsplit("@", 1)[1]


@pytest.mark.parametrize(
    ("setup", "args", "message"),
    [
        (lambda p: None, ["{missing}"], "no such file"),
        (lambda p: (p / "cog.yaml").write_text("build: [unclosed\n"), ["{p}"], "cog.yaml:"),
        (lambda p: (p / "out").write_text("a file"), ["{p}", "-o", "{p}/out"], "exists and is not a directory"),
        (lambda p: None, ["{p}", "--platform", "amd64"], "--platform"),
        (lambda p: None, ["{p}", "--no-such-flag"], "usage:"),
        (lambda p: (p / "cache").write_text(""), ["{p}", "--cache-dir", "{p}/cache"], "--cache-dir"),
        (lambda p: None, ["{p}", "--max-layer-size", "12X"], "--max-layer-size 12X: not a size"),
        (lambda p: None, ["{p}", "--max-layer-size", "0"], "--max-layer-size 0: must be more than 0 bytes"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(project: Path, tmp_path: Path, setup, args, message):
    setup(project)
    argv = [a.format(p=project, missing=tmp_path / "nope") for a in args]
    if "--cache-dir" not in argv:
        argv += ["--cache-dir", str(tmp_path / "cache")]
    result = ocibuild(*argv)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.integration  # downloads the base's .debs into a fresh store
def test_outputs_written_inside_the_project_never_go_into_the_image(project: Path, tmp_path: Path):
    args = [str(project), "-o", str(project / "image"), "--tarball", str(project / "image.tar"), "-q",
            "--cache-dir", str(tmp_path / "cache"), "--source-date-epoch", "0"]  # fmt: skip
    first, second = ocibuild(*args), ocibuild(*args)
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert first.stdout == second.stdout


def test_a_malformed_layout_is_a_one_line_error(tmp_path: Path):
    layout = tmp_path / "layout"
    (layout / "blobs" / "sha256").mkdir(parents=True)
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (layout / "index.json").write_text('{"schemaVersion":2,"manifests":[{"digest":"nope"}]}')
    result = ocibuild("push", str(layout), "127.0.0.1:1/x:y", "--cache-dir", str(tmp_path / "cache"))
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr


def test_an_output_folder_that_is_not_a_layout_is_refused_and_left_intact(project: Path, tmp_path: Path):
    folder = tmp_path / "work"
    (folder / ".git").mkdir(parents=True)
    (folder / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (folder / "notes.md").write_text("notes\n")
    result = ocibuild(str(project), "-o", str(folder), "--cache-dir", str(tmp_path / "cache"))
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == f"error: --output {folder}: not empty and not an OCI layout; choose an empty or new directory"
    )
    assert sorted(p.name for p in folder.rglob("*")) == [".git", "HEAD", "notes.md"]
    assert (folder / "notes.md").read_text() == "notes\n" and folder.stat().st_mode & 0o777 != 0o700
    assert not (tmp_path / "cache").exists()  # refused before any work


@pytest.mark.integration  # downloads the base's .debs into a fresh store
def test_an_edited_blob_of_an_earlier_output_never_reaches_a_later_build(
    project: Path, tmp_path: Path, fresh_store: Path
):
    first = tmp_path / "first"
    args = (str(project), "--cache-dir", str(fresh_store), "--source-date-epoch", "0", "-q")
    assert ocibuild(*args, "-o", str(first)).returncode == 0
    for blob in (first / "blobs" / "sha256").iterdir():
        blob.chmod(0o644)
        data = bytearray(blob.read_bytes())
        data[len(data) // 2] ^= 0xFF
        blob.write_bytes(bytes(data))
    for output in (tmp_path / "second", first):
        result = ocibuild(*args, "-o", str(output))
        assert result.returncode == 0, result.stderr
        for blob in (output / "blobs" / "sha256").iterdir():
            assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name, blob
        index = json.loads((output / "index.json").read_text())
        assert result.stdout.strip() == f"{output}@{index['manifests'][0]['digest']}"


@pytest.mark.integration  # downloads the base's .debs into a fresh store
def test_skopeo_opens_a_single_image_layout_without_a_tag(project: Path, tmp_path: Path):
    skopeo = shutil.which("skopeo")
    assert skopeo, "scripts/install_test_tools.sh installs skopeo"
    out = tmp_path / "layout"
    args = [str(project), "-o", str(out), "--cache-dir", str(tmp_path / "cache"), "--sbom", "none", "--no-provenance"]
    result = ocibuild(*args, "-q")
    assert result.returncode == 0, result.stderr
    inspected = subprocess.run([skopeo, "inspect", f"oci:{out}"], capture_output=True, text=True, timeout=120)
    assert inspected.returncode == 0, inspected.stderr
    assert json.loads(inspected.stdout)["Digest"] == result.stdout.strip().rsplit("@", 1)[1]
