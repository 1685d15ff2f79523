"""The Python environment of an image: interpreter version, platform, glibc and install paths."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

# The newest manylinux tag uv 0.13.9 accepts for --python-platform; a newer glibc resolves as this one (wheels
# that need more than glibc 2.40 are still recognised by ocibuild's own tag check).
UV_NEWEST_GLIBC = (2, 40)
_ARCHES = {"linux/amd64": "x86_64", "linux/arm64": "aarch64", "linux/arm64/v8": "aarch64"}


@dataclass(frozen=True)
class PythonTarget:
    """Where and for what the image's distributions are installed (defaults: Debian bookworm, amd64)."""

    python_version: str = "3.11"
    platform: str = "linux/amd64"
    glibc: str = "2.36"
    site_packages: str = "/usr/local/lib/python3.11/dist-packages"
    interpreter: str = "/usr/bin/python3.11"

    @classmethod
    def for_python(cls, python_version: str, glibc: str, platform: str = "linux/amd64") -> PythonTarget:
        """A Debian-style target: ``/usr/local/lib/pythonX.Y/dist-packages`` and ``/usr/bin/pythonX.Y``."""
        return cls(
            python_version=python_version,
            platform=platform,
            glibc=glibc,
            site_packages=f"/usr/local/lib/python{python_version}/dist-packages",
            interpreter=f"/usr/bin/python{python_version}",
        )

    @property
    def arch(self) -> str:
        """The machine name used in wheel tags (``x86_64``, ``aarch64``)."""
        try:
            return _ARCHES[self.platform]
        except KeyError:
            raise ValueError(f"unsupported platform for Python distributions: {self.platform}") from None

    @property
    def uv_platform(self) -> str:
        """The value of ``uv --python-platform``, e.g. ``x86_64-manylinux_2_36``."""
        major, minor = min(self.glibc_tuple, UV_NEWEST_GLIBC)
        return f"{self.arch}-manylinux_{major}_{minor}"

    @property
    def glibc_tuple(self) -> tuple[int, int]:
        major, minor = self.glibc.split(".")[:2]
        return int(major), int(minor)

    @property
    def version_tuple(self) -> tuple[int, int]:
        major, minor = self.python_version.split(".")[:2]
        return int(major), int(minor)

    @property
    def prefix(self) -> PurePosixPath:
        """The installation scheme's prefix (``/usr/local`` for ``/usr/local/lib/pythonX.Y/dist-packages``)."""
        return PurePosixPath(self.site_packages).parents[2]

    @property
    def scripts_dir(self) -> PurePosixPath:
        return self.prefix / "bin"

    def headers_dir(self, distribution: str) -> PurePosixPath:
        return self.prefix / "include" / f"python{self.python_version}" / distribution

    def describe(self) -> str:
        """A short human description for messages: ``python 3.11 linux/amd64 (glibc 2.36)``."""
        return f"python {self.python_version} {self.platform} (glibc {self.glibc})"

    def to_dict(self) -> dict[str, str]:
        """The parts that decide which distributions resolve (the install paths do not)."""
        return {"python_version": self.python_version, "platform": self.platform, "glibc": self.glibc}
