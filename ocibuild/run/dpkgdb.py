"""What dpkg installed during a build.run command (``apt-get install``), read from its database.

build.run runs over a build-only toolbox whose files are not in the image. A package that apt installs again
(``apt-get install -y curl`` over the toolbox's curl) writes the same bytes, which a plain comparison would count
as unchanged: the files of every package whose dpkg status changed are therefore kept in the command's layer.
"""

from __future__ import annotations

from pathlib import Path

from ocibuild.run.paths import EscapeError, resolve, split_image_path

STATUS = "var/lib/dpkg/status"
INFO = "var/lib/dpkg/info"


def _installed(root: Path) -> dict[str, str]:
    """``name[:arch]`` -> the stanza of each installed package in ``root``'s dpkg status."""
    try:
        text = (root / STATUS).read_text(errors="replace")
    except OSError:
        return {}
    found = {}
    for stanza in text.split("\n\n"):
        fields = dict(line.partition(": ")[::2] for line in stanza.splitlines() if line and not line[0].isspace())
        if fields.get("Status", "").endswith(" installed") and "Package" in fields:
            multi = fields.get("Multi-Arch") == "same"
            found[fields["Package"] + (f":{fields.get('Architecture')}" if multi else "")] = stanza.strip()
    return found


def installed_paths(before: Path, after: Path) -> set[str]:
    """Paths (relative, symlinked parents resolved) of the packages installed or changed from ``before`` to
    ``after`` (two rootfs directories), as their dpkg ``.list`` files name them."""
    old = _installed(before)
    paths: set[str] = set()
    for name, stanza in _installed(after).items():
        if old.get(name) == stanza:
            continue
        listing = after / INFO / f"{name}.list"
        try:
            lines = listing.read_text(errors="replace").splitlines()
        except OSError:
            continue
        for line in lines:
            try:
                resolved = resolve(after, split_image_path(line), follow_last=False)
            except EscapeError:
                continue
            if resolved.is_relative_to(after) and resolved != after:
                paths.add(resolved.relative_to(after).as_posix())
    return paths
