"""Materialise independent layers concurrently (hashing, compression and I/O release the GIL)."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from ocibuild.oci.layer import LayerBlob


@dataclass(frozen=True)
class LayerJob:
    """Work that yields one or more named layers, in image order; ``created_by`` goes into the history."""

    name: str
    created_by: str
    run: Callable[[], Sequence[tuple[str, LayerBlob]]]


def run_layer_jobs(jobs: Sequence[LayerJob], max_workers: int | None = None) -> list[tuple[LayerJob, str, LayerBlob]]:
    """Run every job (in parallel) and return (job, layer name, layer) in the jobs' order."""
    workers = max_workers or max(2, min(8, os.cpu_count() or 2))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="layer") as pool:
        futures = [pool.submit(job.run) for job in jobs]
        results: list[tuple[LayerJob, str, LayerBlob]] = []
        for job, future in zip(jobs, futures, strict=True):
            results += [(job, name, layer) for name, layer in future.result()]
    return results
