"""The SBOM of an image from its lock: SPDX 2.3 JSON (``spdx-tools``) or CycloneDX 1.6 JSON (``cyclonedx-python-lib``).

Deterministic: the creation time is SOURCE_DATE_EPOCH, the document namespace and serial number derive from the
image digest, packages are sorted; the same build gives the same SBOM bytes. A wheel's declared licence comes from
its METADATA (``ocibuild.attest.licences``); Debian packages' licences are not read (NOASSERTION): their copyright
files are mostly not in SPDX terms, and reading them would mean unpacking every .deb at every build.
"""

from __future__ import annotations

import datetime
import json
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ocibuild.attest.inventory import DEB, INTERPRETER, PYTHON, RUNNER, WEIGHTS, Component

SPDX, CYCLONEDX = "spdx", "cyclonedx"
FORMATS = (SPDX, CYCLONEDX)
MEDIA_TYPES = {SPDX: "application/spdx+json", CYCLONEDX: "application/vnd.cyclonedx+json"}
NAMESPACE = "https://ocibuild.dev/spdx"


@dataclass(frozen=True)
class Subject:
    """What the SBOM describes: the image (or index) name, digest and creation time."""

    name: str
    digest: str
    source_date_epoch: int
    tool: str


def _created(epoch: int) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(epoch, tz=datetime.UTC).replace(tzinfo=None)


def _spdx_id(c: Component) -> str:
    text = re.sub(r"[^A-Za-z0-9.-]+", "-", f"{c.platform}-{c.kind}-{c.name}-{c.version}-{c.arch}").strip("-")
    return f"SPDXRef-{text}"


def _comment(c: Component) -> str:
    where = f"layer {c.layer} ({c.layer_name})" if c.layer else "layer unknown"
    extra = "".join(f"; {k}={v}" for k, v in sorted({**c.extra, "url": c.url}.items()) if v)
    return f"{c.kind} on {c.platform}, in {where}{extra}"


