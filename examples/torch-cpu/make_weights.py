"""Write weights.safetensors for the torch-cpu example, deterministically, with the standard library only.

The model is one linear layer (4 inputs, 3 outputs) followed by ReLU. The values are small multiples of 1/4, so
float32 holds them exactly and the example's outputs can be checked by hand:

    weight[i][j] = (i + 1) / 2 - j / 4        bias[i] = i / 2 - 1

A safetensors file is an 8-byte little-endian header length, a JSON header (padded with spaces to a multiple
of 8), then the raw little-endian tensor data. Run: python3 examples/torch-cpu/make_weights.py
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

IN_FEATURES = 4
OUT_FEATURES = 3
HERE = Path(__file__).resolve().parent


def weights() -> dict[str, tuple[list[int], list[float]]]:
    weight = [(i + 1) / 2 - j / 4 for i in range(OUT_FEATURES) for j in range(IN_FEATURES)]
    bias = [i / 2 - 1 for i in range(OUT_FEATURES)]
    return {"linear.weight": ([OUT_FEATURES, IN_FEATURES], weight), "linear.bias": ([OUT_FEATURES], bias)}


def encode(tensors: dict[str, tuple[list[int], list[float]]], metadata: dict[str, str]) -> bytes:
    header: dict[str, object] = {"__metadata__": metadata}
    data = b""
    for name in sorted(tensors):
        shape, values = tensors[name]
        raw = struct.pack(f"<{len(values)}f", *values)
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


def main() -> None:
    out = HERE / "weights.safetensors"
    out.write_bytes(encode(weights(), {"format": "pt", "model": "linear-relu-4x3"}))
    print(f"wrote {out} ({out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
