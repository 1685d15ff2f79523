"""HF_TOKEN goes to the Hugging Face endpoint only, never to other weights URLs."""

from __future__ import annotations

from ocibuild.sources.project.weights import _session


def test_hf_token_only_reaches_the_hub(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_SECRET")
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    assert (
        _session("https://huggingface.co/org/model/resolve/main/x").headers.get("Authorization") == "Bearer hf_SECRET"
    )
    assert "Authorization" not in _session("https://example.com/weights.bin").headers
    assert "Authorization" not in _session("http://127.0.0.1:8000/w.bin").headers
