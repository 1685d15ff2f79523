"""Declared licences of the locked wheels, read from their METADATA in the store (no download, no unpacking).

``License-Expression`` (PEP 639) when it is a valid SPDX expression; else the one licence classifier that maps to
a single SPDX identifier; else a ``License:`` field that is itself an SPDX identifier. Anything else (free text,
several classifiers, sdists, a wheel no longer in the store) is left out: the SBOM says NOASSERTION. Debian
packages are not read: their copyright files are often not machine-readable and not in SPDX terms.
"""

from __future__ import annotations

import functools
import zipfile
from collections.abc import Iterable
from email.parser import HeaderParser
from typing import Any

from ocibuild.oci.store import Store

CLASSIFIERS = {
    "License :: OSI Approved :: MIT License": "MIT",
    "License :: OSI Approved :: Apache Software License": "Apache-2.0",
    "License :: OSI Approved :: Python Software Foundation License": "PSF-2.0",
    "License :: OSI Approved :: Mozilla Public License 2.0 (MPL 2.0)": "MPL-2.0",
    "License :: OSI Approved :: ISC License (ISCL)": "ISC",
    "License :: OSI Approved :: The Unlicense (Unlicense)": "Unlicense",
    "License :: OSI Approved :: zlib/libpng License": "Zlib",
    "License :: OSI Approved :: Historical Permission Notice and Disclaimer (HPND)": "HPND",
}
MAX_METADATA = 1 << 20
RECORD_PREFIX = "wheel-licence:v1:"
"""Store key prefix of a wheel's answer; bump the version when the rules below (or CLASSIFIERS) change."""


@functools.cache
def _licensing() -> Any:
    from license_expression import get_spdx_licensing

    return get_spdx_licensing()


def _valid(expression: str) -> str | None:
    from license_expression import ExpressionError

    licensing = _licensing()
    try:
        info = licensing.validate(expression)
    except (ExpressionError, AttributeError, TypeError, ValueError):  # validate() itself trips on some free text
        return None
    return info.normalized_expression if not info.errors and info.normalized_expression else None


def wheel_licence(path: Any) -> str | None:
    """The SPDX licence expression a wheel declares, or None."""
    try:
        with zipfile.ZipFile(path) as zf:
            name = next((n for n in zf.namelist() if n.count("/") == 1 and n.endswith(".dist-info/METADATA")), None)
            if name is None or zf.getinfo(name).file_size > MAX_METADATA:
                return None
            text = zf.read(name).decode("utf-8", "replace")
    except (OSError, zipfile.BadZipFile):
        return None
    headers = HeaderParser().parsestr(text, headersonly=True)
    expression = headers.get("License-Expression")
    if expression and (valid := _valid(expression.strip())):
        return valid
    mapped = {CLASSIFIERS[c] for c in headers.get_all("Classifier") or [] if c in CLASSIFIERS}
    licence_classifiers = [c for c in headers.get_all("Classifier") or [] if c.startswith("License :: OSI")]
    if len(mapped) == 1 and len(licence_classifiers) == 1:
        return mapped.pop()
    field = (headers.get("License") or "").strip()
    if field and "\n" not in field and len(field) < 100:
        return _valid(field)
    return None


def wheel_licences(distributions: Iterable[dict[str, Any]], store: Store) -> dict[str, str]:
    """sha256 -> SPDX expression, for the locked wheels the store holds.

    A wheel's answer depends only on its bytes, so it is kept in the store under the wheel's sha256 (an empty
    blob for "none"): a rebuild opens no wheel it has read before.
    """
    from ocibuild.sources.python.fetch import cached_path

    out = {}
    for dist in distributions:
        if dist.get("kind") != "wheel" or not dist.get("sha256"):
            continue
        key = f"{RECORD_PREFIX}{dist['sha256']}"
        if (record := store.lookup(key)) is not None:
            licence = store.read_bytes(record["digest"]).decode()
        else:
            path = cached_path(dist, store)
            if not path.is_file():
                continue
            licence = wheel_licence(path) or ""
            data = licence.encode()
            store.record(key, {"digest": store.put_bytes(data), "size": len(data)})
        if licence:
            out[dist["sha256"]] = licence
    return out
