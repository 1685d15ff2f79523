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
import posixpath
import zipfile
from email.parser import HeaderParser
from pathlib import Path, PurePosixPath

from ocibuild.errors import BuildError
from ocibuild.oci.entries import Entry
from ocibuild.sources.python.target import PythonTarget

INSTALLER = b"ocibuild\n"
INFLATE_INPUT = 256 << 10  # compressed bytes per inflate call
_SCRIPT_SECTIONS = ("console_scripts", "gui_scripts")


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _dist_info(names: list[str], wheel: Path) -> str:
    found = {n.split("/", 1)[0] for n in names if n.count("/") == 1 and n.endswith(".dist-info/WHEEL")}
    if len(found) != 1:
        raise BuildError(f"{wheel.name}: not a valid wheel (expected one .dist-info directory)")
    return found.pop()


class _Installer:
    """Turns one wheel into layer entries at the image paths an installer would use for ``target``."""

    def __init__(self, zf: zipfile.ZipFile, wheel: Path, target: PythonTarget) -> None:
        self.zf, self.wheel, self.target = zf, wheel, target
        self.site = PurePosixPath(target.site_packages.lstrip("/"))
        self.record: dict[str, tuple[str, str]] = {}
        self.entries: dict[str, Entry] = {}

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
        name = self.checked(path).as_posix()
        self.entries[name] = Entry.file(name, data, 0o755 if executable else 0o644)

    def stream(self, info: zipfile.ZipInfo, path: PurePosixPath) -> None:
        """A member copied as it is, read from the wheel only while the layer is written."""
        name = self.checked(path).as_posix()
        mode = 0o755 if (info.external_attr >> 16) & 0o111 else 0o644
        self.entries[name] = Entry.file_stream(name, info.file_size, lambda: _MemberReader(self.wheel, info), mode)

    def add(self, path: PurePosixPath, data: bytes, executable: bool) -> None:
        """Write a file the installer made or changed, and record its new hash."""
        self.write(path, data, executable)
        self.record[self.relative(path)] = (_record_hash(data), str(len(data)))

    def relative(self, path: PurePosixPath) -> str:
        """A path as RECORD writes it: relative to site-packages."""
        return posixpath.relpath(path.as_posix(), self.site.as_posix())

    def install(self) -> list[Entry]:
        zf = self.zf
        names = zf.namelist()
        dist_info = _dist_info(names, self.wheel)
        self.check_version(zf.read(f"{dist_info}/WHEEL").decode())
        original = self.read_record(zf, dist_info)
        scripts = PurePosixPath(str(self.target.scripts_dir).lstrip("/"))
        for info in zf.infolist():
            if info.is_dir() or info.filename in (f"{dist_info}/RECORD", f"{dist_info}/INSTALLER"):
                continue
            path = self.image_path(info.filename, dist_info)
            if path.parent == scripts:
                self.add(path, self.fix_shebang(zf.read(info)), True)
            else:
                self.stream(info, path)
                self.record[self.relative(path)] = original.get(info.filename, ("", str(info.file_size)))
        entry_points = f"{dist_info}/entry_points.txt"
        if entry_points in names:
            self.write_entry_points(zf.read(entry_points).decode())
        self.add(self.site / dist_info / "INSTALLER", INSTALLER, False)
        self.write(self.site / dist_info / "RECORD", self.record_bytes(dist_info), False)
        return list(self.entries.values())

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


class _MemberReader(io.RawIOBase):
    """Reads one member of a wheel, inflating with ISA-L (twice zlib's speed on torch-sized wheels).

    The wheel's sha256 was checked against the lock when it was fetched, so the member CRCs are not checked again.
    """

    def __init__(self, wheel: Path, info: zipfile.ZipInfo) -> None:
        from isal import isal_zlib

        self._file = open(wheel, "rb")  # noqa: SIM115 - closed in close()
        self._file.seek(info.header_offset)
        header = self._file.read(30)
        if header[:4] != b"PK\x03\x04":
            raise BuildError(f"{wheel.name}: {info.filename}: bad local file header")
        name_length, extra_length = int.from_bytes(header[26:28], "little"), int.from_bytes(header[28:30], "little")
        self._file.seek(info.header_offset + 30 + name_length + extra_length)
        self._compressed_left = info.compress_size
        if info.compress_type == zipfile.ZIP_DEFLATED:
            self._inflate = isal_zlib.decompressobj(-15)
        elif info.compress_type == zipfile.ZIP_STORED:
            self._inflate = None
        else:
            raise BuildError(f"{wheel.name}: {info.filename}: unsupported zip compression {info.compress_type}")
        self._pending = b""
        self._offset = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        size = size if size >= 0 else 1 << 62
        if self._inflate is None:
            data = self._file.read(min(size, self._compressed_left))
            self._compressed_left -= len(data)
            return data
        while self._offset == len(self._pending) and self._compressed_left:
            source = self._file.read(min(INFLATE_INPUT, self._compressed_left))
            self._compressed_left -= len(source)
            self._pending, self._offset = self._inflate.decompress(source), 0
        data = self._pending[self._offset : self._offset + size]
        self._offset += len(data)
        return data

    def close(self) -> None:
        self._file.close()
        super().close()


def wheel_entries(zf: zipfile.ZipFile, wheel: Path, target: PythonTarget) -> list[Entry]:
    """The layer entries of the open wheel ``zf`` installed for ``target``; members stream from ``zf``, which
    must stay open until the layer is written."""
    try:
        return _Installer(zf, wheel, target).install()
    except (zipfile.BadZipFile, UnicodeDecodeError, configparser.Error) as exc:
        raise BuildError(f"{wheel.name}: not a valid wheel ({exc})") from None
