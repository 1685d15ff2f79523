"""The dependency resolver, on hand-written Packages stanzas (no network)."""

from __future__ import annotations

import pytest

from ocibuild.sources.debian.index import parse_packages
from ocibuild.sources.debian.resolve import ResolveError, Universe, UnknownPackageError, resolve

STANZAS = """\
Package: app
Version: 1.0
Architecture: amd64
Depends: libc6 (>= 2.34), awk | mawk, mail-transport-agent, python3:any (>= 3.11), libssl3t64 | libssl3
Filename: pool/a/app.deb
SHA256: 00
Size: 1

Package: libc6
Version: 2.36-9
Architecture: amd64
Filename: pool/l/libc6_old.deb
SHA256: 01
Size: 1

Package: libc6
Version: 2.36-9+deb12u1
Architecture: amd64
Filename: pool/l/libc6.deb
SHA256: 02
Size: 1

Package: mawk
Version: 1.3.4
Architecture: amd64
Provides: awk
Priority: required
Filename: pool/m/mawk.deb
SHA256: 03
Size: 1

Package: gawk
Version: 5.2
Architecture: amd64
Provides: awk
Priority: optional
Filename: pool/g/gawk.deb
SHA256: 04
Size: 1

Package: exim4
Version: 4.96
Architecture: amd64
Provides: mail-transport-agent
Priority: standard
Filename: pool/e/exim4.deb
SHA256: 05
Size: 1

Package: postfix
Version: 3.7
Architecture: amd64
Provides: mail-transport-agent
Priority: optional
Filename: pool/p/postfix.deb
SHA256: 06
Size: 1

Package: python3
Version: 3.11.2-1
Architecture: amd64
Multi-Arch: allowed
Pre-Depends: python3-minimal (= 3.11.2-1)
Filename: pool/p/python3.deb
SHA256: 07
Size: 1

Package: python3-minimal
Version: 3.11.2-1
Architecture: amd64
Filename: pool/p/python3-minimal.deb
SHA256: 08
Size: 1

Package: libssl3t64
Version: 3.5.0
Architecture: amd64
Provides: libssl3 (= 3.5.0)
Filename: pool/l/libssl3t64.deb
SHA256: 09
Size: 1

Package: tool-arm
Version: 1
Architecture: arm64
Filename: pool/t/tool-arm.deb
SHA256: 10
Size: 1

Package: docs
Version: 1
Architecture: all
Depends: app:native
Filename: pool/d/docs.deb
SHA256: 11
Size: 1

Package: needs-new-libc
Version: 1
Architecture: amd64
Depends: libc6 (>= 2.38)
Filename: pool/n/needs.deb
SHA256: 12
Size: 1

Package: needs-versioned-virtual
Version: 1
Architecture: amd64
Depends: awk (>= 1)
Filename: pool/n/nvv.deb
SHA256: 13
Size: 1

Package: foreign-dep
Version: 1
Architecture: amd64
Depends: tool-arm:arm64
Filename: pool/f/foreign.deb
SHA256: 14
Size: 1
"""


@pytest.fixture(scope="module")
def universe() -> Universe:
    return Universe.from_records(parse_packages(STANZAS.encode(), "http://mirror/debian"), "amd64")


def names(records) -> list[str]:
    return [f"{r.name}={r.version}" for r in records]


def test_closure_follows_alternatives_provides_versions_and_qualifiers(universe: Universe) -> None:
    got = names(resolve(universe, ["app"]))
    assert got == [
        "app=1.0",
        "exim4=4.96",  # virtual: the provider with the highest Priority
        "libc6=2.36-9+deb12u1",  # the highest version of a name
        "libssl3t64=3.5.0",  # the first alternative that exists
        "mawk=1.3.4",  # `awk` is virtual: the required-priority provider
        "python3=3.11.2-1",  # `python3:any`
        "python3-minimal=3.11.2-1",  # Pre-Depends
    ]


def test_an_alternative_already_selected_wins(universe: Universe) -> None:
    got = names(resolve(universe, ["gawk", "postfix", "app"]))
    assert "gawk=5.2" in got and "mawk=1.3.4" not in got
    assert "postfix=3.7" in got and "exim4=4.96" not in got


def test_arch_all_package_with_native_qualifier(universe: Universe) -> None:
    assert "app=1.0" in names(resolve(universe, ["docs"]))


def test_installed_packages_are_not_added_again(universe: Universe) -> None:
    base = resolve(universe, ["libc6", "mawk"])
    got = names(resolve(universe, ["app"], installed=base))
    assert not any(n.startswith(("libc6=", "mawk=")) for n in got)


def test_version_constraint_that_nothing_meets(universe: Universe) -> None:
    with pytest.raises(ResolveError, match=r"needs-new-libc 1: unsatisfiable dependency libc6 \(>= 2.38\)"):
        resolve(universe, ["needs-new-libc"])


def test_unversioned_provides_do_not_satisfy_a_versioned_dependency(universe: Universe) -> None:
    with pytest.raises(ResolveError, match="awk"):
        resolve(universe, ["needs-versioned-virtual"])


def test_foreign_architecture_qualifier_is_unsatisfiable(universe: Universe) -> None:
    with pytest.raises(ResolveError, match="tool-arm:arm64"):
        resolve(universe, ["foreign-dep"])


def test_unknown_name_reports_closest(universe: Universe) -> None:
    with pytest.raises(UnknownPackageError) as info:
        resolve(universe, ["pyhton3"])
    assert info.value.closest[0] == "python3"


def test_a_virtual_root_resolves_to_a_provider(universe: Universe) -> None:
    assert names(resolve(universe, ["mail-transport-agent"])) == ["exim4=4.96"]
