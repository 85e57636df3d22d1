"""fastai data-parallel training through Accelerate, launched as users launch it on GPUs (``torchrun`` /
``accelerate launch``), here as 2 CPU processes on the tiny 64-px StampScenes: one run, written once."""

import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from fastai_model import distributed

pytestmark = pytest.mark.training  # trains models on tiny data: `make test-fast` leaves these out


def test_a_plain_launch_is_one_process_and_changes_nothing():
    assert distributed.processes() == 1 and distributed.is_main()
    assert distributed.run_fields(32) == {}
    assert distributed.from_main(lambda: 42) == 42


def test_two_processes_train_one_run_that_the_main_process_writes(tiny_scenes, tmp_path):
    results = tmp_path / "results"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "fastai_model.train", "--dataset", str(tiny_scenes), "--results", str(results),
        "--img-size", "64", "--epochs", "1", "--freeze-epochs", "1", "--bs", "8",
        "--lr", "find", "--lr-find-iters", "5",  # lr_find with the probe's head: one more step for the main process
    ]  # fmt: skip
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=600, env=environment, stdin=subprocess.DEVNULL
    )
    assert done.returncode == 0, done.stderr[-3000:]

    runs = [path for path in results.iterdir() if path.is_dir()]
    assert len(runs) == 1, "the processes other than the main one must not make runs of their own"
    info = json.loads((runs[0] / "run.json").read_text())
    assert info["status"] == "done"
    assert info["distributed"] == {"processes": 2, "device": "cpu", "backend": "gloo", "global_batch_size": 16}
    assert [row["phase"] for row in info["history"]] == ["frozen", "unfrozen"]  # one row per epoch, not per process
    assert info["within_epoch"]["batches"] == 2  # 32 training images, 8 per batch, shared by 2 processes (4 alone)
    assert info["params"]["lr_used"] == info["lr_find"]["valley"] > 0  # lr_find ran once, on the main process
    assert info["head_init"]["from"].startswith("linear probe")
    assert (runs[0] / "lr_find.png").is_file() and (runs[0] / "metrics.json").is_file()
    assert len(pd.read_csv(runs[0] / "predictions.csv")) == 16  # valid + test, each image once
    assert done.stdout.count("run: ") == 1, "only the main process reports"
