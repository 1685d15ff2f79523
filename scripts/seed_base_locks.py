"""Maintainers only: resolve every base definition in base-images/ anew and rewrite its seed lock.

Seeds are what a project without a base entry in its ocibuild.lock starts from; no ocibuild command writes them.
Usage: .venv/bin/python scripts/seed_base_locks.py [--platform linux/amd64 ...] [NAME ...]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from ocibuild.oci import Store
from ocibuild.sources import debian


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="base names, e.g. bookworm-py3.11 (default: all)")
    parser.add_argument("--platform", action="append", default=[], help="default: linux/amd64 and linux/arm64")
    args = parser.parse_args()
    platforms = args.platform or ["linux/amd64", "linux/arm64"]
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp))
        for path in sorted(debian.base_images_dir().glob("*-py*.yaml")):
            name = path.name.removesuffix(".yaml")
            if args.names and name not in args.names:
                continue
            suite, _, python = name.partition("-py")
            definition = debian.load_base_definition(python, suite)
            for platform in platforms:
                debian.write_lock(debian.lock_base(definition, store, platform), definition.lock_path)
                print(f"{definition.lock_path.name}: {platform}")


if __name__ == "__main__":
    main()
