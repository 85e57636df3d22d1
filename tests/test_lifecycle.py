"""The run lifecycle both trainers share: where a resume starts, what it refuses, and the one restart rule."""

from __future__ import annotations

import pytest

from benchmarks.data.dataset import load_dataset
from benchmarks.errors import BenchmarkError
from benchmarks.evaluation.results import create_run, load_run
from benchmarks.training.lifecycle import ResumePoint, open_run
from benchmarks.training.options import CommonConfig, make_config


def a_run(results, dataset_dir, kind="fastai", **fields):
    run = create_run(results, kind=kind, dataset=load_dataset(dataset_dir), params=CommonConfig(epochs=3).to_dict())
    run.update(status="interrupted", **fields)
    return load_run(run.path)


@pytest.mark.parametrize(
    ("progress", "expected"),
    [
        ({"phase": "frozen", "epoch": 0}, ResumePoint("frozen", 1)),
        ({"phase": "frozen", "epoch": 1}, ResumePoint("unfrozen", 0)),  # the frozen phase is over
        ({"phase": "unfrozen", "epoch": 0}, ResumePoint("unfrozen", 1)),
    ],
)
def test_a_resume_starts_after_the_last_finished_epoch(small_dataset, tmp_path, progress, expected):
    run = a_run(tmp_path, small_dataset, progress=progress)
    assert ResumePoint.after_progress(run, freeze_epochs=2) == expected


def test_a_run_stopped_before_its_first_epoch_ended_starts_again_in_its_own_folder(small_dataset, tmp_path, capsys):
    run = a_run(tmp_path, small_dataset)
    opening = open_run("fastai", make_config(CommonConfig, {}, epochs=9), None, run.path)
    assert opening.resume is None and opening.run.path == run.path
    assert opening.config.epochs == 3  # the run's own settings, not the ones given
    assert "starting it again" in capsys.readouterr().out


def test_resume_refuses_another_frameworks_run(small_dataset, tmp_path):
    run = a_run(tmp_path, small_dataset, kind="keras")
    with pytest.raises(BenchmarkError, match=f"{run.path}: is a keras run, not a fastai run"):
        open_run("fastai", CommonConfig(), None, run.path)


def test_train_seconds_add_up_over_a_resume(small_dataset, tmp_path):
    run = a_run(tmp_path, small_dataset, progress={"phase": "unfrozen", "epoch": 0}, timings={"train_s": 10.0})
    assert open_run("fastai", CommonConfig(), None, run.path).train_seconds(2.5) == 12.5
    assert open_run("fastai", CommonConfig(), small_dataset, None).train_seconds(2.5) == 2.5
