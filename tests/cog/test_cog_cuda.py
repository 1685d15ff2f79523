"""CUDA/cuDNN choice for GPU builds, as Cog makes it."""

from __future__ import annotations

import pytest

from ocibuild.cog.cuda import CudaChoice, compat_table, pinned_versions, resolve_cuda
from ocibuild.errors import UserInputError

CASES = [
    # (cuda, cudnn, requirement lines) -> (cuda, cudnn, torch index suffix)
    (None, None, [], ("11.8", "8", None)),
    (None, None, ["numpy==2.0"], ("11.8", "8", None)),
    ("12.4", None, [], ("12.4", "9", None)),
    ("12.1.1", None, [], ("12.1.1", "8", None)),
    (None, None, ["torch==2.7.1"], ("12.8", "9", "cu128")),
    (None, None, ["torch==2.0.1"], ("11.8", "8", "cu118")),
    # torch 1.x, below Cog's cog-base minimum (1.13.1): Cog falls back to an nvidia/cuda base (torch_baseimage_*).
    (None, None, ["torch==1.13.0"], ("11.7", "8", "cu117")),
    (None, None, ["torch==1.11.0"], ("11.3", "8", "cu113")),
    (None, None, ["torchvision==0.13.1"], ("11.6", "8", "cu116")),
    (None, None, ["torch==1.13.1+cu116"], ("11.6", "8", "cu116")),
    (None, None, ["torch==2.3"], ("12.1", "8", "cu121")),
    (None, None, ["Torch == 2.5.1  # pinned"], ("12.4", "9", "cu124")),
    (None, None, ["torch==2.7.1+cu118"], ("11.8", "8", "cu118")),
    ("12.6", None, ["torch==2.7.1"], ("12.6", "9", "cu126")),
    ("12.9", None, ["torch==2.7.1"], ("12.9", "9", "cu128")),
    (None, None, ["torchvision==0.22.1"], ("12.8", "9", "cu128")),
    (None, None, ["torchaudio==2.6.0"], ("12.6", "9", "cu126")),
    (None, None, ["torch==2.12.1"], ("13.2", "9", "cu132")),
    (None, None, ["torch==2.15.0"], ("13.0", "9", "cu130")),
    (None, None, ["tensorflow==2.15.0"], ("12.2", "8", None)),
    (None, None, ["tensorflow==2.19.0", "torch==2.7.1"], ("12.5", "9", "cu118")),
    ("11.8", "8", ["--extra-index-url https://x", "-r other.txt", "# torch==1.0"], ("11.8", "8", None)),
    # torch as Cog takes it: a range or no version takes the newest row it admits (what uv will install)
    (None, None, ["torch>=2.1,<2.6"], ("12.4", "9", "cu124")),
    (None, None, ["torch~=2.4.0"], ("12.4", "9", "cu124")),
    (None, None, ["torch==2.4.*"], ("12.4", "9", "cu124")),
    (None, None, ["torch<2.1"], ("11.8", "8", "cu118")),
    (None, None, ["torch>=2.1"], ("13.0", "9", "cu130")),
    (None, None, ["torch"], ("13.0", "9", "cu130")),
    ("12.4", None, ["torch>=2.1"], ("12.4", "9", "cu124")),
    # old torch: Cog's 1.11-1.13 rows
    (None, None, ["torch==1.13.1"], ("11.7", "8", "cu117")),
    (None, None, ["torchvision==0.13.1"], ("11.6", "8", "cu116")),
    ("11.8", None, ["torch==1.13.1"], ("11.8", "8", "cu117")),
    # TensorFlow likewise: a range or no version takes the newest row it admits
    (None, None, ["tensorflow"], ("12.5", "9", None)),
    (None, None, ["tensorflow>=2.14,<2.16"], ("12.2", "8", None)),
    # another GPU framework's own CUDA when nothing else chose one
    (None, None, ["jax"], ("12.8", "9", None)),
    (None, None, ["onnxruntime-gpu==1.22.0"], ("12.8", "9", None)),
    (None, None, ["onnxruntime-gpu==1.17.1"], ("11.8", "8", None)),
    (None, None, ["cupy-cuda12x>=13"], ("12.8", "9", None)),
]


@pytest.mark.parametrize(("cuda", "cudnn", "lines", "want"), CASES)
def test_resolve(cuda: str | None, cudnn: str | None, lines: list[str], want: tuple) -> None:
    choice = resolve_cuda(True, cuda, cudnn, lines)
    assert isinstance(choice, CudaChoice)
    assert (choice.cuda, choice.cudnn, choice.torch_index_suffix) == want


def test_cpu_build_has_no_cuda() -> None:
    assert resolve_cuda(False, "12.8", None, ["torch==2.7.1"]) is None


def test_mismatched_cuda_only_warns() -> None:
    choice = resolve_cuda(True, "11.8", None, ["torch==2.9.0"])
    assert choice is not None and choice.torch_index_suffix is None
    assert choice.warnings == (
        "torch 2.9.0 has no CUDA 11.8 build; try one of 12.6, 12.8, 13.0",
        "no torch 2.9.0 wheel is built for CUDA 11.8 or older",
    )


@pytest.mark.parametrize(
    ("cuda", "cudnn", "lines", "message"),
    [
        (None, None, ["torch>=9"], "Cog doesn't know which CUDA version is compatible with torch>=9; set build.cuda"),
        (
            None,
            None,
            ["torch==1.8.0"],
            "Cog doesn't know which CUDA version is compatible with torch==1.8.0; set build.cuda",
        ),
        (
            None,
            None,
            ["torch==9.9.9"],
            "Cog doesn't know which CUDA version is compatible with torch==9.9.9; set build.cuda",
        ),
        ("12.8", "8", [], "CUDA 12.8 is not compatible with cuDNN 8; compatible: 9"),
    ],
)
def test_resolve_errors(cuda: str | None, cudnn: str | None, lines: list[str], message: str) -> None:
    with pytest.raises(UserInputError) as caught:
        resolve_cuda(True, cuda, cudnn, lines)
    assert str(caught.value) == message


def test_pinned_versions_normalises_names() -> None:
    assert pinned_versions(["Torch_Vision==0.1", "a-b", "", "# c==1", "x @ https://y"]) == {
        "torch-vision": "0.1",
        "a-b": None,
        "x": None,
    }


def test_table_names_its_source_and_covers_torch_2() -> None:
    table = compat_table()
    assert "pkg/config" in table["_source"]
    assert {row["torch"] for row in table["torch"]} >= {"2.0.0", "2.7.1", "2.13.0", "2.14.0", "2.15.0"}
    assert next(r for r in table["torch"] if r["torch"] == "2.7.1")["cuda"] == ["11.8", "12.6", "12.8"]
    assert all(table["cudnn"].get(c) for row in table["torch"] for c in row["cuda"] if c != "11.7")
