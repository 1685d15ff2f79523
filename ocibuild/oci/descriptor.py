"""Content descriptors and platforms, as they appear in manifests and indexes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Platform:
    """An OS/architecture pair such as ``linux/amd64`` or ``linux/arm64/v8``."""

    os: str
    architecture: str
    variant: str = ""

    @classmethod
    def parse(cls, text: str) -> Platform:
        parts = text.split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise ValueError(f"platform must look like os/arch[/variant], got {text!r}")
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else "")

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)

    def to_dict(self) -> dict[str, str]:
        out = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            out["variant"] = self.variant
        return out


@dataclass(frozen=True)
class Descriptor:
    """A typed pointer to a blob: media type, digest and size, plus optional annotations and platform."""

    media_type: str
    digest: str
    size: int
    annotations: dict[str, str] = field(default_factory=dict)
    platform: Platform | None = None
    artifact_type: str = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.platform is not None:
            out["platform"] = self.platform.to_dict()
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Descriptor:
        platform = data.get("platform")
        return cls(
            media_type=data["mediaType"],
            digest=data["digest"],
            size=int(data["size"]),
            annotations=dict(data.get("annotations") or {}),
            platform=Platform(platform["os"], platform["architecture"], platform.get("variant", ""))
            if platform
            else None,
            artifact_type=data.get("artifactType", ""),
        )
