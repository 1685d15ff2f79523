#!/usr/bin/env python3
"""Run ocibuild over the compatibility corpus (scripts/compat/corpus.toml) and record every result.

For each pinned project: fetch the repository at its commit (a local mirror when one exists, else
`git fetch --depth 1` of that commit from GitHub; offline, the project is skipped with a note), export the
project into a temp dir, run its `setup` commands, then, one after the other and each under a timeout:

    ocibuild schema   the static OpenAPI document
    ocibuild lock     resolution (GPU stacks stop here: multi-GB wheels are not built on this machine)
    ocibuild build    an OCI layout in the temp dir
    ocibuild predict  the pinned inputs against that layout (CPU projects with inputs that need no network)

Each step records its exit code, wall time and the one-line error; a failure is classified against the numbered
items of issue 14 (or another cause) by the patterns in CAUSES. Results go to a JSON file and a markdown table;
`--update-doc docs/compatibility.md` rewrites the table between the corpus markers in that document.

    .venv/bin/python scripts/compat/run_corpus.py [--only SUBSTR] [--steps schema,lock] [--json out.json]
        [--markdown out.md] [--update-doc docs/compatibility.md] [--cache-dir DIR] [--mirrors DIR]

The corpus holds references only (repository, commit, folder): no project code lives in this repository.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CORPUS = Path(__file__).resolve().with_name("corpus.toml")
ALL_STEPS = ("schema", "lock", "build", "predict")
TIMEOUTS = {"schema": 120, "lock": 900, "build": 1800, "predict": 600}
MARKERS = "<!-- {}:begin -->", "<!-- {}:end -->"

# (regex over the step's error text, cause label). First match wins; the label names the item of issue 14
# ("#N") or another cause. Keep these specific: an unclassified failure shows as "?" and deserves a look.
CAUSES: list[tuple[str, str]] = [
    (
        r"Python 3\.\d+(\.\d+)? is not available.*(lookup address|resolve|Name or service|network)",
        "env: Python not in Debian and python-build-standalone (github.com) unreachable here",
    ),
    (
        r"(unknown|unexpected|not allowed|additional).{0,40}(key|field|propert).{0,80}\bfast\b|\bbuild\.fast\b",
        "#1 unknown cog.yaml key (build.fast)",
    ),
    (r"unknown (key|field)|unexpected key|not allowed here|did you mean", "#1 unknown cog.yaml key"),
    (r"Illegal option --|--mount=type=", "#3 BuildKit --mount flag in build.run"),
    (r"PPAs? (are|is|publishes) Ubuntu", "Ubuntu-only: add-apt-repository ppa: on a Debian base"),
    (
        r"(pip|pip3|curl|wget|git|add-apt-repository|apt|apt-get|bash|sudo|make|cmake)\b.{0,30}not found"
        r"|exit(ed with)? (status |code )?127\b|status 127",
        "#2 build.run tool missing (exit 127: pip/curl/wget/git/apt)",
    ),
    (r"externally-managed-environment|PEP 668", "#2 build.run pip blocked by PEP 668"),
    (r"No module named '(requests|yaml|structlog|typing_extensions)'", "#4 Cog SDK dependency missing"),
    (
        r"invalid requirement|not a valid requirement|unsupported requirement|cannot parse requirement",
        "#5 requirement form (URL/VCS/option/local artifact)",
    ),
    (r"python_version.*(patch|3\.\d+\.\d+)", "#6 Python patch version"),
    (
        r"cannot be (statically )?resolved statically|cannot be statically resolved",
        "same as Cog >= 0.19: static schema cannot resolve an expression",
    ),
    (r"minimum supported Python version is 3\.10", "same as Cog >= 0.17: python_version < 3.10"),
    (r"doesn't know which CUDA version is compatible with torch", "same as Cog: torch newer than its CUDA table"),
    (r"a local archive line takes no options", "#5 local artifact path with a space"),
    (r"torch version must be (specified|pinned)", "same as Cog: gpu: true needs a pinned torch"),
    (r"No module named 'pkg_resources'", "sdist's setup.py imports pkg_resources (gone from current setuptools)"),
    (
        r"building its sdist failed.{0,200}(was not found|pkg-config|No such file or directory: '[^']*-config')",
        "sdist built outside the image: system_packages (-dev libs) not visible",
    ),
    (r"weights \S+: source '[^']*' does not exist", "project: weights folder not in the repository"),
    (
        r"(Could not resolve host|Name or service not known|failed to lookup address"
        r"|Temporary failure in name resolution|Network is unreachable|Connection refused|timed out connecting)",
        "env: network host unreachable here",
    ),
    (
        r"No solution found|no version of|not satisfiable|unsatisfiable|ResolutionImpossible|Because .* depends on",
        "resolution: requirements unsatisfiable for the target",
    ),
    (
        r"Unable to locate package|has no installation candidate|not found in the archive"
        r"|no such (Debian )?package|unknown (system|Debian) package",
        "system_packages name not in Debian",
    ),
    (
        r"cannot import name 'Weights' from 'cog.types'",
        "same as Cog >= 0.17: cog.types.Weights (a 0.16 name) is gone from the SDK",
    ),
    (r"SETUP_FAILED|setup failed", "predictor setup failed"),
    (r"timed out after", "timeout"),
]


def ocibuild_commit() -> str:
    """The last commit that changed what a build does (not this script), "+dirty" when the tree differs."""
    paths = ["ocibuild", "layers", "base-images", "pyproject.toml", "uv.lock"]
    head = _git(["-C", str(ROOT), "log", "-1", "--format=%H", "--", *paths]).stdout.strip()
    dirty = _git(["-C", str(ROOT), "status", "--porcelain", "--", *paths]).stdout.strip()
    return head + ("+dirty" if dirty else "")


def now() -> str:
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------ fetching


def _git(args: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], capture_output=True, text=True, **kw)


def repo_gitdir(repo: str, commit: str, mirrors: Path, clones: Path, offline: bool) -> tuple[Path | None, str]:
    """A git dir holding `commit`, and how it was had (or None and why not)."""
    slug = repo.replace("/", "+")
    for cand in (mirrors / slug / "repo", mirrors / slug):
        if (cand / "objects").is_dir() and _git(
            ["--git-dir", str(cand), "cat-file", "-e", f"{commit}^{{commit}}"]
        ).returncode == 0:
            return cand, f"mirror {cand}"
    gd = clones / f"{slug}.git"
    if gd.is_dir() and _git(["--git-dir", str(gd), "cat-file", "-e", f"{commit}^{{commit}}"]).returncode == 0:
        return gd, f"clone {gd}"
    if offline:
        return None, "skipped: offline and no local mirror"
    gd.mkdir(parents=True, exist_ok=True)
    if not (gd / "HEAD").exists():
        _git(["init", "--bare", "-q", str(gd)])
    url = f"https://github.com/{repo}.git"
    try:
        r = _git(["--git-dir", str(gd), "fetch", "-q", "--depth", "1", url, commit], timeout=600)
    except subprocess.TimeoutExpired:
        return None, f"skipped: git fetch of {url} timed out"
    if r.returncode != 0:
        first = (r.stderr.strip().splitlines() or ["?"])[-1]
        return None, f"skipped: cannot fetch {url} @ {commit[:12]} (offline?): {first}"
    return gd, f"git fetch {url}"


def parse_txtar(text: str) -> dict[str, str]:
    files: dict[str, str] = {}
    name = None
    buf: list[str] = []
    for line in text.splitlines(keepends=True):
        m = re.match(r"^-- (.+) --\s*$", line)
        if m:
            if name is not None:
                files[name] = "".join(buf)
            name, buf = m.group(1).strip(), []
        elif name is not None:
            buf.append(line)
    if name is not None:
        files[name] = "".join(buf)
    return files


def export(gitdir: Path, p: dict, dest: Path) -> Path:
    commit = p["commit"]
    if p.get("txtar"):
        text = _git(["--git-dir", str(gitdir), "show", f"{commit}:{p['txtar']}"], check=True).stdout
        proj = dest / Path(p["txtar"]).stem
        for name, body in parse_txtar(text).items():
            f = proj / name
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text(body)
        return proj
    sub = p.get("subdir", "").strip("/")
    args = ["--git-dir", str(gitdir), "archive", "--format=tar", commit, *([sub] if sub else [])]
    arch = subprocess.run(["git", *args], capture_output=True)
    if arch.returncode == 0:
        subprocess.run(["tar", "-x", "-C", str(dest)], input=arch.stdout, check=True)
    else:  # a mirror may lack large blobs (snapshots leave out files of 4 MiB and more): export blob by blob
        missing = export_blobs(gitdir, commit, sub, dest)
        if missing:
            p.setdefault("_missing", []).extend(missing)
    return dest / sub if sub else dest


def export_blobs(gitdir: Path, commit: str, sub: str, dest: Path) -> list[str]:
    ls = _git(["--git-dir", str(gitdir), "ls-tree", "-r", "-z", commit, *([sub] if sub else [])], check=True).stdout
    missing = []
    for entry in filter(None, ls.split("\0")):
        meta, path = entry.split("\t", 1)
        mode, kind, sha = meta.split()
        if kind != "blob":
            continue
        r = subprocess.run(["git", "--git-dir", str(gitdir), "cat-file", "blob", sha], capture_output=True)
        if r.returncode != 0:
            missing.append(path)
            continue
        f = dest / path
        f.parent.mkdir(parents=True, exist_ok=True)
        if mode == "120000":
            f.symlink_to(r.stdout.decode())
        else:
            f.write_bytes(r.stdout)
            if mode == "100755":
                f.chmod(0o755)
    return missing


# ------------------------------------------------------------------------------------------ steps


def error_line(out: str, err: str) -> str:
    lines = [ln.strip() for ln in (err + "\n" + out).splitlines() if ln.strip()]
    for ln in reversed(lines):
        if re.match(r"^(error|Error|ERROR|fatal)\b", ln) or " error: " in ln or ln.startswith("Traceback"):
            return ln[:1500]
    for ln in reversed(lines):
        if re.search(r"(Error|error|failed|FAILED|not found)", ln):
            return ln[:1500]
    return (lines[-1] if lines else "")[:1500]


def classify(text: str) -> str:
    for pat, label in CAUSES:
        if re.search(pat, text, re.I | re.S):
            return label
    return "?"


def run_step(name: str, cmd: list[str], cwd: Path, timeout: int, logf: Path, env: dict) -> dict:
    t0 = time.monotonic()
    try:
        r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
        rc, out, err = r.returncode, r.stdout, r.stderr
    except subprocess.TimeoutExpired as e:
        rc = 124
        out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        err = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
        err += f"\nerror: timed out after {timeout}s"
    wall = round(time.monotonic() - t0, 1)
    with logf.open("a") as fh:
        fh.write(
            f"\n$ {shlex.join(cmd)}\n# rc={rc} wall={wall}s\n--- stdout\n{out[-20000:]}\n--- stderr\n{err[-20000:]}\n"
        )
    res = {"step": name, "rc": rc, "wall_s": wall}
    if rc != 0:
        res["error"] = error_line(out, err)
        res["cause"] = classify(err + "\n" + out)
    res["_stdout"] = out
    return res


def find_links_dir() -> str | None:
    env = os.environ.get("OCIBUILD_COMPAT_FIND_LINKS")
    if env:
        return env
    try:
        out = subprocess.run(
            [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, timeout=30
        ).stdout
    except Exception:
        out = ""
    if not out:
        pip = shutil.which("pip") or shutil.which("pip3")
        if pip:
            out = subprocess.run([pip, "config", "list"], capture_output=True, text=True, timeout=30).stdout
    for line in out.splitlines():
        m = re.match(r"^\S*find-links='([^']+)'", line)
        if m and Path(m.group(1)).is_dir():
            return m.group(1)
    return None


def mentions_torch(proj: Path) -> bool:
    for f in [proj / "cog.yaml", *proj.glob("requirements*.txt")]:
        if f.is_file() and re.search(r"(^|[\s\"'-])torch\b", f.read_text(errors="replace"), re.M):
            return True
    return False


def run_project(p: dict, a, mirrors: Path, clones: Path, workroot: Path, fl: str | None) -> dict:
    steps = list(p.get("steps") or (["schema", "lock"] if p.get("gpu") else ALL_STEPS))
    if a.steps:
        steps = [s for s in steps if s in a.steps]
    rec = {
        "name": p["name"],
        "repo": p["repo"],
        "commit": p["commit"],
        "path": p.get("txtar") or p.get("subdir", ""),
        "features": p.get("features", []),
        "gpu": bool(p.get("gpu")),
        "planned": steps,
        "note": p.get("note", ""),
        "steps": {},
    }
    gitdir, how = repo_gitdir(p["repo"], p["commit"], mirrors, clones, a.offline)
    rec["source"] = how
    if gitdir is None:
        rec["skipped"] = how
        log(f"  {how}")
        return rec
    tmp = Path(tempfile.mkdtemp(prefix="proj-", dir=workroot))
    logf = workroot / "logs" / (re.sub(r"[^A-Za-z0-9_.-]+", "_", p["name"]) + ".log")
    logf.parent.mkdir(parents=True, exist_ok=True)
    logf.write_text(f"# {p['name']} {p['repo']}@{p['commit']} {rec['path']}\n")
    try:
        try:
            proj = export(gitdir, p, tmp)
        except (subprocess.CalledProcessError, OSError, ValueError) as e:
            rec["skipped"] = f"export failed: {e}"
            return rec
        if p.get("_missing"):
            rec["missing_files"] = p.pop("_missing")
        env = dict(os.environ, PYTHONPATH=str(a.ocibuild_root) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        for cmd in p.get("setup", []):
            r = subprocess.run(["bash", "-c", cmd], cwd=proj, capture_output=True, text=True, timeout=300)
            with logf.open("a") as fh:
                fh.write(f"\n$ (setup) {cmd}\n# rc={r.returncode}\n{r.stdout}{r.stderr}\n")
            if r.returncode != 0:
                rec["skipped"] = f"setup failed: {cmd}: {error_line(r.stdout, r.stderr)}"
                return rec
        if a.substitute_python:
            cy = proj / "cog.yaml"
            if cy.is_file():
                text = cy.read_text()
                for old, new in a.substitute_python.items():
                    pat = re.compile(r'(python_version:\s*["\']?)' + re.escape(old) + r'((\.\d+)?["\']?\s*$)', re.M)
                    if pat.search(text):
                        text = pat.sub(lambda m, new=new: m.group(1) + new + m.group(2), text)
                        rec["python_substituted"] = f"{old}->{new}"
                cy.write_text(text)
        ob = [sys.executable, "-m", "ocibuild"]
        common = ["--cache-dir", a.cache_dir]
        # The local folder holds a CPU torch wheel: offered to CPU projects that need torch. Never to GPU stacks:
        # ocibuild (like uv) takes a --find-links folder as the torch source and then skips the CUDA index.
        # --gpu-find-links (what-if, for machines without download.pytorch.org): GPU stacks too, so that torch comes
        # from PyPI (whose Linux torch wheels are CUDA builds) and the rest of the resolution is exercised.
        gpu_ok = not p.get("gpu") or a.gpu_find_links
        extra_fl = ["--find-links", fl] if fl and gpu_ok and mentions_torch(proj) else []
        rec["find_links"] = bool(extra_fl)
        layout = tmp / "_layout"
        for step in steps:
            if step == "schema":
                cmd = [*ob, "schema", str(proj), *common]
            elif step == "lock":
                cmd = [*ob, "lock", str(proj), *extra_fl, *common]
            elif step == "build":
                sec = [x for k, v in (p.get("secrets") or {}).items() for x in ("--secret", f"id={k},src={proj / v}")]
                ca = [x for c in a.ca_cert for x in ("--ca-cert", c)]
                cmd = [*ob, "build", str(proj), "-o", str(layout), *extra_fl, *sec, *ca, *common]
            else:
                if not layout.is_dir():
                    rec["steps"][step] = {"step": step, "rc": None, "skipped": "no image"}
                    continue
                cmd = [*ob, "predict", str(layout), *common]
                if p.get("json") is not None:
                    cmd += ["--json", json.dumps(p["json"])]
                for k, v in (p.get("inputs") or {}).items():
                    v = str(v)
                    if v.startswith("@repo:"):
                        src = v[len("@repo:") :]
                        f = tmp / "_inputs" / Path(src).name
                        f.parent.mkdir(parents=True, exist_ok=True)
                        f.write_bytes(
                            subprocess.run(
                                ["git", "--git-dir", str(gitdir), "show", f"{p['commit']}:{src}"],
                                capture_output=True,
                                check=True,
                            ).stdout
                        )
                        v = "@" + str(f)
                    cmd += ["-i", f"{k}={v}"]
            log(f"  {step} ...")
            cwd = proj
            if step == "predict":  # file outputs land in the working directory, as with `cog predict`
                cwd = tmp / "_out"
                cwd.mkdir(exist_ok=True)
            res = run_step(step, cmd, cwd, a.timeout.get(step, TIMEOUTS[step]), logf, env)
            out = res.pop("_stdout")
            if step == "schema" and res["rc"] == 0:
                try:
                    doc = json.loads(out)
                    inp = doc.get("components", {}).get("schemas", {}).get("Input", {}).get("properties", {})
                    res["inputs"] = sorted(inp)
                except Exception as e:
                    res["rc"], res["error"], res["cause"] = 1, f"schema output is not JSON: {e}", "?"
            if step == "predict" and res["rc"] == 0:
                res["output"] = out.strip()[:200]
                if p.get("expect") and p["expect"] not in out:
                    res["rc"], res["error"], res["cause"] = (
                        1,
                        f"output lacks {p['expect']!r}: {out.strip()[:200]!r}",
                        "wrong output",
                    )
            if step == "build" and res["rc"] == 0:
                res["digest"] = (re.findall(r"sha256:[0-9a-f]{64}", out) or [""])[-1]
            rec["steps"][step] = res
            log(f"  {step}: rc={res['rc']} {res['wall_s']}s {res.get('error', '')[:160]}")
            if res["rc"] != 0 and step != "schema":  # resolution does not depend on the schema: lock still runs
                for rest in steps[steps.index(step) + 1 :]:
                    rec["steps"][rest] = {"step": rest, "rc": None, "skipped": f"{step} failed"}
                break
    finally:
        if not a.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    return rec


# ------------------------------------------------------------------------------------------ reporting


def cell(rec: dict, step: str) -> str:
    if rec.get("skipped"):
        return "skip"
    s = rec["steps"].get(step)
    if s is None:
        return "–"
    if s.get("rc") is None:
        return "–"
    if s["rc"] == 0:
        return f"ok {s['wall_s']:g}s"
    return f"**fail** {s['wall_s']:g}s"


def failures(rec: dict) -> list[dict]:
    return [s for st in ALL_STEPS if (s := rec["steps"].get(st)) and s.get("rc") not in (0, None)]


def first_failure(rec: dict) -> dict | None:
    for st in ALL_STEPS:
        s = rec["steps"].get(st)
        if s and s.get("rc") not in (0, None):
            return s
    return None


def md_escape(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def render_table(results: dict) -> str:
    rows = [
        "| # | project (repo@commit path) | features | schema | lock | build | predict | cause / notes |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for i, rec in enumerate(results["projects"], 1):
        where = f"`{rec['repo']}@{rec['commit'][:10]}`" + (f" `{rec['path']}`" if rec["path"] else "")
        notes = []
        if rec.get("skipped"):
            notes.append(rec["skipped"])
        for ff in failures(rec):
            notes.append(f"{ff['step']}: {ff.get('cause', '?')} — `{md_escape(ff.get('error', ''))[:220]}`")
        if rec["gpu"]:
            notes.append("GPU stack: lock only")
        if rec.get("note"):
            notes.append(rec["note"])
        if rec.get("missing_files"):
            notes.append(f"{len(rec['missing_files'])} large file(s) absent from the mirror snapshot")
        if rec.get("python_substituted"):
            notes.append(f"python_version {rec['python_substituted']} (what-if)")
        pr = rec["steps"].get("predict", {})
        if pr.get("rc") == 0 and pr.get("output"):
            notes.append(f"output `{md_escape(pr['output'])[:60]}`")
        rows.append(
            f"| {i} | **{md_escape(rec['name'])}**<br>{where} | {md_escape(', '.join(rec['features']))} | "
            f"{cell(rec, 'schema')} | {cell(rec, 'lock')} | {cell(rec, 'build')} | {cell(rec, 'predict')} | "
            f"{md_escape('; '.join(notes))} |"
        )
    return "\n".join(rows)


def summarize(results: dict) -> dict:
    ps = results["projects"]

    def n(step):
        return sum(1 for r in ps if r["steps"].get(step, {}).get("rc") == 0)

    def tried(step):
        return sum(1 for r in ps if r["steps"].get(step, {}).get("rc") is not None)

    causes: dict[str, list[str]] = {}
    for r in ps:
        fs = failures(r)
        for c in dict.fromkeys(f.get("cause", "?") for f in fs):
            causes.setdefault(c, []).append(r["name"])
        if not fs and r.get("skipped"):
            why = r["skipped"].removeprefix("skipped: ")
            offline = why.startswith(("cannot fetch", "offline", "git fetch"))
            kind = "not fetched (offline, no mirror)" if offline else why
            causes.setdefault("skipped: " + kind.split(": ")[0], []).append(r["name"])
    return {
        "projects": len(ps),
        "repos": len({r["repo"] for r in ps}),
        "schema_ok": n("schema"),
        "schema_tried": tried("schema"),
        "lock_ok": n("lock"),
        "lock_tried": tried("lock"),
        "build_ok": n("build"),
        "build_tried": tried("build"),
        "predict_ok": n("predict"),
        "predict_tried": tried("predict"),
        "causes": dict(sorted(causes.items(), key=lambda kv: -len(kv[1]))),
    }


def _commits(meta: dict, results: dict) -> str:
    """The ocibuild commit of the run, or of each part of a merged one (``--merge``)."""
    counts: dict[str, int] = {}
    for r in results.get("projects", []):
        commit = r.get("ocibuild_commit", meta["ocibuild_commit"])[:10]
        counts[commit] = counts.get(commit, 0) + 1
    if len(counts) <= 1:
        return f"`{meta['ocibuild_commit'][:10]}`"
    return ", ".join(f"`{c}` for {n} project{'s' * (n > 1)}" for c, n in counts.items())


def render_summary(s: dict, meta: dict, results: dict | None = None) -> str:
    lines = [
        f"**{s['projects']} projects** from {s['repos']} repositories: "
        f"**{s['schema_ok']}/{s['schema_tried']} schema OK, {s['lock_ok']}/{s['lock_tried']} lock, "
        f"{s['build_ok']}/{s['build_tried']} build, {s['predict_ok']}/{s['predict_tried']} predict** "
        f"(ocibuild {_commits(meta, results or {})}, run {meta['started']} – {meta['finished']}).",
        "",
        "Failures by cause (a project counts once per cause; it may have several):",
        "",
    ]
    for c, names in s["causes"].items():
        lines.append(f"- {len(names)} × {c}: {', '.join(names)}")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default=str(CORPUS))
    ap.add_argument("--only", action="append", default=[], help="run the projects whose name contains this")
    ap.add_argument("--steps", help="comma list, a subset of schema,lock,build,predict")
    ap.add_argument(
        "--cache-dir",
        default=os.environ.get("OCIBUILD_COMPAT_CACHE", str(Path.home() / ".cache" / "ocibuild-compat" / "store")),
    )
    ap.add_argument(
        "--mirrors",
        default=os.environ.get("OCIBUILD_COMPAT_MIRRORS", ""),
        help="a folder of bare repository snapshots named OWNER+NAME (default: none; fetch with git)",
    )
    ap.add_argument("--clones", default=str(Path.home() / ".cache" / "ocibuild-compat" / "git"))
    ap.add_argument("--workdir", help="where projects are exported and logs kept (default: a temp dir)")
    ap.add_argument("--json", default="compat-results.json")
    ap.add_argument("--markdown", help="write the summary and table here")
    ap.add_argument("--update-doc", help="rewrite the table between the corpus markers of this document")
    ap.add_argument("--reclassify", action="store_true", help="with --report-only: classify every failure again")
    ap.add_argument("--doc-section", default="corpus", help="which <!-- NAME:begin/end --> block to rewrite")
    ap.add_argument(
        "--ocibuild-root",
        default=str(ROOT),
        help="run the ocibuild package found here (e.g. an export of another commit; same virtualenv)",
    )
    ap.add_argument("--ocibuild-rev", help="the commit that --ocibuild-root holds (for the record)")
    ap.add_argument(
        "--ca-cert",
        action="append",
        default=[c for c in os.environ.get("OCIBUILD_COMPAT_CA_CERT", "").split(os.pathsep) if c],
        help="passed to build: a CA that build.run needs (a TLS-intercepting egress proxy); $OCIBUILD_COMPAT_CA_CERT",
    )
    ap.add_argument("--cpu-only", action="store_true", help="leave out the GPU stacks")
    ap.add_argument("--gpu-only", action="store_true", help="only the GPU stacks")
    ap.add_argument(
        "--gpu-find-links",
        action="store_true",
        help="what-if: give GPU stacks the local wheel folder too (torch from PyPI instead of the CUDA index)",
    )
    ap.add_argument("--report-only", metavar="JSON", help="render an earlier results file (causes reclassified)")
    ap.add_argument("--merge", help="earlier results JSON: projects not run now keep their earlier result")
    ap.add_argument("--offline", action="store_true", help="use local mirrors only")
    ap.add_argument("--keep", action="store_true", help="keep the exported projects and images")
    ap.add_argument("--timeout", action="append", default=[], help="STEP=SECONDS")
    ap.add_argument(
        "--substitute-python",
        action="append",
        default=[],
        metavar="OLD=NEW",
        help="what-if: rewrite python_version OLD (e.g. 3.12) to NEW in the exported cog.yaml, for "
        "machines where OLD cannot be had; recorded per project",
    )
    a = ap.parse_args()
    a.steps = set(a.steps.split(",")) if a.steps else None
    a.timeout = {k: int(v) for k, v in (t.split("=", 1) for t in a.timeout)}
    a.substitute_python = dict(t.split("=", 1) for t in a.substitute_python)

    if a.report_only:
        results = json.loads(Path(a.report_only).read_text())
        for r in results["projects"]:
            for st in failures(r):
                if st.get("cause") in (None, "?") or a.reclassify:
                    st["cause"] = classify(st.get("error", ""))
        return report(results, a)
    corpus = tomllib.loads(Path(a.corpus).read_text())["project"]
    if a.only:
        corpus = [p for p in corpus if any(o in p["name"] for o in a.only)]
    if a.cpu_only:
        corpus = [p for p in corpus if not p.get("gpu")]
    if a.gpu_only:
        corpus = [p for p in corpus if p.get("gpu")]
    workroot = Path(a.workdir or tempfile.mkdtemp(prefix="ocibuild-compat-"))
    workroot.mkdir(parents=True, exist_ok=True)
    fl = find_links_dir()
    meta = {
        "started": now(),
        "ocibuild_commit": a.ocibuild_rev or ocibuild_commit(),
        "ocibuild_root": a.ocibuild_root,
        "python": sys.version.split()[0],
        "find_links": fl,
        "substitute_python": a.substitute_python,
        "gpu_find_links": a.gpu_find_links,
        "ca_cert": a.ca_cert,
        "cache_dir": a.cache_dir,
        "logs": str(workroot / "logs"),
    }
    log(f"{len(corpus)} projects; work dir {workroot}; find-links {fl}")
    recs = []
    for i, p in enumerate(corpus, 1):
        log(f"[{i}/{len(corpus)}] {p['name']}")
        recs.append(run_project(p, a, Path(a.mirrors), Path(a.clones), workroot, fl))
        Path(a.json).write_text(portable_json({"meta": meta, "projects": recs}, a, workroot))
    if a.merge and Path(a.merge).exists():
        earlier = json.loads(Path(a.merge).read_text())
        old = {r["name"]: r for r in earlier["projects"]}
        meta["started"] = min(meta["started"], earlier["meta"].get("started", meta["started"]))
        meta["merged"] = [*earlier["meta"].get("merged", []), a.merge]
        for r in earlier["projects"]:
            r.setdefault("ocibuild_commit", earlier["meta"]["ocibuild_commit"])
        new = {r["name"]: {**r, "ocibuild_commit": meta["ocibuild_commit"]} for r in recs}
        order = [p["name"] for p in tomllib.loads(Path(a.corpus).read_text())["project"]]
        recs = [new.get(n) or old[n] for n in order if n in new or n in old]
    meta["finished"] = now()
    return report({"meta": meta, "projects": recs}, a)


def portable_json(doc: dict, a, workroot: Path) -> str:
    """The results as JSON with this machine's folders named by the option or variable that set them."""
    text = json.dumps(doc, indent=1) + "\n"
    roots = {str(workroot): "$WORKDIR", a.cache_dir: "$OCIBUILD_COMPAT_CACHE", a.clones: "$CLONES"}
    if a.mirrors:
        roots[a.mirrors] = "$OCIBUILD_COMPAT_MIRRORS"
    roots[str(Path.home())] = "~"
    for root, name in sorted(roots.items(), key=lambda item: -len(item[0])):
        text = text.replace(json.dumps(root)[1:-1], name)
    return text


def report(results: dict, a) -> int:
    meta = results["meta"]
    results["summary"] = summarize(results)
    Path(a.json).write_text(portable_json(results, a, Path(meta.get("logs", ".")).parent))
    table = render_table(results)
    summary = render_summary(results["summary"], meta, results)
    if a.markdown:
        Path(a.markdown).write_text(summary + "\n\n" + table + "\n")
    if a.update_doc:
        doc = Path(a.update_doc)
        text = doc.read_text()
        begin, end = (m.format(a.doc_section) for m in MARKERS)
        if begin not in text or end not in text:
            print(f"error: {doc} has no {begin} … {end} markers", file=sys.stderr)
            return 2
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        doc.write_text(head + begin + "\n" + summary + "\n\n" + table + "\n" + end + tail)
    print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
