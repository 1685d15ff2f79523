"""Resolve requirements for the image's target with uv, and write/check the ``python`` section of the lock.

The section records every distribution with its exact version and the one file that fits the target (wheel
file name, URL or project path, sha256, size), plus a fingerprint of the inputs so a stale lock is detected.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import tomllib
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlparse

from ocibuild.cogimage import TORCH_FAMILY
from ocibuild.errors import BuildError, UserInputError
from ocibuild.sources.python.requirements import Requirements, normalize_name
from ocibuild.sources.python.tags import best_wheel, wheel_rank
from ocibuild.sources.python.target import PythonTarget
from ocibuild.sources.python.uv import UvError, UvNetworkError, run_uv, uv_version

LOCK_FORMAT = 1
PYTORCH_INDEX = "https://download.pytorch.org/whl/"
_HASH = re.compile(r"--hash[=\s]+sha256:([0-9a-fA-F]{64})")


def torch_backend(reqs: Requirements, torch_index_suffix: str | None, find_links: Sequence[str] = ()) -> str | None:
    """The PyTorch index suffix to apply: only when torch is required, no PyTorch index was named and no local
    wheel folder (``--find-links``) supplies the builds."""
    if not torch_index_suffix or not (reqs.names.intersection(TORCH_FAMILY)):
        return None
    if reqs.find_links or find_links:
        return None
    urls = [reqs.index_url or "", *reqs.extra_index_urls]
    if any(url.startswith(PYTORCH_INDEX) for url in urls):
        return None
    return torch_index_suffix


def fingerprint(
    reqs: Requirements, target: PythonTarget, find_links: Sequence[str] = (), torch_index_suffix: str | None = None
) -> str:
    """A digest of everything that decides the resolution."""
    data = {
        "format": LOCK_FORMAT,
        "requirements": reqs.fingerprint_data(),
        "target": target.to_dict(),
        "find_links": list(find_links),
        "torch_backend": torch_backend(reqs, torch_index_suffix, find_links),
    }
    return "sha256:" + hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def check_lock(
    section: dict[str, Any] | None,
    reqs: Requirements,
    target: PythonTarget,
    *,
    find_links: Sequence[str] = (),
    torch_index_suffix: str | None = None,
) -> None:
    """Raise UserInputError when ``section`` was not locked from these inputs (pass what lock_python got)."""
    expected = fingerprint(reqs, target, find_links, torch_index_suffix)
    if not section or section.get("format") != LOCK_FORMAT or section.get("fingerprint") != expected:
        raise UserInputError(f"ocibuild.lock is out of date for {reqs.source}; run 'ocibuild lock'")


def compile_args(reqs: Requirements, target: PythonTarget, find_links: Sequence[str], backend: str | None) -> list[str]:
    """The ``uv pip compile`` options that resolve ``reqs`` for ``target``."""
    args = ["--no-config", "--python-platform", target.uv_platform, "--python-version", target.python_version]
    if reqs.index_url:
        args += ["--index-url", reqs.index_url]
    for url in reqs.extra_index_urls:
        args += ["--extra-index-url", url]
    for link in (*reqs.find_links, *find_links):
        args += ["--find-links", reqs.absolute(link)]
    if reqs.pre:
        args += ["--prerelease", "allow"]
    for value in reqs.only_binary:
        args += ["--only-binary", value]
    for value in reqs.no_binary:
        args += ["--no-binary", value]
    if backend:
        args += ["--torch-backend", backend]
    return args


def lock_python(
    reqs: Requirements,
    target: PythonTarget,
    *,
    find_links: Sequence[str] = (),
    torch_index_suffix: str | None = None,
) -> dict[str, Any]:
    """Resolve ``reqs`` for ``target`` (metadata only: nothing large is downloaded) into the lock's section."""
    backend = torch_backend(reqs, torch_index_suffix, find_links)
    section: dict[str, Any] = {
        "format": LOCK_FORMAT,
        "fingerprint": fingerprint(reqs, target, find_links, torch_index_suffix),
        "target": target.to_dict(),
        "resolver": uv_version(),
        "find_links": list(find_links),
        "distributions": [],
    }
    if not reqs.requirements:
        return section
    with tempfile.TemporaryDirectory(prefix="ocibuild-lock-") as tmp:
        out = Path(tmp)
        (out / "requirements.in").write_text("\n".join(reqs.uv_lines()) + "\n")
        args = ["pip", "compile", "--quiet", "--format", "pylock.toml", "-o", str(out / "pylock.toml")]
        args += compile_args(reqs, target, find_links, backend)
        if reqs.constraints:
            (out / "constraints.txt").write_text("\n".join(reqs.uv_lines(constraints=True)) + "\n")
            args += ["--constraint", str(out / "constraints.txt")]
        try:
            run_uv([*args, str(out / "requirements.in")], cwd=out)
        except UvNetworkError as exc:
            raise BuildError(f"{reqs.source}: cannot reach {exc.host} to resolve: {exc}") from None
        except UvError as exc:
            raise UserInputError(f"{reqs.source}: cannot resolve for {target.describe()}: {exc}") from None
        pylock = tomllib.loads((out / "pylock.toml").read_text())
        packages = pylock.get("packages", [])
        section["distributions"] = sorted(
            (_distribution(p, target, reqs.project_dir, out) for p in packages), key=lambda d: d["name"]
        )
    _check_hashes(reqs, section["distributions"])
    return section


