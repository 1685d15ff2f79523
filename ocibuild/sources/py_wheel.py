"""Install one wheel into an image root, following the wheel spec (PEP 427/491) for a fixed target.

Files land at the target's site-packages (``.data`` subdirectories at their scheme paths), ``#!python``
script shebangs and generated console scripts name the image's interpreter, no byte-code is written, and
INSTALLER/RECORD are rewritten deterministically.
"""

from __future__ import annotations

import base64
import configparser
import csv
import hashlib
import io
import os
import posixpath
import shutil
import zipfile
from concurrent.futures import ThreadPoolExecutor
from email.parser import HeaderParser
from pathlib import Path, PurePosixPath

from ocibuild.errors import BuildError
from ocibuild.sources.py_target import PythonTarget

INSTALLER = b"ocibuild\n"
EXTRACT_THREADS = 4
_SCRIPT_SECTIONS = ("console_scripts", "gui_scripts")


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _dist_info(names: list[str], wheel: Path) -> str:
    found = {n.split("/", 1)[0] for n in names if n.count("/") == 1 and n.endswith(".dist-info/WHEEL")}
    if len(found) != 1:
        raise BuildError(f"{wheel.name}: not a valid wheel (expected one .dist-info directory)")
    return found.pop()


class _Installer:
    """Unpacks one wheel under ``root`` (the image root) for ``target``."""

    def __init__(self, wheel: Path, root: Path, target: PythonTarget) -> None:
        self.wheel, self.root, self.target = wheel, root, target
        self.site = PurePosixPath(target.site_packages.lstrip("/"))
        self.record: dict[str, tuple[str, str]] = {}

    def image_path(self, member: str, dist_info: str) -> PurePosixPath:
        data_dir = dist_info[: -len(".dist-info")] + ".data/"
        if not member.startswith(data_dir):
            return self.site / member
        scheme, _, rest = member[len(data_dir) :].partition("/")
        bases = {
            "purelib": self.site,
            "platlib": self.site,
            "scripts": PurePosixPath(str(self.target.scripts_dir).lstrip("/")),
            "headers": PurePosixPath(str(self.target.headers_dir(dist_info.split("-")[0])).lstrip("/")),
            "data": PurePosixPath(str(self.target.prefix).lstrip("/")),
        }
        if scheme not in bases or not rest:
            raise BuildError(f"{self.wheel.name}: unknown wheel data directory {member}")
        return bases[scheme] / rest

    def checked(self, path: PurePosixPath) -> PurePosixPath:
        if ".." in path.parts or path.is_absolute():
            raise BuildError(f"{self.wheel.name}: {path} escapes the installation directory")
        return path

    def write(self, path: PurePosixPath, data: bytes, executable: bool) -> None:
        dest = self.root / self.checked(path)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
        if executable:
            os.chmod(dest, 0o755)

    def add(self, path: PurePosixPath, data: bytes, executable: bool) -> None:
        """Write a file the installer made or changed, and record its new hash."""
        self.write(path, data, executable)
        self.record[self.relative(path)] = (_record_hash(data), str(len(data)))

    def relative(self, path: PurePosixPath) -> str:
        """A path as RECORD writes it: relative to site-packages."""
        return posixpath.relpath(path.as_posix(), self.site.as_posix())

    def install(self) -> None:
        with zipfile.ZipFile(self.wheel) as zf:
            names = zf.namelist()
            dist_info = _dist_info(names, self.wheel)
            self.check_version(zf.read(f"{dist_info}/WHEEL").decode())
            original = self.read_record(zf, dist_info)
            scripts = PurePosixPath(str(self.target.scripts_dir).lstrip("/"))
            plain: list[tuple[zipfile.ZipInfo, PurePosixPath]] = []
            for info in zf.infolist():
                if info.is_dir() or info.filename in (f"{dist_info}/RECORD", f"{dist_info}/INSTALLER"):
                    continue
                path = self.image_path(info.filename, dist_info)
                if path.parent == scripts:
                    self.add(path, self.fix_shebang(zf.read(info)), True)
                else:
                    plain.append((info, path))
                    self.record[self.relative(path)] = original.get(info.filename, ("", str(info.file_size)))
            entry_points = f"{dist_info}/entry_points.txt"
            if entry_points in names:
                self.write_entry_points(zf.read(entry_points).decode())
        _extract_parallel(self.wheel, [(info, self.checked(path)) for info, path in plain], self.root)
        self.add(self.site / dist_info / "INSTALLER", INSTALLER, False)
        self.write(self.site / dist_info / "RECORD", self.record_bytes(dist_info), False)

    def check_version(self, wheel_metadata: str) -> None:
        version = HeaderParser().parsestr(wheel_metadata).get("Wheel-Version", "1.0")
        if version.split(".")[0] != "1":
            raise BuildError(f"{self.wheel.name}: unsupported Wheel-Version {version}")

    def read_record(self, zf: zipfile.ZipFile, dist_info: str) -> dict[str, tuple[str, str]]:
        try:
            text = zf.read(f"{dist_info}/RECORD").decode()
        except KeyError:
            raise BuildError(f"{self.wheel.name}: the wheel has no RECORD") from None
        return {row[0]: (row[1], row[2]) for row in csv.reader(io.StringIO(text)) if len(row) >= 3}

    def fix_shebang(self, data: bytes) -> bytes:
        if not data.startswith(b"#!python"):
            return data
        _, _, rest = data.partition(b"\n")
        return b"#!" + self.target.interpreter.encode() + b"\n" + rest

    def write_entry_points(self, text: str) -> None:
        parser = configparser.ConfigParser(delimiters=("=",), interpolation=None)
        parser.optionxform = str  # type: ignore[assignment,method-assign]
        parser.read_string(text)
        for section in _SCRIPT_SECTIONS:
            if not parser.has_section(section):
                continue
            for name, ref in parser.items(section):
                path = PurePosixPath(str(self.target.scripts_dir).lstrip("/")) / name.strip()
                self.add(path, self.script(ref.split("[", 1)[0].strip()), True)

    def script(self, ref: str) -> bytes:
        module, _, attr = ref.partition(":")
        head = attr.split(".", 1)[0] if attr else ""
        call = f"{attr}()" if attr else "None"
        imports = f"from {module.strip()} import {head}" if attr else f"import {module.strip()}"
        lines = [f"#!{self.target.interpreter}", "import sys", imports, 'if __name__ == "__main__":']
        lines.append(f"    sys.exit({call})")
        return ("\n".join(lines) + "\n").encode()

    def record_bytes(self, dist_info: str) -> bytes:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        for path in sorted(self.record):
            writer.writerow([path, *self.record[path]])
        writer.writerow([self.relative(self.site / dist_info / "RECORD"), "", ""])
        return out.getvalue().encode()


