"""What an image is made of, read from the lock (never from a scan) and placed in the image's layers.

Each image layer carries its plan step's name in the config history (``comment``): ``base`` (the Debian rootfs,
then a python-build-standalone interpreter when there is one), ``system-packages``, ``python: ...``, ``runner``,
``run-N``, ``code`` and the weights. A component is put in the layer its step made.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ocibuild.oci.image import Image

DEB, INTERPRETER, PYTHON, RUNNER, WEIGHTS = "deb", "interpreter", "python", "runner", "weights"


@dataclass(frozen=True)
class Component:
    """One pinned input of the image."""

    kind: str
    name: str
    version: str
    platform: str
    layer: str = ""
    """The digest of the layer that holds it ('' when not known)."""
    layer_name: str = ""
    sha256: str = ""
    purl: str = ""
    url: str = ""
    arch: str = ""
    extra: dict[str, str] = field(default_factory=dict)
    licence: str = ""
    """The declared licence as an SPDX expression ('' when not known)."""

    @property
    def key(self) -> str:
        """Unique within one image document."""
        return f"{self.platform}|{self.kind}|{self.name}|{self.version}|{self.arch}"


@dataclass(frozen=True)
class WeightEntry:
    """A weight file in the image: its path, size, content digest and the layer that holds it."""

    path: str
    size: int
    digest: str
    layer: str


def image_layers(image: Image) -> list[tuple[str, str]]:
    """(step name, layer digest) for every layer of ``image``, lowest first, from its config history."""
    names = [h.get("comment", "") for h in image.config.get("history", []) if not h.get("empty_layer")]
    digests = [layer["digest"] for layer in image.manifest["layers"]]
    if len(names) != len(digests):
        names = [""] * len(digests)
    return list(zip(names, digests, strict=True))


def _purl(kind: str, name: str, version: str, **qualifiers: str) -> str:
    from packageurl import PackageURL

    namespace = "debian" if kind == "deb" else None
    quals = {k: v for k, v in qualifiers.items() if v}
    return PackageURL(type=kind, namespace=namespace, name=name, version=version or None, qualifiers=quals).to_string()


def _distro(base: dict[str, Any]) -> str:
    suites = [a.get("suite", "") for a in base.get("archives", [])]
    return f"debian-{suites[0]}" if suites and suites[0] else ""


def components(
    sections: dict[str, Any],
    image: Image,
    runner: str,
    weights: Sequence[WeightEntry] = (),
    licences: Mapping[str, str] | None = None,
) -> list[Component]:
    """Every pinned input of one platform's ``image``, from the lock's ``sections`` (``ProjectLock.sections()``);
    ``licences`` maps a distribution's sha256 to its declared SPDX licence."""
    licences = licences or {}
    platform = str(image.platform) if image.platform else "linux/amd64"
    layers = image_layers(image)
    named: dict[str, list[str]] = {}
    for name, digest in layers:
        named.setdefault(name, []).append(digest)
    base = (sections.get("base") or {}).get(platform, {})
    distro = _distro(base)
    out: list[Component] = []

    def debs(packages: list[dict[str, Any]], layer_name: str, layer: str) -> None:
        for p in packages:
            purl = _purl("deb", p["name"], p["version"], arch=p.get("architecture", ""), distro=distro)
            out.append(
                Component(
                    DEB,
                    p["name"],
                    p["version"],
                    platform,
                    layer,
                    layer_name,
                    p.get("sha256", ""),
                    purl,
                    p.get("url", ""),
                    p.get("architecture", ""),
                )
            )

    base_layers = named.get("base", [])
    debs(base.get("packages", []), "base", base_layers[0] if base_layers else "")
    out.append(_interpreter(base, platform, base_layers, distro))
    system = (sections.get("debian") or {}).get(platform, {})
    debs(system.get("packages", []), "system-packages", (named.get("system-packages") or [""])[0])
    python = (sections.get("python") or {}).get(platform, {})
    grouped = next((n for n in named if n.startswith("python: ") and n.endswith(" distribution(s)")), "")
    for d in python.get("distributions", []):
        alone = f"python: {d['name']}=={d['version']}"  # split by --max-layer-size: its first part names it
        layer_name = next((n for n in named if n == alone or n.startswith(f"{alone} (part ")), grouped)
        extra = {"commit": d["commit"]} if d.get("commit") else {}
        out.append(
            Component(
                PYTHON,
                d["name"],
                d["version"],
                platform,
                (named.get(layer_name) or [""])[0],
                layer_name,
                d.get("sha256", ""),
                _purl("pypi", d["name"].lower(), d["version"]),
                d.get("url", ""),
                extra={"file": d.get("filename", ""), "kind": d.get("kind", ""), **extra},
                licence=licences.get(d.get("sha256", ""), ""),
            )
        )
    runner_layer = (named.get("runner") or [""])[0]
    out.append(
        Component(
            RUNNER,
            "cog",
            runner,
            platform,
            runner_layer,
            "runner",
            runner_layer.removeprefix("sha256:"),
            _purl("generic", "ocibuild-cog-runner", runner),
        )
    )
    for w in weights:
        out.append(
            Component(
                WEIGHTS,
                w.path,
                "",
                platform,
                w.layer,
                "weights",
                w.digest.removeprefix("sha256:"),
                extra={"size": str(w.size)},
            )
        )
    return out


def _interpreter(base: dict[str, Any], platform: str, base_layers: list[str], distro: str) -> Component:
    """CPython: Debian's ``pythonX.Y`` package, or the python-build-standalone build in its own base layer."""
    python = str(base.get("python", ""))
    pin = base.get("interpreter") or {}
    if base.get("interpreter_kind", "debian") == "debian":
        deb = next((p for p in base.get("packages", []) if p["name"] == f"python{python}-minimal"), {})
        version = deb.get("version", python)
        purl = _purl("deb", f"python{python}-minimal", version, arch=deb.get("architecture", ""), distro=distro)
        layer = base_layers[0] if base_layers else ""
        return Component(
            INTERPRETER,
            "cpython",
            version,
            platform,
            layer,
            "base",
            deb.get("sha256", ""),
            purl,
            deb.get("url", ""),
            extra={"source": "debian"},
        )
    layer = base_layers[1] if len(base_layers) > 1 else ""
    version = str(pin.get("version", python))
    return Component(
        INTERPRETER,
        "cpython",
        version,
        platform,
        layer,
        "base",
        layer.removeprefix("sha256:"),
        _purl("generic", "cpython", version),
        str(pin.get("url", "")),
        extra={"source": "python-build-standalone", "key": str(pin.get("key", ""))},
    )