def _check_hashes(reqs: Requirements, distributions: list[dict[str, Any]]) -> None:
    """Requirements that carry ``--hash`` values must lock a file with one of them (pip's hash checking)."""
    locked = {normalize_name(d["name"]): d for d in distributions}
    for req in reqs.requirements:
        allowed = {h.lower() for h in _HASH.findall(req.text)}
        dist = locked.get(req.name or "")
        if allowed and dist and dist.get("sha256") not in allowed:
            raise UserInputError(
                f"{req.location}: {dist['filename']} (sha256 {dist.get('sha256')}) matches none of the --hash values"
            )


def _distribution(pkg: dict[str, Any], target: PythonTarget, project_dir: Path, out: Path) -> dict[str, Any]:
    """One lock entry: the file of ``pkg`` that fits the target (a wheel, else its sdist)."""
    name, version = pkg["name"], str(pkg.get("version", ""))
    label = f"{name} {version}".strip()
    if "wheels" in pkg:
        files = {_file_name(w): w for w in pkg["wheels"]}
        chosen = best_wheel(files, target)
        if chosen is None:
            raise UserInputError(f"{label}: no wheel for {target.describe()}; choose a version that has one")
        kind, file = "wheel", files[chosen]
    elif "sdist" in pkg:
        kind, file = "sdist", pkg["sdist"]
    elif "archive" in pkg:
        file = pkg["archive"]
        kind = "wheel" if _file_name(file).endswith(".whl") else "sdist"
        if kind == "wheel" and wheel_rank(_file_name(file), target) is None:
            raise UserInputError(f"{label}: {_file_name(file)} has no build for {target.describe()}")
    elif "vcs" in pkg:
        return _vcs_distribution(pkg, label)
    else:
        raise UserInputError(f"{label}: directory requirements are not supported; build a wheel or use a VCS URL")
    sha256 = file.get("hashes", {}).get("sha256")
    if not sha256:
        raise BuildError(f"{label}: the index gave no sha256 for {_file_name(file)}")
    entry: dict[str, Any] = {"name": name, "version": version, "kind": kind, "filename": _file_name(file)}
    entry.update(_location(file, project_dir, out))
    entry["sha256"] = sha256
    entry["size"] = file.get("size") or _local_size(entry, project_dir)
    return entry


def _vcs_distribution(pkg: dict[str, Any], label: str) -> dict[str, Any]:
    """A VCS requirement, pinned to the commit the resolver found; it is built into a wheel at build time."""
    vcs = pkg["vcs"]
    commit = str(vcs.get("commit-id") or "")
    if vcs.get("type") != "git":
        raise UserInputError(f"{label}: {vcs.get('type')} requirements are not supported; use git or a wheel")
    if not re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", commit):
        raise BuildError(f"{label}: the resolver gave no commit for {vcs.get('url')}")
    entry = {"name": pkg["name"], "version": str(pkg.get("version", "")), "kind": "git", "url": vcs["url"]}
    entry.update(commit=commit, filename=f"{pkg['name']}-{commit[:12]}", size=None)
    if vcs.get("subdirectory"):
        entry["subdirectory"] = vcs["subdirectory"]
    return entry


def _file_name(file: dict[str, Any]) -> str:
    if file.get("name"):
        return str(file["name"])
    ref = file.get("url") or file.get("path") or ""
    return unquote(PurePosixPath(urlparse(ref).path).name)


def _location(file: dict[str, Any], project_dir: Path, out: Path) -> dict[str, str]:
    """``{"path": project-relative}`` for files inside the project, else ``{"url": ...}``."""
    url = file.get("url")
    if url and not url.startswith("file://"):
        return {"url": url}
    local = Path(unquote(urlparse(url).path)) if url else Path(os.path.normpath(out / file["path"]))
    root = project_dir.resolve()
    if local.resolve().is_relative_to(root):
        return {"path": local.resolve().relative_to(root).as_posix()}
    return {"url": local.resolve().as_uri()}


def _local_size(entry: dict[str, Any], project_dir: Path) -> int | None:
    if "path" in entry:
        return (project_dir / entry["path"]).stat().st_size
    if entry["url"].startswith("file://"):
        return Path(unquote(urlparse(entry["url"]).path)).stat().st_size
    return None