def encode(document: dict[str, Any]) -> bytes:
    """The bytes of an SBOM document: sorted keys, two-space indent, UTF-8, one trailing newline."""
    return (json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def spdx_document(subject: Subject, components: Sequence[Component]) -> bytes:
    """SPDX 2.3 JSON, validated with spdx-tools' own validator (a ValueError names the first problem)."""
    from spdx_tools.common.spdx_licensing import spdx_licensing
    from spdx_tools.spdx.model import (
        Actor,
        ActorType,
        Checksum,
        ChecksumAlgorithm,
        CreationInfo,
        Document,
        ExternalPackageRef,
        ExternalPackageRefCategory,
        Package,
        PackagePurpose,
        Relationship,
        RelationshipType,
        SpdxNoAssertion,
    )
    from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document
    from spdx_tools.spdx.validation.uri_validators import validate_download_location
    from spdx_tools.spdx.writer.write_utils import convert

    purposes = {
        DEB: PackagePurpose.INSTALL,
        INTERPRETER: PackagePurpose.APPLICATION,
        PYTHON: PackagePurpose.LIBRARY,
        RUNNER: PackagePurpose.APPLICATION,
        WEIGHTS: PackagePurpose.FILE,
    }
    hexdigest = subject.digest.removeprefix("sha256:")
    creation = CreationInfo(
        spdx_version="SPDX-2.3",
        spdx_id="SPDXRef-DOCUMENT",
        name=subject.name,
        document_namespace=f"{NAMESPACE}/{hexdigest}",
        creators=[Actor(ActorType.TOOL, subject.tool)],
        created=_created(subject.source_date_epoch),
    )
    image = Package(
        "SPDXRef-image",
        subject.name,
        SpdxNoAssertion(),
        version=subject.digest,
        files_analyzed=False,
        checksums=[Checksum(ChecksumAlgorithm.SHA256, hexdigest)],
        primary_package_purpose=PackagePurpose.CONTAINER,
        license_concluded=SpdxNoAssertion(),
        license_declared=SpdxNoAssertion(),
        copyright_text=SpdxNoAssertion(),
        supplier=SpdxNoAssertion(),
    )
    packages, relationships = [image], [Relationship("SPDXRef-DOCUMENT", RelationshipType.DESCRIBES, "SPDXRef-image")]
    for c in sorted(components, key=lambda c: c.key):
        refs = [ExternalPackageRef(ExternalPackageRefCategory.PACKAGE_MANAGER, "purl", c.purl)] if c.purl else []
        packages.append(
            Package(
                _spdx_id(c),
                c.name,
                c.url if c.url and not validate_download_location(c.url) else SpdxNoAssertion(),
                version=c.version or None,
                files_analyzed=False,
                checksums=[Checksum(ChecksumAlgorithm.SHA256, c.sha256)] if c.sha256 else [],
                external_references=refs,
                primary_package_purpose=purposes[c.kind],
                license_concluded=SpdxNoAssertion(),
                license_declared=spdx_licensing.parse(c.licence) if c.licence else SpdxNoAssertion(),
                copyright_text=SpdxNoAssertion(),
                supplier=SpdxNoAssertion(),
                comment=_comment(c),
            )
        )
        relationships.append(Relationship("SPDXRef-image", RelationshipType.CONTAINS, _spdx_id(c)))
    document = Document(creation, packages=packages, relationships=relationships)
    problems = validate_full_spdx_document(document)
    if problems:
        raise ValueError(f"SPDX document invalid: {problems[0].validation_message}")
    return encode(convert(document, None))


def cyclonedx_document(subject: Subject, components: Sequence[Component]) -> bytes:
    """CycloneDX 1.6 JSON (the image as ``metadata.component``; layer and platform as properties)."""
    from cyclonedx.model import HashAlgorithm, HashType, Property
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component as CdxComponent
    from cyclonedx.model.component import ComponentType
    from cyclonedx.model.license import LicenseExpression
    from cyclonedx.output.json import JsonV1Dot6
    from packageurl import PackageURL

    types = {
        DEB: ComponentType.LIBRARY,
        INTERPRETER: ComponentType.APPLICATION,
        PYTHON: ComponentType.LIBRARY,
        RUNNER: ComponentType.APPLICATION,
        WEIGHTS: ComponentType.DATA,
    }
    image = CdxComponent(name=subject.name, version=subject.digest, type=ComponentType.CONTAINER, bom_ref="image")
    bom = Bom(serial_number=uuid.uuid5(uuid.NAMESPACE_URL, f"{NAMESPACE}/{subject.digest}"))
    bom.metadata.timestamp = datetime.datetime.fromtimestamp(subject.source_date_epoch, tz=datetime.UTC)
    bom.metadata.component = image
    for c in sorted(components, key=lambda c: c.key):
        properties = [
            Property(name="ocibuild:platform", value=c.platform),
            Property(name="ocibuild:kind", value=c.kind),
        ]
        if c.layer:
            properties += [
                Property(name="ocibuild:layer", value=c.layer),
                Property(name="ocibuild:layer-name", value=c.layer_name),
            ]
        properties += [Property(name=f"ocibuild:{k}", value=v) for k, v in sorted(c.extra.items()) if v]
        component = CdxComponent(
            name=c.name,
            version=c.version or None,
            type=types[c.kind],
            bom_ref=_spdx_id(c).removeprefix("SPDXRef-"),
            purl=PackageURL.from_string(c.purl) if c.purl else None,
            hashes=[HashType(alg=HashAlgorithm.SHA_256, content=c.sha256)] if c.sha256 else [],
            properties=properties,
            licenses=[LicenseExpression(c.licence)] if c.licence else [],
        )
        bom.components.add(component)
        bom.register_dependency(image, [component])
    return encode(json.loads(JsonV1Dot6(bom).output_as_string()))


def fill_subject(fmt: str, document: dict[str, Any], subject: Subject) -> dict[str, Any]:
    """``document`` (made by ``sbom_document`` for another subject with the same tool) made for ``subject``: the
    only fields that depend on the image's name, digest and time. Keep in step with the two builders above."""
    hexdigest = subject.digest.removeprefix("sha256:")
    when = _created(subject.source_date_epoch)
    if fmt == SPDX:
        document["name"] = subject.name
        document["documentNamespace"] = f"{NAMESPACE}/{hexdigest}"
        document["creationInfo"]["created"] = when.strftime("%Y-%m-%dT%H:%M:%SZ")
        image = next(p for p in document["packages"] if p["SPDXID"] == "SPDXRef-image")
        image.update(name=subject.name, versionInfo=subject.digest)
        image["checksums"] = [{"algorithm": "SHA256", "checksumValue": hexdigest}]
    else:
        document["serialNumber"] = uuid.uuid5(uuid.NAMESPACE_URL, f"{NAMESPACE}/{subject.digest}").urn
        document["metadata"]["timestamp"] = when.isoformat() + "+00:00"
        document["metadata"]["component"].update(name=subject.name, version=subject.digest)
    return document


def sbom_document(fmt: str, subject: Subject, components: Sequence[Component]) -> bytes:
    """The SBOM in ``fmt`` (``spdx`` or ``cyclonedx``)."""
    return spdx_document(subject, components) if fmt == SPDX else cyclonedx_document(subject, components)
