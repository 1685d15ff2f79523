"""``ocibuild login``/``logout`` against real registries (htpasswd Basic auth, and a token gate), and where the
credentials it stores are read from."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ocibuild.registry import Recorder, pull, push
from tests.registry.registry_helpers import PASSWORD, USER, skopeo
from tests.registry.token_gate import TokenGate

pytestmark = pytest.mark.integration


def ocibuild(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ocibuild", *args], input=stdin, capture_output=True, text=True, timeout=120
    )


def auth_file() -> Path:
    return Path(os.environ["REGISTRY_AUTH_FILE"])


def test_login_checks_stores_and_every_command_then_uses_it(auth_registry, make_image, tmp_path):
    auth_file().write_text(json.dumps({"auths": {"other.io": {"auth": "b3RoZXI6cHc="}}, "credHelpers": {"x.io": "y"}}))
    result = ocibuild("login", auth_registry.host, "-u", USER, "--password-stdin", stdin=PASSWORD + "\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and PASSWORD not in result.stderr
    stored = json.loads(auth_file().read_text())
    assert stored["auths"]["other.io"] == {"auth": "b3RoZXI6cHc="} and stored["credHelpers"] == {"x.io": "y"}
    assert base64.b64decode(stored["auths"][auth_registry.host]["auth"]).decode() == f"{USER}:{PASSWORD}"
    assert auth_file().stat().st_mode & 0o777 == 0o600
    image = make_image(60)
    ref = f"{auth_registry.host}/login/model:v1"
    push(image, [ref], progress=Recorder())  # no credentials given: read from the auth file
    assert pull(ref, tmp_path / "layout", progress=Recorder()).digest == image.digest
    inspected = skopeo("inspect", "--tls-verify=false", f"docker://{ref}")  # podman's tools read the same file
    assert json.loads(inspected.stdout)["Digest"] == image.digest


def test_a_wrong_password_stores_nothing_and_shows_no_secret(auth_registry):
    wrong = "wrong-Login-Secret-4711"
    result = ocibuild("login", auth_registry.host, "-u", USER, "--password-stdin", stdin=wrong)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "rejected" in result.stderr and USER in result.stderr
    encoded = base64.b64encode(f"{USER}:{wrong}".encode()).decode()
    assert wrong not in result.stderr + result.stdout and encoded not in result.stderr
    assert not auth_file().exists()


def test_logout_removes_only_its_entry(auth_registry):
    auth_file().write_text(json.dumps({"auths": {"other.io": {"auth": "b3RoZXI6cHc="}}}))
    assert ocibuild("login", auth_registry.host, "-u", USER, "--password-stdin", stdin=PASSWORD).returncode == 0
    result = ocibuild("logout", auth_registry.host)
    assert result.returncode == 0 and "removed credentials" in result.stderr
    assert json.loads(auth_file().read_text()) == {"auths": {"other.io": {"auth": "b3RoZXI6cHc="}}}
    again = ocibuild("logout", auth_registry.host)
    assert again.returncode == 0 and "no credentials" in again.stderr


def test_login_through_a_token_service(registry):
    with TokenGate(registry.host, USER, PASSWORD) as gate:
        good = ocibuild("login", gate.host, "-u", USER, "--password-stdin", stdin=PASSWORD)
        assert good.returncode == 0, good.stderr
        bad = ocibuild("login", gate.host, "-u", USER, "--password-stdin", stdin="nope-Token-Secret")
        assert bad.returncode == 1 and "rejected" in bad.stderr and "nope-Token-Secret" not in bad.stderr
    assert gate.host in json.loads(auth_file().read_text())["auths"]


def test_bad_input_is_exit_2_and_changes_nothing(auth_registry):
    no_user = ocibuild("login", auth_registry.host, "--password-stdin", stdin=PASSWORD)
    assert no_user.returncode == 2 and "-u USER" in no_user.stderr
    no_password = ocibuild("login", auth_registry.host, "-u", USER)
    assert no_password.returncode == 2 and "--password-stdin" in no_password.stderr
    auth_file().write_text("{not json")
    broken = ocibuild("login", auth_registry.host, "-u", USER, "--password-stdin", stdin=PASSWORD)
    assert broken.returncode == 2 and str(auth_file()) in broken.stderr
    assert auth_file().read_text() == "{not json"


def test_missing_credentials_name_the_ways_that_work(auth_registry, make_image):
    result = subprocess.run(
        [sys.executable, "-m", "ocibuild", "pull", f"{auth_registry.host}/none/model:v1", "out"],
        capture_output=True,
        text=True,
        cwd=auth_file().parent,
    )
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    message = result.stderr
    assert f"ocibuild login {auth_registry.host}" in message and "REGISTRY_USERNAME" in message
    assert str(auth_file()) in message and "config.json" in message and "docker login" not in message
