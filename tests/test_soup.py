"""Greedy model soups: the mean of the weights, the same weights never counted twice, a run souped with itself
scoring exactly as the run (through the served model, its check and the shared evaluator), and bad ingredients
refused in one line."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from benchmarks.evaluation.results import load_run
from benchmarks.training.soup import average, weights_digest
from tests.conftest import refused


def test_the_soup_is_the_mean_of_float_weights_and_keeps_the_first_runs_counters():
    first = [np.array([1.0, 2.0], dtype=np.float32), np.array(7, dtype=np.int64)]
    second = [np.array([3.0, 6.0], dtype=np.float32), np.array(9, dtype=np.int64)]
    sums = [a.astype(np.float64) + b for a, b in zip(first, second)]
    mean = average(sums, 2, first)
    assert mean[0].dtype == np.float32 and mean[0].tolist() == [2.0, 4.0]
    assert mean[1] == 7  # BatchNorm's num_batches_tracked: a counter, not a weight


def test_weights_are_the_same_model_only_when_every_tensor_is_equal_in_order():
    a, b = np.arange(4, dtype=np.float32), np.ones(3, dtype=np.float32)
    assert weights_digest([a, b]) == weights_digest([a.copy(), b.copy()])
    assert weights_digest([a, b]) != weights_digest([b, a])
    assert weights_digest([a, b]) != weights_digest([a + 1e-7, b])


def soup_main_of(kind: str):
    if kind == "fastai":
        from fastai_model.soup import KIT
    else:
        from keras_model.soup import KIT
    from benchmarks.training.soup import soup_main

    return lambda argv: soup_main(KIT, argv)


@pytest.mark.training
@pytest.mark.parametrize("kind", ["fastai", "keras"])
def test_a_run_souped_with_itself_is_served_and_scored_as_the_run(kind, request, tiny_scenes, tmp_path, capsys):
    run = request.getfixturevalue(f"{kind}_run")
    main = soup_main_of(kind)
    assert main(["--dataset", str(tiny_scenes), "--results", str(tmp_path), str(run.path), str(run.path)]) == 0
    # its own weights again: one copy, or the mean would weigh that model twice
    assert f"left out: the same weights as {run.run_id}, already in the soup" in capsys.readouterr().out
    (made,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    soup = load_run(made)
    assert soup.status == "done" and soup.kind == kind and soup.params == run.params
    assert soup.info["soup"]["ingredients"] == [run.run_id]
    assert soup.info["soup"]["tried"][1] == {
        "run": run.run_id,
        "joined": False,
        "why": f"the same weights as {run.run_id}",
    }
    assert soup.info["served_check"]["max_abs_gap"] <= 1e-4  # the served soup is the scored soup
    mine, theirs = (pd.read_csv(r.path / "predictions.csv") for r in (soup, run))
    scores = [c for c in theirs.columns if c not in ("image", "split")]
    assert np.allclose(mine[scores].to_numpy(), theirs[scores].to_numpy(), atol=1e-4)
    assert json.loads((made / "metrics.json").read_text())["overall"]["macro_roc_auc"] == pytest.approx(
        json.loads((run.path / "metrics.json").read_text())["overall"]["macro_roc_auc"], abs=1e-3
    )


@pytest.mark.training
def test_a_soup_of_two_families_or_another_dataset_is_refused_in_one_line(
    fastai_run, keras_run, tiny_scenes, tmp_path, capsys
):
    main = soup_main_of("fastai")
    argv = ["--dataset", str(tiny_scenes), "--results", str(tmp_path), str(fastai_run.path), str(keras_run.path)]
    refused(capsys, argv, "a soup needs finished fastai runs (this is keras, done)", main=main)
    assert not [p for p in tmp_path.iterdir() if p.is_dir()]  # nothing half-made
