"""Basic auth (htpasswd, bcrypt) on a real registry and Bearer tokens through a token gate in front of one."""

from __future__ import annotations

import base64
import json
import time

import pytest

from ocibuild.errors import BuildError
from ocibuild.registry import Credentials, Recorder, pull, push
from tests.registry.registry_helpers import PASSWORD, USER, remote_digest
from tests.registry.token_gate import TokenGate

pytestmark = pytest.mark.integration


def assert_clean(error: BaseException, *secrets: str) -> None:
    """A one-line message that carries none of the secrets, in the error or anything chained to it."""
    text = str(error)
    assert "\n" not in text
    chain = [error, error.__cause__, error.__context__]
    for secret in secrets:
        assert not any(secret in repr(e) or secret in str(e) for e in chain if e is not None), text


def test_basic_auth_with_credentials(auth_registry, make_image, tmp_path):
    image = make_image(20)
    ref = f"{auth_registry.host}/auth/model:v1"
    push(image, [ref], auth=Credentials(USER, PASSWORD), progress=Recorder())
    pulled = pull(ref, tmp_path / "layout", auth=Credentials(USER, PASSWORD), progress=Recorder())
    assert pulled.digest == image.digest


def test_basic_auth_from_env_and_docker_config(auth_registry, make_image, monkeypatch, tmp_path):
    image = make_image(21)
    monkeypatch.setenv("REGISTRY_USERNAME", USER)
    monkeypatch.setenv("REGISTRY_PASSWORD", PASSWORD)
    push(image, [f"{auth_registry.host}/env/model:v1"], progress=Recorder())
    monkeypatch.delenv("REGISTRY_USERNAME")
    monkeypatch.delenv("REGISTRY_PASSWORD")
    config = tmp_path / "docker-config"
    config.mkdir(exist_ok=True)
    encoded = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    (config / "config.json").write_text(json.dumps({"auths": {auth_registry.host: {"auth": encoded}}}))
    push(image, [f"{auth_registry.host}/cfg/model:v1"], progress=Recorder())


def test_wrong_password_is_one_clean_line(auth_registry, make_image):
    wrong = "wrong-Secret-0123456789"
    started = time.monotonic()
    with pytest.raises(BuildError) as caught:
        push(
            make_image(22), [f"{auth_registry.host}/auth/model:v2"], auth=Credentials(USER, wrong), progress=Recorder()
        )
    assert time.monotonic() - started < 10
    assert "rejected" in str(caught.value) and USER in str(caught.value)
    assert_clean(caught.value, wrong, base64.b64encode(f"{USER}:{wrong}".encode()).decode())


def test_missing_credentials_say_how_to_log_in(auth_registry, make_image):
    with pytest.raises(BuildError, match="REGISTRY_USERNAME"):
        push(make_image(23), [f"{auth_registry.host}/auth/model:v3"], progress=Recorder())


@pytest.fixture
def gate(registry):
    with TokenGate(registry.host, USER, PASSWORD) as gate:
        yield gate


def test_bearer_tokens_per_scope(gate, registry, make_image):
    image = make_image(24)
    creds = Credentials(USER, PASSWORD)
    push(image, [f"{gate.host}/tok/a:v1"], auth=creds, progress=Recorder())
    assert remote_digest(f"{registry.host}/tok/a:v1") == image.digest
    other = Recorder()
    push(image, [f"{gate.host}/tok/b:v1"], auth=creds, progress=other)
    assert other.count("mounted") == 4
    assert gate.issued["repository:tok/a:pull,push"] >= 1
    assert gate.issued["repository:tok/a:pull repository:tok/b:pull,push"] >= 1  # mount needs pull on the source


def test_refused_mount_falls_back_to_upload(gate, make_image):
    image = make_image(30)
    creds = Credentials(USER, PASSWORD)
    push(image, [f"{gate.host}/deny/a:v1"], auth=creds, progress=Recorder())
    gate.deny.add("repository:deny/a:pull")
    other = Recorder()
    push(image, [f"{gate.host}/deny/b:v1"], auth=creds, progress=other)
    assert other.count("uploaded") == 4
    assert any("uploading instead" in note for note in other.notes)


def test_bearer_token_renewed_before_expiry(gate, make_image):
    gate.lifetime = gate.reported_lifetime = 1.0
    gate.delay = 0.15  # one push (about 20 requests, one at a time) outlives several tokens
    push(make_image(25), [f"{gate.host}/exp/a:v1"], auth=Credentials(USER, PASSWORD), jobs=1, progress=Recorder())
    assert gate.issued["repository:exp/a:pull,push"] >= 2


def test_bearer_token_renewed_after_401(gate, make_image):
    gate.lifetime, gate.reported_lifetime = 1.0, 3600  # the server expires tokens early: a 401 must renew them
    gate.delay = 0.15
    push(make_image(26), [f"{gate.host}/exp/b:v1"], auth=Credentials(USER, PASSWORD), jobs=1, progress=Recorder())
    assert gate.rejected >= 1 and gate.issued["repository:exp/b:pull,push"] >= 2


def test_bearer_wrong_password_is_clean(gate, make_image):
    wrong = "Bearer-wrong-Secret-987"
    with pytest.raises(BuildError) as caught:
        push(make_image(29), [f"{gate.host}/tok/c:v1"], auth=Credentials(USER, wrong), progress=Recorder())
    assert "rejected" in str(caught.value)
    assert_clean(caught.value, wrong)