def _extract_parallel(wheel: Path, members: list[tuple[zipfile.ZipInfo, PurePosixPath]], root: Path) -> None:
    """Extract members with a few threads (inflate releases the GIL), largest first."""
    for parent in sorted({(root / path).parent for _, path in members}):
        parent.mkdir(parents=True, exist_ok=True)
    ordered = sorted(members, key=lambda m: -m[0].compress_size)
    jobs = min(EXTRACT_THREADS, max(1, len(ordered) // 64))
    with ThreadPoolExecutor(jobs) as pool:
        for future in [pool.submit(_extract, wheel, ordered[k::jobs], root) for k in range(jobs)]:
            future.result()


def _extract(wheel: Path, members: list[tuple[zipfile.ZipInfo, PurePosixPath]], root: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        for info, path in members:
            dest = root / path
            with zf.open(info) as source, open(dest, "wb") as out:
                shutil.copyfileobj(source, out, 1 << 20)
            if (info.external_attr >> 16) & 0o111:
                os.chmod(dest, 0o755)


def install_wheel(wheel: Path, root: Path, target: PythonTarget) -> None:
    """Unpack ``wheel`` into the image tree ``root`` as an installer would for ``target``."""
    try:
        _Installer(wheel, root, target).install()
    except (zipfile.BadZipFile, UnicodeDecodeError, configparser.Error) as exc:
        raise BuildError(f"{wheel.name}: not a valid wheel ({exc})") from None
