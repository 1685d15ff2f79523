"""Model weights: find them, resolve ``weights:`` entries, and pack them into content-addressed layers.

Packing rules (Cog's draft weights spec, §1): each file at or above ``single_threshold`` gets its own
single-file layer (uncompressed by default: weights are high-entropy and ``scripts/bench_weights.py`` shows
plain tar unpacks fastest); smaller files are bundled in path order into gzip layers of up to ``bundle_max``
bytes. No path is in two layers, entries carry mtime 0, uid/gid 0 and mode 0644, so a layer depends only on
its files' contents and image paths: the same weight file at the same path gives the same layer digest in
every image and project.

A layer's key is the recipe, its compression and its (path, file digest) pairs. File digests come from stat
fingerprints (``fingerprint.py``), so an unchanged weight file is never opened again; a new or changed file
is read exactly once, hashing the file and the layer in the same pass.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import stat
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlparse

from ocibuild.errors import BuildError, UserInputError
from ocibuild.oci.canonical import canonical_json
from ocibuild.oci.compression import Compression, open_compressor
from ocibuild.oci.digest import HashingWriter, is_digest, sha256_digest
from ocibuild.oci.entries import Entry, EntryKind
from ocibuild.oci.layer import LayerBlob
from ocibuild.oci.store import Store
from ocibuild.oci.tarwriter import BLOCK, RECORD, plan_entries, tar_header
from ocibuild.sources.project.code import IMAGE_DIR, ProjectEntry, project_relative, walk_project
from ocibuild.sources.project.fingerprint import FingerprintCache, ReadStats
from ocibuild.sources.project.ignore import IgnoreRules

WEIGHTS_RECIPE = "ocibuild-weights-layer/v1"
FIND_THRESHOLD = 10 << 20
SINGLE_THRESHOLD = 64 << 20
BUNDLE_MAX = 256 << 20
MAX_LAYERS = 80
CHUNK = 8 << 20
HTTP_TIMEOUT = (10, 60)

CODE_SUFFIXES = (".py", ".ipynb")
NOT_WEIGHT_SUFFIXES = (
    *CODE_SUFFIXES,
    ".whl",
    *(".jpg", ".jpeg", ".png", ".webp", ".svg", ".gif", ".avif", ".heic"),
    *(".mp4", ".mov", ".avi", ".wmv", ".mkv", ".webm"),
    *(".mp3", ".wav", ".ogg", ".flac", ".aac", ".m4a"),
    ".log",
)


@dataclass(frozen=True)
class WeightSource:
    """One ``source`` of a ``weights:`` entry: a URI (path, ``file://``, ``https://``, ``hf://``) and globs."""

    uri: str
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()


@dataclass(frozen=True)
class WeightSpec:
    """One ``weights:`` entry: a name, an absolute target directory in the image and its sources."""

    name: str
    target: str
    sources: tuple[WeightSource, ...]


@dataclass(frozen=True)
class WeightFile:
    """A file to ship: its absolute path in the image, where its bytes are, and its digest when pinned."""

    path: str
    source: Path
    digest: str | None = None


@dataclass(frozen=True)
class WeightSet:
    """A resolved ``weights:`` entry; ``project_paths`` are the project paths it took files from."""

    name: str
    target: str
    files: tuple[WeightFile, ...]
    project_paths: tuple[str, ...] = ()


@dataclass
class WeightsLock:
    """The ``weights`` section of the project lock.

    ``urls``: download URL -> sha256 digest; ``hf``: ``hf://`` URI -> ``{"commit", "files"}`` (the file list
    of the repository at that commit, so a locked build needs no Hub call when the files are in the store).
    """

    urls: dict[str, str] = field(default_factory=dict)
    hf: dict[str, dict] = field(default_factory=dict)

    def to_dict(self) -> dict[str, dict]:
        return {"hf": dict(sorted(self.hf.items())), "urls": dict(sorted(self.urls.items()))}

    @classmethod
    def from_dict(cls, data: Mapping) -> WeightsLock:
        urls, hf = dict(data.get("urls") or {}), dict(data.get("hf") or {})
        bad = [u for u, d in urls.items() if not isinstance(d, str) or not is_digest(d)]
        if bad:
            raise UserInputError(f"ocibuild.lock: weights.urls[{bad[0]!r}] is not a sha256 digest")
        for uri, pin in hf.items():
            if not (
                isinstance(pin, dict) and isinstance(pin.get("commit"), str) and isinstance(pin.get("files"), list)
            ):
                raise UserInputError(f"ocibuild.lock: weights.hf[{uri!r}] needs a commit and a file list")
        return cls(urls, hf)


Found = tuple[str, Path, "str | None"]
"""A resolved source file: its path relative to the weight's target, its local file, its digest if pinned."""


# Finding weights in the project (cog build --separate-weights)


def find_weights(project_dir: Path, threshold: int = FIND_THRESHOLD) -> list[str]:
    """Project paths (directories and files) holding weights, found as Cog's ``--separate-weights`` does.

    Large files (``>= threshold``) that are not code, wheels, media or logs count as weights. The shallowest
    directory holding them goes whole, unless it also holds code (``.py``/``.ipynb``): then, where Cog would
    drop the directory, its large files are listed one by one. Large files at the root are listed alone.
    Ignored and always-skipped paths (``.git``, ``.cog``, ``__pycache__``, ``.venv``) are never weights.
    """
    files = [e for e in walk_project(project_dir) if not e.is_dir and not e.is_link]
    code = [e.rel for e in files if e.rel.lower().endswith(CODE_SUFFIXES)]
    big = sorted(
        (e.rel for e in files if e.st.st_size >= threshold and not e.rel.lower().endswith(NOT_WEIGHT_SUFFIXES)),
        key=lambda rel: (rel.count("/"), rel.split("/")),
    )
    dirs: list[str] = []
    for rel in big:
        parent = posixpath.dirname(rel)
        if parent and not any(_under(parent, d) for d in dirs):
            dirs.append(parent)
    dirs = [d for d in dirs if not any(_under(c, d) for c in code)]
    loose = [rel for rel in big if not any(_under(rel, d) for d in dirs)]
    return sorted(dirs + loose)


def _under(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory + "/")


def project_weight_files(project_dir: Path, paths: Iterable[str], image_dir: str = "/" + IMAGE_DIR) -> list[WeightFile]:
    """The files under ``paths`` (from ``find_weights``) placed at ``image_dir/<path>``; links are resolved."""
    root = Path(project_dir).resolve()
    wanted = [project_relative(root, p, "weights path") for p in paths]
    out = []
    for entry in walk_project(root):
        if entry.is_dir or not any(_under(entry.rel, w) for w in wanted):
            continue
        out.append(WeightFile(f"{image_dir.rstrip('/')}/{entry.rel}", _regular_file(root, entry)))
    return out


def _regular_file(root: Path, entry: ProjectEntry) -> Path:
    """The file behind ``entry``: symlinks (already checked to stay inside ``root``) resolved to a file."""
    if not entry.is_link:
        return entry.path
    real = Path(os.path.realpath(entry.path))
    if not real.is_file():
        raise UserInputError(f"{entry.rel}: weights may only be regular files (symlink to a non-file)")
    return real


# Resolving weights: entries of cog.yaml


def resolve_weight_specs(
    specs: Sequence[WeightSpec], project_dir: Path, store: Store, lock: WeightsLock | None = None
) -> tuple[list[WeightSet], WeightsLock]:
    """Resolve every spec to files on this machine; remote files are downloaded into the store and verified.

    With ``lock`` given, every ``https://`` file must be pinned in it and ``hf://`` sources use the pinned
    commit (no Hub call when all their files are already in the store). Without it, URLs are resolved and
    hashed, and the returned lock pins them.
    """
    frozen = lock is not None
    lock = WeightsLock(dict(lock.urls), dict(lock.hf)) if frozen else WeightsLock()
    sets = []
    for spec in specs:
        if not spec.target.startswith("/") or posixpath.normpath(spec.target) == "/":
            raise UserInputError(f"weights {spec.name}: target must be an absolute directory other than /")
        target = posixpath.normpath(spec.target)
        files: dict[str, WeightFile] = {}
        project_paths: list[str] = []
        for source in spec.sources:
            for rel, local, digest in _resolve_source(
                spec.name, source, Path(project_dir), store, lock, frozen, project_paths
            ):
                path = f"{target}/{rel}"
                if path in files:
                    raise UserInputError(f"weights {spec.name}: two sources give {path}")
                files[path] = WeightFile(path, local, digest)
        if not files:
            raise UserInputError(f"weights {spec.name}: the sources hold no files")
        sets.append(WeightSet(spec.name, target, tuple(files[p] for p in sorted(files)), tuple(project_paths)))
    return sets, lock


def _resolve_source(
    name: str,
    source: WeightSource,
    project_dir: Path,
    store: Store,
    lock: WeightsLock,
    frozen: bool,
    project_paths: list[str],
) -> list[Found]:
    """The files of one source, filtered by its include/exclude globs."""
    uri = source.uri
    keep = _glob_filter(name, source)
    if uri.startswith("hf://"):
        return _hf_files(name, uri, keep, store, lock, frozen)
    if uri.startswith(("https://", "http://")):
        basename = posixpath.basename(urlparse(uri).path)
        if not basename:
            raise UserInputError(f"weights {name}: {uri} does not name a file")
        return [(basename, *_fetch(name, uri, store, lock, frozen))] if keep(basename) else []
    if "://" in uri and not uri.startswith("file://"):
        raise UserInputError(f"weights {name}: unsupported source {uri!r} (use a path, file://, https:// or hf://)")
    rel = project_relative(project_dir, uri.removeprefix("file://") or ".", f"weights {name}: source")
    project_paths.append(rel)
    return [f for f in _local_files(name, project_dir.resolve(), rel) if keep(f[0])]


def _glob_filter(name: str, source: WeightSource):
    """A predicate on target-relative paths: in an ``include`` glob (if any) and in no ``exclude`` glob.

    Globs use the ignore-file syntax; one without ``/`` also matches a file's name at any depth.
    """
    include = IgnoreRules.from_patterns(source.include, f"weights {name} include") if source.include else None
    exclude = IgnoreRules.from_patterns(source.exclude, f"weights {name} exclude")

    def matches(rules: IgnoreRules, rel: str) -> bool:
        if rules.excluded(rel):
            return True
        base = posixpath.basename(rel)
        return any("/" not in rule.pattern and rule.regex.match(base) for rule in rules.rules)

    return lambda rel: (include is None or matches(include, rel)) and not matches(exclude, rel)


def _local_files(name: str, root: Path, rel: str) -> list[Found]:
    """A project file (placed under its own name) or a directory's files (placed by relative path)."""
    path = root / rel
    real = Path(os.path.realpath(path))
    if real != root and root not in real.parents:
        raise UserInputError(f"weights {name}: source {rel!r} leads outside the project (symlink)")
    if real.is_file():
        return [(posixpath.basename(rel), real, None)]
    if not real.is_dir():
        raise UserInputError(f"weights {name}: source {rel!r} does not exist")
    if (real / ".cog").exists():
        raise UserInputError(f"weights {name}: source {rel!r} holds .cog, which is reserved for weight state")
    return [
        (entry.rel, _regular_file(root, entry), None)
        for entry in walk_project(real, rules=IgnoreRules(), link_root=root)
        if not entry.is_dir
    ]


def _fetch(name: str, url: str, store: Store, lock: WeightsLock, frozen: bool) -> tuple[Path, str]:
    """(store path, digest) of a downloaded file: no download when the pinned blob is there; verified."""
    pinned = lock.urls.get(url)
    if pinned is None and frozen:
        raise UserInputError(f"weights {name}: {url} is not pinned in ocibuild.lock; re-lock the project")
    if pinned is not None and store.has_blob(pinned):
        return store.blob_path(pinned), pinned
    digest = _download(name, url, store, pinned)
    lock.urls[url] = digest
    return store.blob_path(digest), digest


def _session(url: str):
    """A session for ``url``; it carries ``HF_TOKEN`` only when ``url`` is on the Hugging Face endpoint."""
    import requests

    session = requests.Session()
    token = os.environ.get("HF_TOKEN")
    if token and urlparse(url).netloc == urlparse(_hf_endpoint()).netloc:
        session.headers["Authorization"] = f"Bearer {token}"
    return session


def _download(name: str, url: str, store: Store, expected: str | None) -> str:
    import requests

    store.require_online(f"weights file {name} ({url})")
    try:
        with _session(url).get(url, stream=True, timeout=HTTP_TIMEOUT) as response:
            response.raise_for_status()
            with store.temp_path(".download") as temp:
                writer = HashingWriter()
                with open(temp, "wb") as out:
                    for chunk in response.iter_content(CHUNK):
                        writer.write(chunk)
                        out.write(chunk)
                if expected is not None and writer.digest != expected:
                    raise BuildError(f"weights {name}: {url} has digest {writer.digest}, the lock pins {expected}")
                store.commit_blob(temp, writer.digest)
    except requests.RequestException as e:
        raise BuildError(f"weights {name}: cannot download {url}: {_one_line(e)}") from None
    return writer.digest


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def _hf_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def _hf_files(name: str, uri: str, keep, store: Store, lock: WeightsLock, frozen: bool) -> list[Found]:
    """The kept files of ``hf://org/repo[@rev]`` at its pinned (or newly resolved) commit, in the store."""
    repo, _, revision = uri.removeprefix("hf://").partition("@")
    if repo.count("/") != 1 or not all(repo.split("/")):
        raise UserInputError(f"weights {name}: {uri!r} must look like hf://org/repo[@revision]")
    pin = lock.hf.get(uri)
    if pin is None:
        if frozen:
            raise UserInputError(f"weights {name}: {uri} is not pinned in ocibuild.lock; re-lock the project")
        commit, listing = _hf_listing(name, repo, revision or "main")
        pin = lock.hf[uri] = {"commit": commit, "files": listing}
    prefix = f"{_hf_endpoint()}/{repo}/resolve/{pin['commit']}/"
    return [(path, *_fetch(name, prefix + quote(path), store, lock, frozen)) for path in pin["files"] if keep(path)]


def _hf_listing(name: str, repo: str, revision: str) -> tuple[str, list[str]]:
    """(commit, file paths) of a Hub model repository at ``revision``, through the Hub API."""
    import requests

    url = f"{_hf_endpoint()}/api/models/{repo}/revision/{quote(revision, safe='')}"
    try:
        response = _session(url).get(url, timeout=HTTP_TIMEOUT)
        response.raise_for_status()
        info = response.json()
        return info["sha"], sorted(s["rfilename"] for s in info["siblings"])
    except requests.RequestException as e:
        raise BuildError(
            f"weights {name}: cannot reach the Hugging Face Hub for {repo}@{revision}: {_one_line(e)}"
        ) from None
    except (ValueError, KeyError, TypeError) as e:
        raise BuildError(f"weights {name}: unexpected Hub answer for {repo}@{revision}: {_one_line(e)}") from None


# Packing weights into layers


@dataclass(frozen=True)
class PackedFile:
    """One file of a packed layer: its path inside the layer, size and content digest."""

    path: str
    size: int
    digest: str


@dataclass(frozen=True)
class PackedLayer:
    name: str
    layer: LayerBlob
    files: tuple[PackedFile, ...]


@dataclass(frozen=True)
class _Item:
    tar_path: str
    file: WeightFile
    st: os.stat_result


def weights_layers(
    files: Sequence[WeightFile],
    store: Store,
    *,
    compression: Compression | str = Compression.NONE,
    stats: ReadStats | None = None,
    single_threshold: int = SINGLE_THRESHOLD,
) -> list[tuple[str, LayerBlob]]:
    """Image layers for ``files`` (absolute image paths): one per large file, small ones bundled."""
    packed = pack_weights(files, store, compression=compression, stats=stats, single_threshold=single_threshold)
    return [(p.name, p.layer) for p in packed]


def pack_weights(
    files: Sequence[WeightFile],
    store: Store,
    *,
    root: str = "/",
    compression: Compression | str = Compression.NONE,
    stats: ReadStats | None = None,
    single_threshold: int = SINGLE_THRESHOLD,
    bundle_max: int = BUNDLE_MAX,
    max_layers: int = MAX_LAYERS,
) -> list[PackedLayer]:
    """Pack ``files`` into disjoint layers whose paths are relative to ``root``, reusing stored ones."""
    compression = Compression(compression)
    stats = stats if stats is not None else ReadStats()
    items = sorted(_items(files, root), key=lambda i: i.tar_path.split("/"))
    cache = FingerprintCache(store, stats)
    try:
        return [
            _pack_group(group, store, compression if single else Compression.GZIP, cache, stats)
            for group, single in _groups(items, single_threshold, bundle_max, max_layers)
        ]
    finally:
        cache.save()


def _items(files: Sequence[WeightFile], root: str) -> list[_Item]:
    root = posixpath.normpath("/" + root.strip("/"))
    seen: set[str] = set()
    items = []
    for file in files:
        path = posixpath.normpath(file.path)
        rel = posixpath.relpath(path, root) if path.startswith("/") else ".."
        if rel == "." or rel.startswith(".."):
            raise UserInputError(f"weights path {file.path!r} is not inside {root}")
        if rel in seen:
            raise UserInputError(f"weights path {path} is given twice")
        seen.add(rel)
        st = os.stat(file.source)
        if not stat.S_ISREG(st.st_mode):
            raise UserInputError(f"weights file {file.source} is not a regular file")
        items.append(_Item(rel, file, st))
    return items


def _groups(
    items: list[_Item], single_threshold: int, bundle_max: int, max_layers: int
) -> list[tuple[list[_Item], bool]]:
    """Layers as (items, is_single_or_large): large files alone (grouped only past ``max_layers``), small bundled."""
    large = [i for i in items if i.st.st_size >= single_threshold]
    bundles: list[list[_Item]] = []
    for item in (i for i in items if i.st.st_size < single_threshold):
        if not bundles or sum(i.st.st_size for i in bundles[-1]) + item.st.st_size > bundle_max:
            bundles.append([])
        bundles[-1].append(item)
    slots = max(1, max_layers - len(bundles))
    if len(large) <= slots:
        groups = [[i] for i in large]
    else:  # contiguous runs of about equal size, by where each file's middle falls
        total = sum(i.st.st_size for i in large) or 1
        runs: dict[int, list[_Item]] = {}
        offset = 0
        for item in large:
            runs.setdefault(min(slots - 1, int((offset + item.st.st_size / 2) * slots / total)), []).append(item)
            offset += item.st.st_size
        groups = list(runs.values())
    return [(g, True) for g in groups] + [(b, False) for b in bundles]


def _group_key(compression: Compression, group: list[_Item], digests: list[str]) -> str:
    """The input key of a layer: recipe, compression and its (path, content digest) pairs."""
    pairs = [[i.tar_path, d] for i, d in zip(group, digests, strict=True)]
    return f"{WEIGHTS_RECIPE}|{compression.value}|{sha256_digest(canonical_json(pairs))}"


def _pack_group(
    group: list[_Item], store: Store, compression: Compression, cache: FingerprintCache, stats: ReadStats
) -> PackedLayer:
    known = [i.file.digest or cache.known(i.file.source, i.st) for i in group]
    if all(known):
        digests = [d for d in known if d]
        record = store.lookup(_group_key(compression, group, digests))
        if record is not None:
            stats.layers_reused += 1
            return _packed(group, digests, LayerBlob.from_record(record, store))
    layer, digests = _write_group(group, store, compression, stats)
    hashed_at = time.time_ns()
    for item, actual in zip(group, digests, strict=True):
        if item.file.digest is not None and item.file.digest != actual:
            raise BuildError(f"{item.file.source}: content is {actual}, expected {item.file.digest}")
        cache.remember(item.file.source, item.st, actual, hashed_at)
    store.record(_group_key(compression, group, digests), layer.to_record())
    stats.layers_written += 1
    return _packed(group, digests, layer)


def _packed(group: list[_Item], digests: list[str], layer: LayerBlob) -> PackedLayer:
    files = tuple(PackedFile(i.tar_path, i.st.st_size, d) for i, d in zip(group, digests, strict=True))
    name = group[0].tar_path if len(group) == 1 else f"{group[0].tar_path} and {len(group) - 1} more"
    return PackedLayer(name, layer, files)


def _write_group(
    group: list[_Item], store: Store, compression: Compression, stats: ReadStats
) -> tuple[LayerBlob, list[str]]:
    """Write one layer, reading each file once: the file's sha256 is taken (on a worker thread) as it streams."""
    by_path = {i.tar_path: i for i in group}
    entries = plan_entries(Entry.file_from(i.tar_path, i.file.source, 0o644, size=i.st.st_size) for i in group)
    digests: dict[str, str] = {}
    with store.temp_path(".layer") as temp, open(temp, "wb") as out, ThreadPoolExecutor(1) as pool:
        blob = HashingWriter(out)
        compressor = open_compressor(compression, blob) if compression is not Compression.NONE else None
        tar = HashingWriter(compressor) if compressor is not None else blob
        for entry in entries:
            tar.write(tar_header(entry, 0))
            if entry.kind is EntryKind.FILE:
                item = by_path[entry.path]
                digests[entry.path] = _stream_file(item, tar, pool, stats)
                if item.st.st_size % BLOCK:
                    tar.write(bytes(BLOCK - item.st.st_size % BLOCK))
        end = bytes(2 * BLOCK)
        tar.write(end + bytes(-(tar.size + len(end)) % RECORD))
        if compressor is not None:
            compressor.close()
        out.close()
        path = store.commit_blob(temp, blob.digest)
    layer = LayerBlob(tar.digest, blob.digest, blob.size, compression.media_type, path, tar.size)
    return layer, [digests[i.tar_path] for i in group]


def _stream_file(item: _Item, tar: HashingWriter, pool: ThreadPoolExecutor, stats: ReadStats) -> str:
    file_hash = hashlib.sha256()
    remaining = item.st.st_size
    pending = None
    with open(item.file.source, "rb") as f:
        while remaining:
            chunk = f.read(min(CHUNK, remaining))
            if not chunk:
                raise BuildError(f"{item.file.source}: file shrank while it was being read")
            remaining -= len(chunk)
            if pending is not None:
                pending.result()
            pending = pool.submit(file_hash.update, chunk)
            tar.write(chunk)
        if pending is not None:
            pending.result()
        after = os.fstat(f.fileno())
    if (after.st_size, after.st_mtime_ns) != (item.st.st_size, item.st.st_mtime_ns):
        raise BuildError(f"{item.file.source}: file changed while it was being read; try again")
    stats.files_hashed += 1
    stats.bytes_read += item.st.st_size
    return "sha256:" + file_hash.hexdigest()
