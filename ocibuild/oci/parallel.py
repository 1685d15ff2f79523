"""Materialise independent layers concurrently (hashing, compression and I/O release the GIL)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Any, TypeVar

T = TypeVar("T")


def run_parallel(jobs: Mapping[str, Callable[[], T]], max_workers: int | None = None) -> dict[str, Any]:
    """Run every job in a thread pool and return their results by name.

    The first failure stops the rest: jobs not yet started are cancelled and its exception is raised at once
    (jobs already running finish in the background; every write they make is atomic).
    """
    workers = max_workers or max(4, min(8, os.cpu_count() or 4))
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="layer")
    futures = {name: pool.submit(job) for name, job in jobs.items()}
    finished, _ = wait(futures.values(), return_when=FIRST_EXCEPTION)
    failed = next((f for f in finished if f.exception() is not None), None)
    if failed is not None:
        pool.shutdown(wait=False, cancel_futures=True)
        raise failed.exception()  # type: ignore[misc]
    pool.shutdown()
    return {name: future.result() for name, future in futures.items()}
