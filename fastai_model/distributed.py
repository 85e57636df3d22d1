"""Data-parallel training over several GPUs (or CPU processes) through fastai's Accelerate integration.

``accelerate launch --multi_gpu --num_processes N -m fastai_model.train ...`` (or ``torchrun``) starts N copies of
the trainer; fastai's ``distrib_ctx`` wraps the model in DistributedDataParallel and gives each process its share of
every batch. There is still one run: the main process (rank 0) makes the run folder, fits the LP-FT head, finds the
LR, writes run.json, checkpoints, predictions and the model; the other processes train in step with it, silently,
and leave when training ends. Launched the plain way (one process), every function here is a no-op.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from contextlib import contextmanager
from typing import TypeVar

import torch
from fastai.torch_core import num_distrib, rank_distrib

from benchmarks.evaluation.results import Run

T = TypeVar("T")


def processes() -> int:
    """How many processes train this run (``WORLD_SIZE`` from the launcher; 1 when launched plainly)."""
    return max(num_distrib(), 1)


def is_main() -> bool:
    return rank_distrib() == 0


def start() -> None:
    """Join the process group before any model or data loader exists, so each process's default CUDA device is its
    own GPU; the processes other than the main one stop printing (one run, one report)."""
    if processes() == 1:
        return
    from accelerate import PartialState

    state = PartialState(cpu=not torch.cuda.is_available())
    if not is_main():
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - for the life of the process
    print(f"data parallel: {state.num_processes} processes on {state.device.type} ({state.backend})", flush=True)


def run_fields(batch_size: int) -> dict:
    """What run.json records under ``distributed`` when several processes train: how many, where, and the batch one
    optimizer step sees (``--bs`` is per process). Nothing for a plain run."""
    if processes() == 1:
        return {}
    from accelerate import PartialState

    state = PartialState()
    described = {"processes": state.num_processes, "device": state.device.type, "backend": state.backend}
    return {"distributed": {**described, "global_batch_size": batch_size * state.num_processes}}


@contextmanager
def _as_only_process():
    """fastai's ``Learner.load`` waits for every process (``distrib_barrier``); a step that only the main process
    runs must not wait for the others, which are waiting for its result."""
    world = os.environ.get("WORLD_SIZE")
    os.environ["WORLD_SIZE"] = "1"
    try:
        yield
    finally:
        os.environ["WORLD_SIZE"] = world


def from_main(compute: Callable[[], T]) -> T:
    """``compute()`` on the main process only, its result handed to every other process (which waits for it): steps
    that write the run (the LP-FT head fit, lr_find) or must give every process the same value (the LR)."""
    if processes() == 1:
        return compute()
    from accelerate.utils import broadcast_object_list

    if is_main():
        with _as_only_process():
            box = [compute()]
    else:
        box = [None]
    broadcast_object_list(box, from_process=0)
    return box[0]


class FollowerRun(Run):
    """The run as a process other than the main one sees it: the same folder and settings; its updates stay in
    memory, so one process writes run.json."""

    def update(self, **fields) -> None:
        self.info.update(fields)


def shared_run(existing: Run | None, create: Callable[[], Run]) -> Run:
    """The run every process trains: ``existing`` (a resumed run) or the one the main process creates; processes
    other than the main one see it read-only."""
    if processes() == 1:
        return existing or create()
    run = existing or from_main(create)
    return run if is_main() else FollowerRun(run.path, run.info)


@contextmanager
def data_parallel(learn):
    """fastai's ``distrib_ctx`` around the fits when several processes were launched: DistributedDataParallel,
    each process's share of each batch, BatchNorm synchronised across GPUs (gloo on CPUs has no SyncBatchNorm)."""
    if processes() == 1:
        yield learn
        return
    from fastai.distributed import DistributedDL  # importing it patches Learner.distrib_ctx

    cuda = torch.cuda.is_available()
    if not cuda:
        DistributedDL._broadcast = _broadcast_on_cpu
    with learn.distrib_ctx(sync_bn=cuda, cpu=not cuda):
        yield learn


def leave_after_training() -> bool:
    """Training done: every process leaves the group; the main one carries on alone (predictions, the saved model,
    the evaluator) and fastai stops gathering across processes. True for the processes that should now stop."""
    if processes() == 1:
        return False
    torch.distributed.barrier()
    torch.distributed.destroy_process_group()
    if not is_main():
        return True
    os.environ["WORLD_SIZE"] = "1"
    return False


def _broadcast_on_cpu(self, indices, rank):
    """fastai's ``DistributedDL._broadcast`` moves the shuffled indices to CUDA (NCCL needs it); gloo, the CPU
    backend, broadcasts them where they are. Used only when no GPU is there, e.g. the tests' 2-process CPU run."""
    tensor = torch.LongTensor(indices)
    torch.distributed.broadcast(tensor, rank)
    return tensor.tolist()
