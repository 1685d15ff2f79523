"""Where credentials come from, and that secrets stay out of reprs."""

from __future__ import annotations

import base64
import json
import os

from ocibuild.registry import credentials
from ocibuild.registry.credentials import Credentials

SECRET = "hunter2-secret"


def write_config(tmp_path, config: dict):
    (tmp_path / "docker-config").mkdir(exist_ok=True)
    (tmp_path / "docker-config" / "config.json").write_text(json.dumps(config))


def fake_helper(tmp_path, monkeypatch, name: str, user: str, secret: str):
    """A real ``docker-credential-<name>`` executable on PATH that answers for one server."""
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    script = bindir / f"docker-credential-{name}"
    answer = json.dumps({"ServerURL": "x", "Username": user, "Secret": secret})
    script.write_text(f"#!/bin/sh\nread server\necho \"$server\" > {bindir}/{name}.asked\necho '{answer}'\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    return bindir / f"{name}.asked"


def test_repr_hides_password():
    c = Credentials("me", SECRET)
    assert SECRET not in repr(c) and SECRET not in str(c)


def test_env_vars_win(monkeypatch, tmp_path):
    write_config(tmp_path, {"auths": {"h.io": {"username": "cfg", "password": "x"}}})
    monkeypatch.setenv("REGISTRY_USERNAME", "plain")
    monkeypatch.setenv("REGISTRY_PASSWORD", "p1")
    assert credentials.resolve("h.io").username == "plain"
    monkeypatch.setenv("OCIBUILD_REGISTRY_USERNAME", "mine")
    monkeypatch.setenv("OCIBUILD_REGISTRY_PASSWORD", "p2")
    assert credentials.resolve("h.io") == Credentials("mine", "p2", "$OCIBUILD_REGISTRY_USERNAME")


def test_auths_entries(tmp_path):
    encoded = base64.b64encode(f"bob:{SECRET}".encode()).decode()
    write_config(
        tmp_path,
        {
            "auths": {
                "https://index.docker.io/v1/": {"auth": encoded},
                "https://h.io": {"username": "al", "password": "pw"},
                "tok.io": {"identitytoken": "refresh"},
            }
        },
    )
    assert credentials.resolve("docker.io").password == SECRET
    assert credentials.resolve("h.io").username == "al"
    assert credentials.resolve("tok.io").is_identity_token
    assert credentials.resolve("other.io") is None


def test_cred_helpers_and_store(tmp_path, monkeypatch):
    asked = fake_helper(tmp_path, monkeypatch, "per", "helper-user", SECRET)
    fake_helper(tmp_path, monkeypatch, "store", "store-user", "s")
    write_config(tmp_path, {"credHelpers": {"h.io": "per"}, "credsStore": "store", "auths": {"h.io": {}}})
    found = credentials.resolve("h.io")
    assert (found.username, found.password) == ("helper-user", SECRET)
    assert asked.read_text().strip() == "h.io"
    assert credentials.resolve("elsewhere.io").username == "store-user"


def test_missing_helper_is_no_credentials(tmp_path):
    write_config(tmp_path, {"credsStore": "does-not-exist"})
    assert credentials.resolve("h.io") is None


def test_containers_auth_files_are_read_before_docker_config(tmp_path, monkeypatch):
    home, runtime = tmp_path / "home", tmp_path / "run-user"
    (home / ".config" / "containers").mkdir(parents=True)
    (runtime / "containers").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    monkeypatch.delenv("REGISTRY_AUTH_FILE")
    write_config(tmp_path, {"auths": {"h.io": {"username": "docker", "password": "d"}}})
    assert credentials.resolve("h.io").username == "docker"
    config_file = home / ".config" / "containers" / "auth.json"
    config_file.write_text(json.dumps({"auths": {"h.io": {"auth": base64.b64encode(b"config:c").decode()}}}))
    assert credentials.resolve("h.io") == Credentials("config", "c", str(config_file))
    runtime_file = runtime / "containers" / "auth.json"
    runtime_file.write_text(json.dumps({"auths": {"h.io": {"auth": base64.b64encode(b"runtime:r").decode()}}}))
    assert credentials.resolve("h.io").username == "runtime"
    explicit = tmp_path / "explicit.json"
    explicit.write_text(json.dumps({"auths": {"docker.io": {"username": "hub", "password": SECRET}}}))
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(explicit))
    assert credentials.resolve("h.io").username == "docker"  # REGISTRY_AUTH_FILE replaces both containers files
    assert credentials.resolve("registry-1.docker.io").username == "hub"


def test_a_credential_helper_named_in_a_containers_auth_file(tmp_path, monkeypatch):
    fake_helper(tmp_path, monkeypatch, "vault", "helper-user", SECRET)
    explicit = tmp_path / "containers-auth.json"
    explicit.write_text(json.dumps({"credHelpers": {"h.io": "vault"}}))
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(explicit))
    assert credentials.resolve("h.io").username == "helper-user"
