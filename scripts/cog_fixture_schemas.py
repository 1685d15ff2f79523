"""Run Cog's own integration fixtures through `ocibuild schema` and check what their tests assert about the schema.

Usage: python scripts/cog_fixture_schemas.py COG_GIT_DIR [--markdown]

COG_GIT_DIR is a clone (or bare mirror) of github.com/replicate/cog. Each `integration-tests/tests/*.txtar` is
unpacked into a temporary project; its schema assertions (`stdout '...'` after `docker inspect ...
run.cog.openapi_schema` or a `GET /openapi.json`) are matched against the compact document, and a build its
script expects to fail (`! cog build`) should fail here too. `tools/test-harness/fixtures/models/*` are checked
for acceptance only. The table goes into docs/cog-schema.md.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ocibuild.cog.config import load_config
from ocibuild.cog.schema import generate_schema, openapi_json
from ocibuild.errors import UserInputError

_SECTION = re.compile(r"^-- (.+?) --$", re.MULTILINE)
_ASSERT = re.compile(r"^(!\s*)?stdout\s+'(.*)'\s*$")
_SCHEMA_COMMAND = re.compile(r"run\.cog\.openapi_schema|/openapi\.json")


@dataclass
class Fixture:
    name: str
    files: dict[str, str]
    script: list[str]
    schema_checks: list[tuple[bool, str]] = field(default_factory=list)
    build_fails: bool = False


def parse_txtar(name: str, text: str) -> Fixture:
    """The script lines and files of a txtar archive, with the schema assertions and expected build failure."""
    parts = _SECTION.split(text)
    files = {parts[i].strip(): parts[i + 1].lstrip("\n") for i in range(1, len(parts) - 1, 2)}
    fixture = Fixture(name, files, parts[0].splitlines())
    in_schema = False
    for raw in fixture.script:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _ASSERT.match(line)
        if match:
            if in_schema:
                fixture.schema_checks.append((not match.group(1), match.group(2)))
            continue
        if line.startswith(("stderr", "! stderr")):
            continue
        in_schema = bool(_SCHEMA_COMMAND.search(line))
        if re.match(r"^!\s*cog build\b", line):
            fixture.build_fails = True
    return fixture


def check(fixture: Fixture, root: Path) -> tuple[str, str]:
    """(result, notes) for one fixture unpacked under `root`."""
    for rel, content in fixture.files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    if "cog.yaml" not in fixture.files:
        return "n/a", "no cog.yaml at the project root"
    try:
        loaded = load_config(root / "cog.yaml")
        if loaded.predictor_ref is None and loaded.train_ref is None and not fixture.build_fails:
            return "n/a", "no run/predict/train in cog.yaml"
        document = openapi_json(generate_schema(loaded.project_dir, loaded.predictor_ref, loaded.train_ref).openapi)
    except UserInputError as exc:
        message = str(exc).replace(str(root) + "/", "").replace(str(root), ".")
        return ("rejected, as Cog" if fixture.build_fails else "REJECTED"), message.splitlines()[0]
    failed = [pattern for wanted, pattern in fixture.schema_checks if bool(re.search(pattern, document)) is not wanted]
    if failed:
        return "MISMATCH", "; ".join(f"`{pattern}`" for pattern in failed)
    if fixture.build_fails:
        return "accepted; Cog rejects", ""
    checks = len(fixture.schema_checks)
    return "ok", f"{checks} schema assertions hold" if checks else "schema generated (no schema assertions)"


def _git(git_dir: str, *args: str) -> str:
    return subprocess.run(["git", "-C", git_dir, *args], check=True, capture_output=True, text=True).stdout


def fixtures(git_dir: str) -> list[Fixture]:
    names = _git(git_dir, "ls-tree", "-r", "--name-only", "HEAD").splitlines()
    found = [
        parse_txtar(Path(name).stem, _git(git_dir, "show", f"HEAD:{name}"))
        for name in names
        if name.startswith("integration-tests/tests/") and name.endswith(".txtar")
    ]
    models: dict[str, dict[str, str]] = {}
    prefix = "tools/test-harness/fixtures/models/"
    for name in names:
        if name.startswith(prefix):
            model, rel = name[len(prefix) :].split("/", 1)
            models.setdefault(model, {})[rel] = _git(git_dir, "show", f"HEAD:{name}")
    found += [Fixture(f"test-harness/{model}", files, []) for model, files in sorted(models.items())]
    return found


def main(argv: list[str]) -> int:
    git_dir = argv[0]
    rows = []
    for fixture in fixtures(git_dir):
        with tempfile.TemporaryDirectory() as tmp:
            result, notes = check(fixture, Path(tmp))
        rows.append((fixture.name, result, notes))
        if "--markdown" not in argv:
            print(f"{fixture.name:45} {result:22} {notes}")
    if "--markdown" in argv:
        print("| Fixture | Result | Notes |\n|---|---|---|")
        for name, result, notes in rows:
            cell = notes.replace("|", "\\|")
            print(f"| `{name}` | {result} | {cell} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
