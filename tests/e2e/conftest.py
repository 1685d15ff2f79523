"""Session fixtures for the acceptance suite: one registry, one store, each example built/pushed/pulled once."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.e2e.support import EXAMPLES, FIND_LINKS, clean_env, load_registry_script, ocibuild, tool
from tests.helpers import require_tool

DIGEST = re.compile(r"@(sha256:[0-9a-f]{64})\s*$")


@dataclass(frozen=True)
class Example:
    name: str
    build_args: tuple[str, ...] = ()

    @property
    def path(self) -> Path:
        return EXAMPLES / self.name


EXAMPLE_LIST = {
    "hello-world": Example("hello-world"),
    "image-pillow": Example("image-pillow"),
    "streaming": Example("streaming"),
    "torch-cpu": Example("torch-cpu", ("--find-links", str(FIND_LINKS))),
}


OPT_IN = {"gpu-torch": Example("gpu-torch")}
"""Examples the default suite never builds (multi-GB wheels): tests/e2e/test_gpu_example.py, OCIBUILD_SLOW=1."""


@dataclass
class Built:
    example: Example
    layout: Path
    digest: str
    seconds: float


@dataclass
class Pushed:
    built: Built
    ref: str
    digest: str


@dataclass
class Session:
    """Builds, pushes and pulls each example at most once per test session."""

    root: Path
    store: Path
    env: dict[str, str]
    registry_host: str
    built: dict[str, Built] = field(default_factory=dict)
    pushed: dict[str, Pushed] = field(default_factory=dict)
    pulled: dict[str, Path] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)

    def cache_args(self) -> list[str]:
        return ["--cache-dir", str(self.store)]

    def build(self, name: str) -> Built:
        if name in self.failed:  # a failed build is not retried by every test that needs it
            pytest.fail(f"(as before) {self.failed[name]}")
        if name not in self.built:
            example = EXAMPLE_LIST.get(name) or OPT_IN[name]
            layout = self.root / "layouts" / name
            args = ["build", example.path, "-o", layout, *example.build_args, *self.cache_args()]
            result = ocibuild(*args, env=self.env, check=False, timeout=3600)
            if result.returncode != 0:
                self.failed[name] = f"ocibuild build {name} exited {result.returncode}:\n{result.stderr[-3000:]}"
                pytest.fail(self.failed[name])
            lines = result.stdout.strip().splitlines()
            assert len(lines) == 1, f"build stdout should be one result line: {result.stdout!r}"
            match = DIGEST.search(lines[0])
            assert match and lines[0].startswith(str(layout)), lines[0]
            self.built[name] = Built(example, layout, match.group(1), result.seconds)
        return self.built[name]

    def push(self, name: str) -> Pushed:
        if name not in self.pushed:
            built = self.build(name)
            ref = f"{self.registry_host}/e2e/{name}:test"
            result = ocibuild(
                "push", built.layout, ref, "--insecure-registry", self.registry_host, *self.cache_args(), env=self.env
            )
            match = DIGEST.search(result.stdout.strip().splitlines()[-1])
            assert match, result.stdout
            assert match.group(1) == built.digest, "the registry holds another manifest than the layout"
            self.pushed[name] = Pushed(built, ref, match.group(1))
        return self.pushed[name]

    def pull(self, name: str) -> Path:
        """``skopeo copy`` the pushed image back into a fresh OCI layout (tag ``e2e``)."""
        if name not in self.pulled:
            pushed = self.push(name)
            layout = self.root / "pulled" / name
            layout.parent.mkdir(parents=True, exist_ok=True)
            tool(
                "skopeo", "copy", "--src-tls-verify=false", f"docker://{pushed.ref}", f"oci:{layout}:e2e",
                env=self.env, timeout=600,
            )  # fmt: skip
            inspect = tool("skopeo", "inspect", "--raw", f"oci:{layout}:e2e", env=self.env)
            assert '"layers"' in inspect.stdout
            self.pulled[name] = layout
        return self.pulled[name]


@pytest.fixture(scope="session")
def e2e_store() -> Path:
    path = Path.home() / ".cache" / "ocibuild-test" / "e2e-store"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    require_tool("docker-registry")
    root = tmp_path_factory.mktemp("e2e-registry")
    reg = load_registry_script().start_registry(root)
    try:
        yield reg.host
    finally:
        reg.stop()
        shutil.rmtree(root / "storage", ignore_errors=True)  # hundreds of MB: torch is in there


@pytest.fixture(scope="session")
def e2e(tmp_path_factory: pytest.TempPathFactory, e2e_store: Path, registry: str) -> Iterator[Session]:
    root = tmp_path_factory.mktemp("e2e")
    yield Session(root, e2e_store, clean_env(root), registry)
    for big in ("layouts", "pulled"):
        shutil.rmtree(root / big, ignore_errors=True)
