"""apt-get in build.run, as on Cog's Ubuntu base: against the Debian archive the lock pins, with a dpkg database
that is the image's (base + system_packages), and what it installs in the command's layer."""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path

import pytest

from ocibuild.cog.build import BuildOptions, build_project
from ocibuild.errors import BuildError
from ocibuild.oci import Store

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "hello-world"


def _project(tmp_path: Path, commands: list[str]) -> Path:
    project = tmp_path / "project"
    shutil.copytree(EXAMPLE, project)
    run = "".join(f"    - {json.dumps(c)}\n" for c in commands)
    (project / "cog.yaml").write_text((project / "cog.yaml").read_text().replace("build:\n", f"build:\n  run:\n{run}"))
    return project


def _layer(image, name: str) -> tarfile.TarFile:
    names = [h["comment"] for h in json.loads(image.config_bytes)["history"] if not h.get("empty_layer")]
    return tarfile.open(image.layers[names.index(name)].path)


@pytest.mark.integration
def test_apt_get_install_lands_in_the_layer_and_the_image_dpkg_database(tmp_path: Path) -> None:
    commands = [
        "apt-get update && apt-get install -y --no-install-recommends jq curl",
        "mkdir -p /opt && jq --version > /opt/jq",
    ]
    project = _project(tmp_path, commands)
    result = build_project(project / "cog.yaml", BuildOptions(store=Store(tmp_path / "store")))
    with _layer(result.target, "run-0") as tar:
        names = set(tar.getnames())
        status = tar.extractfile("var/lib/dpkg/status").read().decode()  # type: ignore[union-attr]
    assert {"usr/bin/jq", "usr/bin/curl"} <= names  # curl too, though the build-only toolbox had the same file
    assert any(n.startswith("usr/lib/x86_64-linux-gnu/libjq.so") for n in names)
    assert "Package: jq\n" in status and "Package: curl\n" in status and "Package: python3.11\n" in status
    assert "Package: git\n" not in status and "Package: apt\n" not in status, "toolbox packages are not the image's"
    with _layer(result.target, "run-1") as tar:
        assert tar.extractfile("opt/jq").read().startswith(b"jq-1.")  # type: ignore[union-attr]


@pytest.mark.integration
def test_a_ppa_is_ubuntu_only_and_says_so(tmp_path: Path) -> None:
    project = _project(tmp_path, ["add-apt-repository -y ppa:git-core/ppa"])
    with pytest.raises(BuildError) as caught:
        build_project(project / "cog.yaml", BuildOptions(store=Store(tmp_path / "store")))
    assert "\n" not in str(caught.value)
    assert str(caught.value).endswith(
        "(a PPA publishes Ubuntu packages for Ubuntu releases: it fails on ocibuild's Debian base, as on any)"
    )
