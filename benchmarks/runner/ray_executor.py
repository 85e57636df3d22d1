"""Grid cells as Ray tasks: Ray schedules them on the cluster's CPUs and GPUs (each cell asks for its own), the
driver collects each cell's ledger entry as it finishes. Every node must see the same dataset and results
folders (a shared filesystem) and have this project installed; see docs/grids.md."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from benchmarks.errors import BenchmarkError

from .cells import run_cell
from .spec import Cell


@contextmanager
def ray_session(address: str | None):
    """Ray, connected to the cluster at ``address`` (None: a local one started here), shut down on leaving."""
    try:
        import ray
    except ImportError:
        raise BenchmarkError("--executor ray: Ray is not installed here; pip install 'ray==2.60.0'") from None
    try:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise BenchmarkError(
            f"--address {address}: cannot connect to a Ray cluster ({exc}); a cluster with token authentication "
            "needs RAY_AUTH_MODE=token and its token (RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token) here too"
        ) from None
    try:
        yield ray
    finally:
        ray.shutdown()


def run_on_ray(
    cells: list[Cell], results: Path, logs: Path, max_parallel: int | None, address: str | None
) -> Iterator[dict]:
    results, logs = results.resolve(), logs.resolve()
    cells = [absolute_cell(cell) for cell in cells]
    with ray_session(address) as ray:
        yield from _schedule(ray, cells, results, logs, max_parallel)


def _schedule(ray, cells: list[Cell], results: Path, logs: Path, max_parallel: int | None) -> Iterator[dict]:
    task = ray.remote(run_cell)
    waiting = list(cells)
    running: dict = {}
    limit = max_parallel or len(cells) or 1  # by default Ray's resources decide how many run at once
    try:
        while waiting or running:
            while waiting and len(running) < limit:
                cell = waiting.pop(0)
                ref = task.options(num_cpus=cell.cpus, num_gpus=cell.gpus, max_retries=0).remote(cell, results, logs)
                running[ref] = cell
            ready, _ = ray.wait(list(running), num_returns=1)
            cell = running.pop(ready[0])
            try:
                yield ray.get(ready[0])
            except ray.exceptions.RayError as exc:  # a lost node or a killed worker: the cell is failed, not the grid
                yield {"cell": cell.key, "status": "failed", "error": f"Ray: {exc.__class__.__name__}", "seconds": 0}
    finally:
        for ref in running:
            ray.cancel(ref, force=True)


def absolute_cell(cell: Cell) -> Cell:
    """The cell with its dataset path made absolute: a worker's working folder is not the driver's."""
    return replace(cell, dataset=cell.dataset.resolve())
