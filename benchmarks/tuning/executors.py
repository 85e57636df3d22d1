"""Where a batch of trials runs: threads here (each trial is its own child process, so threads only wait), or one
Ray task per trial on a cluster (the grid's Ray session; every node sees the study folder on a shared filesystem).
Either way the batch's outcomes come back in the order the trials were proposed."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace

from benchmarks.runner.ray_executor import absolute_cell, ray_session

from .trial import TrialTask, run_trial

RunBatch = Callable[[list[TrialTask]], list[dict]]


@contextmanager
def trial_executor(kind: str, parallel: int, address: str | None = None) -> Iterator[RunBatch]:
    if kind == "ray":
        with ray_session(address) as ray:
            yield _on_ray(ray)
    else:
        with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="trial") as pool:
            yield lambda tasks: list(pool.map(run_trial, tasks))


def _on_ray(ray) -> RunBatch:
    remote = ray.remote(run_trial)

    def run_batch(tasks: list[TrialTask]) -> list[dict]:
        tasks = [
            replace(
                t,
                study_dir=t.study_dir.resolve(),
                cell=absolute_cell(t.cell),
                other_folds=tuple(absolute_cell(c) for c in t.other_folds),
            )
            for t in tasks
        ]
        refs = [remote.options(num_cpus=t.cell.cpus, num_gpus=t.cell.gpus, max_retries=0).remote(t) for t in tasks]
        outcomes = []
        for task, ref in zip(tasks, refs):
            try:
                outcomes.append(ray.get(ref))
            except ray.exceptions.RayError as exc:  # a lost node or a killed worker: this trial failed, not the study
                outcomes.append(
                    {"number": task.number, "state": "failed", "seconds": 0, "error": f"Ray: {exc.__class__.__name__}"}
                )
        return outcomes

    return run_batch
