"""SLSA v1 provenance of a build as an in-toto v1 statement.

Subject: the image (or index) digest and, for an index, every platform's image. Build definition: cog.yaml and
ocibuild.lock by digest, the git commit and remote, the parameters that shape the image (platforms, format,
compression, SOURCE_DATE_EPOCH). Resolved dependencies: the signed Debian archive snapshots (InRelease digests),
every .deb, the interpreter and every Python distribution by sha256. No wall-clock times are recorded, so the
same build gives the same statement.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
BUILD_TYPE = "https://ocibuild.dev/buildtypes/cog/v1"
BUILDER_ID = "https://ocibuild.dev/builder"
MEDIA_TYPE = "application/vnd.in-toto+json"


@dataclass(frozen=True)
class BuildFacts:
    """What the statement records about one build."""

    subjects: list[tuple[str, str]]
    """(name, digest): the target first, then each platform's image."""
    cog_yaml: Path
    lock_text: str
    parameters: dict[str, Any]
    ocibuild_version: str
    recipes: dict[str, str] = field(default_factory=dict)
    verified_reproducible: bool = False


def _sha256(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def _git(directory: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(directory), *args], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_commit(directory: Path) -> str | None:
    """The commit checked out at ``directory`` (None outside git)."""
    return _git(directory, "rev-parse", "HEAD")


def git_source(directory: Path) -> dict[str, Any] | None:
    """The commit, remote and dirtiness of the git checkout holding ``directory`` (None outside git)."""

    def git(*args: str) -> str | None:
        return _git(directory, *args)

    commit = git("rev-parse", "HEAD")
    if not commit:
        return None
    remote = git("config", "--get", "remote.origin.url") or ""
    dirty = bool(git("status", "--porcelain", "--untracked-files=no", "--", "."))
    return {"uri": f"git+{remote}" if remote else "", "digest": {"gitCommit": commit}, "dirty": dirty}


def resolved_dependencies(sections: dict[str, Any]) -> list[dict[str, Any]]:
    """in-toto ResourceDescriptors for every pinned input of the lock, sorted."""
    deps: dict[str, dict[str, Any]] = {}
    for platform, base in (sections.get("base") or {}).items():
        for archive in base.get("archives", []):
            algo, _, hexdigest = archive["inrelease"].partition(":")
            uri = f"{archive['url']}/dists/{archive['suite']}/InRelease"
            deps[uri] = {"uri": uri, "digest": {algo: hexdigest}, "annotations": {"date": archive.get("date", "")}}
        pin = base.get("interpreter") or {}
        if pin.get("url"):
            deps[pin["url"]] = {"uri": pin["url"], "name": f"cpython {pin.get('version', '')}", "digest": {}}
        packages = [*base.get("packages", []), *((sections.get("debian") or {}).get(platform, {}).get("packages", []))]
        for p in packages:
            deps[p["url"]] = {"uri": p["url"], "name": p["name"], "digest": {"sha256": p["sha256"]}}
    for python in (sections.get("python") or {}).values():
        for d in python.get("distributions", []):
            uri = d.get("url") or d.get("filename") or d["name"]
            digest = {"sha256": d["sha256"]} if d.get("sha256") else {"gitCommit": d.get("commit", "")}
            deps[uri] = {"uri": uri, "name": d["name"], "digest": digest}
    return [deps[k] for k in sorted(deps)]


def provenance_statement(facts: BuildFacts, sections: dict[str, Any]) -> bytes:
    """The in-toto statement (JSON bytes) with a SLSA v1 predicate."""
    project = facts.cog_yaml.parent
    external: dict[str, Any] = {
        "cogYaml": {"path": facts.cog_yaml.name, "digest": {"sha256": _sha256(facts.cog_yaml.read_bytes())}},
        "lock": {"path": "ocibuild.lock", "digest": {"sha256": _sha256(facts.lock_text.encode())}},
        **facts.parameters,
    }
    source = git_source(project)
    if source is not None:
        external["source"] = source
    internal = {"ocibuildVersion": facts.ocibuild_version, "recipes": facts.recipes}
    if facts.verified_reproducible:
        internal["verifiedReproducible"] = True
    statement = {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": name, "digest": {"sha256": d.removeprefix("sha256:")}} for name, d in facts.subjects],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": external,
                "internalParameters": internal,
                "resolvedDependencies": resolved_dependencies(sections),
            },
            "runDetails": {
                "builder": {"id": BUILDER_ID, "version": {"ocibuild": facts.ocibuild_version}},
                "metadata": {"invocationId": facts.subjects[0][1]},
            },
        },
    }
    return (json.dumps(statement, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def subjects_of(statement: bytes) -> list[str]:
    """The ``sha256:...`` digests a statement names as its subject."""
    doc = json.loads(statement)
    return [f"sha256:{s['digest']['sha256']}" for s in doc.get("subject", [])]


def check_subject(statement: bytes, digests: Sequence[str]) -> None:
    """Raise ValueError unless the statement's first subject is one of ``digests``."""
    named = subjects_of(statement)
    if not named or named[0] not in digests:
        raise ValueError(f"provenance subject {named[:1]} is not the image {list(digests)[:1]}")
