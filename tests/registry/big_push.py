"""Run in a subprocess by test_big_blob: push one sparse 2 GiB blob and print the peak RSS growth in bytes."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from ocibuild.oci import ImageConfig, LayerBlob, build_image
from ocibuild.oci.mediatypes import OCI_LAYER
from ocibuild.registry import Progress, push

SIZE = 2 << 30


def peak_rss() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM"))


def main(host: str, path: Path, chunk_size: int) -> None:
    with open(path, "wb") as f:
        f.truncate(SIZE)
    digester, zeros = hashlib.sha256(), bytes(1 << 20)
    for _ in range(SIZE >> 20):
        digester.update(zeros)
    digest = "sha256:" + digester.hexdigest()
    image = build_image([LayerBlob(digest, digest, SIZE, OCI_LAYER, path)], ImageConfig())
    before = peak_rss()
    push(image, [f"{host}/big/blob:v1"], progress=Progress(), chunk_size=chunk_size or None)
    print(peak_rss() - before)


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]))
