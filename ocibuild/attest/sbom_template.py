"""SBOMs from a template kept in the store, so a code change does not rebuild (and revalidate) the whole document.

Between two builds of the same pinned inputs only the image's name, digest and time change. The library-built,
validated document is made once per (format, tool, components) with a placeholder subject and kept as a blob; a
build fills in its own subject (``sbom.fill_subject``). A filled template is byte for byte the document
``sbom_document`` would make (tests/attest/test_sbom_template.py holds them to that).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence

from ocibuild.attest.inventory import Component
from ocibuild.attest.sbom import Subject, encode, fill_subject, sbom_document
from ocibuild.oci.store import Store

RECORD_PREFIX = "sbom-template:v1:"
PLACEHOLDER_DIGEST = "sha256:" + "0" * 64


def template_key(fmt: str, tool: str, components: Sequence[Component]) -> str:
    """The store key of the template for these inputs (components in document order)."""
    rows = [dataclasses.asdict(c) for c in sorted(components, key=lambda c: c.key)]
    text = json.dumps([fmt, tool, rows], sort_keys=True, separators=(",", ":"))
    return RECORD_PREFIX + hashlib.sha256(text.encode()).hexdigest()


def sbom_bytes(fmt: str, subject: Subject, components: Sequence[Component], store: Store) -> bytes:
    """The SBOM of ``subject`` in ``fmt``, from the store's template when it has one (else made and kept)."""
    key = template_key(fmt, subject.tool, components)
    if (record := store.lookup(key)) is not None:
        template = store.read_bytes(record["digest"])
    else:
        placeholder = dataclasses.replace(subject, name="template", digest=PLACEHOLDER_DIGEST)
        template = sbom_document(fmt, placeholder, components)
        store.record(key, {"digest": store.put_bytes(template), "size": len(template)})
    return encode(fill_subject(fmt, json.loads(template), subject))
