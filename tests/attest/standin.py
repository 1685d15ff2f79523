"""A stand-in image for a lock: the layers a plan makes (names in the config history), with made-up digests.

The SBOM reads only the lock and the image's manifest and config, so every example's lock can be checked without
downloading its wheels (gpu-torch's are 4 GB).
"""

from __future__ import annotations

import hashlib
from typing import Any

from ocibuild.oci.canonical import canonical_json
from ocibuild.oci.descriptor import Platform
from ocibuild.oci.image import Image
from ocibuild.sources.python.layers import group_distributions


def _digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def standin_image(
    sections: dict[str, Any], platform: str = "linux/amd64", parts: dict[str, int] | None = None
) -> Image:
    """``parts`` names layers split by ``--max-layer-size``: each becomes that many parts, named as the plan does."""
    base = sections["base"][platform]
    names = ["base"] + (["base"] if base.get("interpreter_kind", "debian") != "debian" else [])
    if (sections.get("debian") or {}).get(platform):
        names.append("system-packages")
    distributions = (sections.get("python") or {}).get(platform, {}).get("distributions", [])
    for group in group_distributions(distributions):
        count = (parts or {}).get(group.name, 1)
        names += [group.name] if count == 1 else [f"{group.name} (part {i}/{count})" for i in range(1, count + 1)]
    names += ["runner", "code"]
    layers = [
        {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": _digest(f"{i}:{n}"), "size": 1}
        for i, n in enumerate(names)
    ]
    config = canonical_json(
        {
            "architecture": platform.split("/")[1],
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [layer["digest"] for layer in layers]},
            "history": [{"created_by": n, "comment": n} for n in names],
        }
    )
    manifest = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": _digest("c"), "size": 1},
            "layers": layers,
        }
    )
    return Image(config, manifest, (), platform=Platform.parse(platform))
