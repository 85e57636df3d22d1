"""tools.end_rules: a trainer's start and epochs recorded once, every end rule replayed from the record."""

import json
import subprocess
import sys

import numpy as np
import pytest

from benchmarks.evaluation.results import load_run
from tools.end_rules import BLENDS, START, blend_name, end_rules, main, replay


def made_up_dump(blends=(0.5,)) -> dict:
    """Start: noisy scores; epoch 0: perfect on valid, reversed on test (overfit); epoch 1 and the blends: the
    start again."""
    rng = np.random.default_rng(0)
    targets = np.tile([[1, 0], [0, 1], [1, 1], [0, 0]], (20, 1))
    split = np.array(["valid"] * 40 + ["test"] * 40)
    start = np.clip(targets + rng.normal(0, 0.6, targets.shape), 0, 1)
    overfit = start.copy()
    overfit[:40], overfit[40:] = targets[:40], 1 - start[40:]
    names = [START, "epoch 0", "epoch 1", *map(blend_name, blends)]
    return {
        "names": np.array(names),
        "scores": np.stack([start, overfit, start, *[start] * len(blends)]),
        "split": split,
        "targets": targets,
    }


def test_each_rule_keeps_what_it_says_and_the_gain_is_on_test():
    gains = end_rules(made_up_dump())
    assert gains["last epoch"] == 0.0 and gains["blend 0.5"] == 0.0  # both are the start's scores
    assert gains["best valid epoch"] < -0.3  # the overfit epoch: first on valid, reversed on test
    assert gains["keep-best 0.95"] == gains["best valid epoch"]  # far ahead on valid: trusted
    assert gains["blend 0.5, keep-best 0.95"] == 0.0  # the blend is no better than the start: the start stays


def test_replay_groups_by_recipe_and_dataset_and_refuses_an_unnamed_dump(tmp_path, capsys):
    for name in ("k8-s6-0", "k8-s7-0"):
        np.savez(tmp_path / f"{name}.npz", **made_up_dump())
    table = replay(sorted(tmp_path.glob("*.npz")))
    assert "**k8** (2 runs)" in table and "| end rule | mean | s6 | s7 |" in table
    assert "| last epoch | +0.0000 | +0.0000 | +0.0000 |" in table
    np.savez(tmp_path / "k8-s8-0.npz", **made_up_dump(blends=(0.25, 0.5)))  # a later record: more blends
    table = replay(sorted(tmp_path.glob("*.npz")))
    assert "| blend 0.25 | +0.0000 | — | — | +0.0000 |" in table  # not recorded on s6 and s7
    np.savez(tmp_path / "unnamed.npz", **made_up_dump())
    assert main(["replay", str(tmp_path / "unnamed.npz")]) == 2
    assert "name it RECIPE-DATASET-SEED.npz" in capsys.readouterr().err


@pytest.mark.training
def test_a_recorded_fastai_run_holds_the_scores_keep_best_judged(tiny_scenes, tmp_path):
    dump, results = tmp_path / "tiny-scenes-0.npz", tmp_path / "results"
    trainer = ["--dataset", str(tiny_scenes), "--img-size", "64", "--epochs", "2", "--freeze-epochs", "0"]
    trainer += ["--bs", "8", "--lr", "1e-3", "--precision", "fp32", "--results", str(results)]  # fp32: as replayed
    done = subprocess.run(
        [sys.executable, "-m", "tools.end_rules", "record", "fastai", str(dump), "--", *trainer],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    with np.load(dump) as data:
        names, scores, split, targets = (data[k] for k in ("names", "scores", "split", "targets"))
    assert list(names) == [START, "epoch 0", "epoch 1", *map(blend_name, BLENDS)]
    assert not np.allclose(scores[-1], scores[-2])  # each share a model of its own
    (run_dir,) = results.glob("fastai-*")
    kept = load_run(run_dir).info["kept"]
    from benchmarks.evaluation.metrics import macro_auc

    valid = split == "valid"
    assert round(macro_auc(targets[valid], scores[0][valid]), 4) == kept["start_valid_macro_auc"]
    judged = [round(macro_auc(targets[valid], s[valid]), 4) for s in scores[1:3]]
    assert judged == [epoch["valid_macro_auc"] for epoch in kept["epochs"]]
    assert json.loads((run_dir / "run.json").read_text())["status"] == "done"
