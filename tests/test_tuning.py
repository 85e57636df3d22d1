"""Tuning: a 3-trial study on tiny data on a real local Ray cluster, killed and resumed; the same seed without Ray
choosing the same; the pruner stopping a trial; the expected-max estimator against brute force; spaces, specs and
bad options."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest

from benchmarks.cli import main as cli
from benchmarks.errors import BenchmarkError
from benchmarks.evaluation.results import load_run
from benchmarks.models.registry import families, tunable_families
from benchmarks.models.search_space import parse_fixed, space_digest
from benchmarks.runner import cells
from benchmarks.runner.spec import Cell, read_spec
from benchmarks.tuning.curves import budget_verdict, expected_max, expected_max_bands
from benchmarks.tuning.records import family_curves, read_studies, report_section, titled_studies
from benchmarks.tuning.records import verdicts as budget_verdicts
from benchmarks.tuning.settings import Budget
from tests.conftest import refused

TINY_STUDY = ["--img-size", "64", "--trials", "3", "--fix", "epochs=1", "freeze-epochs=0", "--cpus-per-trial", "2"]


def tune_argv(dataset: Path, results: Path) -> list[str]:
    return [sys.executable, "-m", "benchmarks", "tune", str(dataset), "--family", "fastai", "--results", str(results)]


def study_of(results: Path) -> tuple[Path, dict]:
    (path,) = results.glob("tuning/*/study.json")
    return path.parent, json.loads(path.read_text())


def trial(study: dict, number: int) -> dict:
    return next(t for t in study["trials"] if t["number"] == number)


@pytest.mark.training
def test_a_study_on_a_local_ray_cluster_resumes_after_a_kill_and_chooses_what_a_local_study_does(
    tiny_scenes, tmp_path, ray_cluster
):
    address, env = ray_cluster
    results = tmp_path / "ray"
    argv = [*tune_argv(tiny_scenes, results), *TINY_STUDY, "--executor", "ray", "--address", address]
    first = subprocess.Popen(argv, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 300
        while not list(results.glob("tuning/*/logs/trial-0001.log")):  # trial 0 told, trial 1 running
            assert first.poll() is None and time.monotonic() < deadline, "the study ended before it could be killed"
            time.sleep(0.2)
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    again = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "trial 1 was running when the study stopped: its values run again" in again.stdout
    folder, study = study_of(results)
    assert [t["state"] for t in study["trials"]] == ["complete", "requeued", "complete", "complete"]
    assert trial(study, 2)["params"] == trial(study, 1)["params"]  # the killed trial's values, run again first
    start = families()["fastai"].start_values("small")  # the tiny dataset is small data: "small" is the default
    start = {k: v for k, v in start.items() if k not in ("epochs", "freeze-epochs")}  # fixed: not in the space
    assert trial(study, 0)["params"] == start and trial(study, 0)["start"] == "small"  # the preset comes first
    assert study["start_trial"] == 0 and "the preset unless" in study["rule"]
    assert (folder / "logs" / "trial-0000.log").read_text().count("$ ") == 1  # a finished trial never runs again
    assert study["spent"]["trials"] == 3 and study["budget"]["described"] == "3 trials"

    local = tmp_path / "local"  # the same seed, uninterrupted, without Ray: the same values in the same order
    plain = subprocess.run([*tune_argv(tiny_scenes, local), *TINY_STUDY], capture_output=True, text=True, timeout=900)
    assert plain.returncode == 0, plain.stderr[-3000:]
    assert "2 trials to go: about " in plain.stdout and "1 trial to go: about " in plain.stdout  # the pace, each trial
    assert "0 trials to go" not in plain.stdout
    _, local_study = study_of(local)
    resumed = [t for t in study["trials"] if t["state"] != "requeued"]
    assert [t["params"] for t in local_study["trials"]] == [t["params"] for t in resumed]
    assert trial(local_study, local_study["chosen"])["params"] == trial(study, study["chosen"])["params"]
    souped = subprocess.run([*tune_argv(tiny_scenes, local), *TINY_STUDY, "--soup"], capture_output=True, text=True)
    assert souped.returncode == 0, souped.stderr[-3000:]  # the finished study resumed: no trial runs, the soup is made
    folder, local_study = study_of(local)
    assert local_study["spent"]["trials"] == 3 and local_study["soup"]["for"][0] == local_study["chosen"]
    soup_run = load_run(local / local_study["promoted"])
    assert (
        soup_run.params["tuning"]["soup"] == "greedy"
        and soup_run.info["study"]["soup_trials"][0] == local_study["chosen"]
    )
    assert "soup: " in souped.stdout and (folder / "logs" / "soup.log").is_file()

    # the chosen trial's run, promoted: an ordinary run for the leaderboard and compare, which says it was tuned
    promoted = load_run(results / study["promoted"])
    assert promoted.status == "done" and promoted.params["preset"] == "tuned"
    assert promoted.info["study"]["trial"] == study["chosen"] and promoted.params["tuning"]["budget"] == "3 trials"
    searched = [knob for knob in families()["fastai"].search_space if knob.option not in ("epochs", "freeze-epochs")]
    assert promoted.params["tuning"]["space"] == space_digest([knob.describe() for knob in searched])  # the model's
    assert not (promoted.path / "checkpoints").exists()
    assert subprocess.run(
        [sys.executable, "-m", "benchmarks", "baseline", "linear-probe", "--dataset", str(tiny_scenes), "--results",
         str(results), "--img-size", "64"], capture_output=True).returncode == 0  # fmt: skip
    compared = subprocess.run(
        [sys.executable, "-m", "benchmarks", "compare", str(promoted.path), "linear_probe·lite0", "--results",
         str(results)], capture_output=True, text=True)  # fmt: skip
    assert compared.returncode == 0 and "macro" in compared.stdout, compared.stderr[-2000:]
    board = subprocess.run(
        [sys.executable, "-m", "benchmarks", "leaderboard", "--results", str(results), "--group-by", "model"],
        capture_output=True,
        text=True,
    )
    assert "fastai·lite0·tuned" in board.stdout, board.stdout + board.stderr


@pytest.mark.training
def test_the_pruner_stops_a_trial_like_ctrl_c_and_the_run_says_interrupted(tiny_scenes, tmp_path, monkeypatch):
    monkeypatch.setattr(cells, "WATCH_EVERY_S", 0.05)
    cell = Cell(tiny_scenes, "fastai", families()["fastai"].grid, None, None, {"img-size": 64, "epochs": 3}, 0, 2)
    seen = []

    def prune_at_once(run) -> bool:
        seen.append(run.status)
        return True

    entry = cells.run_cell(cell, tmp_path / "results", tmp_path / "logs", name="trial-0000", watch=prune_at_once)
    assert entry["status"] == "stopped" and seen == ["running"]
    (run_folder,) = (tmp_path / "results").iterdir()
    assert load_run(run_folder).status == "interrupted"


def test_a_smaller_budget_chooses_among_its_first_trials_as_if_the_study_had_stopped_there(tiny_scenes, tmp_path):
    argv = ["tune", str(tiny_scenes), "--family", "linear_probe", "--img-size", "64", "--results", str(tmp_path)]
    assert cli([*argv, "--trials", "4"]) == 0
    _, study = study_of(tmp_path)
    first_two = [t for t in study["trials"] if t["number"] < 2]
    assert cli([*argv, "--trials", "2"]) == 0  # the same study (its name has no budget): nothing new runs
    _, again = study_of(tmp_path)
    assert len(again["trials"]) == 4 and again["budget"]["described"] == "2 trials"
    assert again["chosen"] == max(first_two, key=lambda t: (t["valid"], -t["number"]))["number"]
    promoted = load_run(tmp_path / again["promoted"])
    assert promoted.info["study"]["trial"] == again["chosen"] and promoted.params["tuning"]["budget"] == "2 trials"
    assert "selection" not in promoted.params["tuning"]  # chosen on valid: groups with tuned runs made before folds


def test_trials_are_rescored_on_the_same_resampled_valid_images_and_a_lost_run_only_loses_its_noise(
    tiny_scenes, tmp_path
):
    from sklearn.metrics import roc_auc_score

    from benchmarks.data.dataset import load_dataset
    from benchmarks.evaluation.evaluate import aligned_scores
    from benchmarks.evaluation.resampling import draw_counts
    from benchmarks.tuning.curves import BAND_SEED
    from benchmarks.tuning.valid_resamples import ValidResampler

    argv = ["tune", str(tiny_scenes), "--family", "linear_probe", "--img-size", "64", "--results", str(tmp_path)]
    assert cli([*argv, "--trials", "3"]) == 0
    folder, study = study_of(tmp_path)
    dataset = load_dataset(tiny_scenes)
    samples, resampled = ValidResampler(5, dataset).samples(folder, study["trials"])
    assert samples.shape == (5, 3) and resampled == 3
    targets, scores = aligned_scores(load_run(folder / "trials" / study["trials"][1]["run"]), dataset, "valid")
    drawn = np.repeat(np.arange(len(targets)), draw_counts(len(targets), 5, BAND_SEED)[2])  # resample 2's images
    labels = [j for j in range(targets.shape[1]) if 0 < targets[drawn, j].sum() < len(drawn)]
    expected = np.mean([roc_auc_score(targets[drawn, j], scores[drawn, j]) for j in labels])
    assert samples[2, 1] == pytest.approx(expected, abs=1e-12)

    (curve,) = family_curves(read_studies(tmp_path)[0], dataset)
    assert curve.resampled == 3 and curve.samples.shape == (1000, 3)
    assert curve.curves["valid_high"][0] - curve.curves["valid_low"][0] > 0  # valid images move even one trial
    shutil.rmtree(folder / "trials" / study["trials"][0]["run"])  # a lost run folder, and one that points outside
    study["trials"][1]["run"] = "../../../outside"
    (folder / "study.json").write_text(json.dumps(study))
    samples, resampled = ValidResampler(5, dataset).samples(folder, study["trials"])
    assert resampled == 1 and (samples[:, 0] == study["trials"][0]["valid"]).all()


def test_a_cross_validated_study_chooses_on_the_mean_of_its_folds_and_promotes_a_run_on_the_own_split(
    tiny_scenes, tmp_path, capsys
):
    from benchmarks.data.dataset import load_dataset
    from benchmarks.tuning.valid_resamples import ValidResampler

    dataset = load_dataset(tiny_scenes)
    argv = ["tune", str(tiny_scenes), "--family", "linear_probe", "--img-size", "64", "--results", str(tmp_path)]
    assert cli([*argv, "--trials", "2", "--folds", "2"]) == 0
    warning = capsys.readouterr().err
    assert "keep stamp instances (each stamp is in one split) apart and plain folds cannot" in warning
    assert "add --group-folds" in warning  # the dataset records its stamps: the remedy is offered
    folder, study = study_of(tmp_path)
    assert study["settings"]["folds"] == 2
    folds = [load_dataset(folder / "folds" / f"fold-{i}") for i in range(2)]
    held_out = [set(f.rows("valid")["image"]) for f in folds]
    assert not held_out[0] & held_out[1]  # every train + valid image is held out exactly once ...
    assert held_out[0] | held_out[1] == set(dataset.rows(["train", "valid"])["image"])
    assert all(set(f.rows("test")["image"]) == set(dataset.rows("test")["image"]) for f in folds)  # ... test whole
    for t in study["trials"]:
        fold_valid = [load_run(folder / "trials" / name).info["dataset"]["path"] for name in t["runs"]]
        assert fold_valid == [str(f.root) for f in folds]
        assert t["valid"] == pytest.approx(np.mean(t["fold_valid"]), abs=1e-5)
    promoted = load_run(tmp_path / study["promoted"])  # the chosen values, trained on the dataset's own split
    assert promoted.info["dataset"]["fingerprint"] == dataset.fingerprint
    assert promoted.params["tuning"]["selection"] == "2-fold CV over train + valid"
    _, resampled = ValidResampler(5, dataset).samples(folder, study["trials"])
    assert resampled == 2  # each fold's valid images resampled, the folds averaged

    cli([*argv, "--trials", "2"])  # choosing on valid is another study: its own folder, no folds
    curves = family_curves(read_studies(tmp_path)[0], dataset)  # one curve each, never compared with each other
    assert sorted(c.title for c in curves) == ["linear probe", "linear probe (2-fold CV)"] and not budget_verdicts(
        curves
    )
    capsys.readouterr()
    assert cli([*argv, "--trials", "2", "--folds", "15"]) != 0
    assert re.search(r"--folds 15: label '\w+' has \d+ positive train \+ valid image", capsys.readouterr().err)


def instance_dataset(root: Path) -> Path:
    """3 labels × 6 instances; each instance in two images alone, and pairs of instances in 12 more (train + valid),
    with objects.jsonl saying which instances each image shows."""
    from tests.conftest import make_dataset

    rows, objects = [], []
    instances = [(f"{label}{i}", label) for label in "abc" for i in range(6)]
    for n, (instance, label) in enumerate(instances * 2):
        image = f"images/solo{n}.png"
        rows.append((image, label, "train" if n % 4 else "valid"))
        objects.append({"image": image, "stamp": instance, "label": label})
    for n in range(12):
        (first, label_1), (second, label_2) = instances[n], instances[(n * 5 + 7) % len(instances)]
        image = f"images/pair{n}.png"
        rows.append((image, " ".join(sorted({label_1, label_2})), "train"))
        objects += [
            {"image": image, "stamp": first, "label": label_1},
            {"image": image, "stamp": second, "label": label_2},
        ]
    rows += [(f"images/test{n}.png", label, "test") for n, label in enumerate("abcabc")]
    make_dataset(root, rows, ["a", "b", "c"])
    (root / "objects.jsonl").write_text("".join(json.dumps(o) + "\n" for o in objects))
    return root


def test_grouped_folds_keep_every_instance_in_one_fold(tmp_path):
    from benchmarks.data.dataset import load_dataset
    from benchmarks.data.folds import instance_groups, write_folds

    dataset = load_dataset(instance_dataset(tmp_path / "instances"))
    shown, _ = instance_groups(dataset)
    folds = write_folds(dataset, tmp_path / "folds", 3, seed=0, grouped=True)
    held_out = [set(fold.rows("valid")["image"]) for fold in folds]
    for fold, valid in zip(folds, held_out):
        trained = set(fold.rows("train")["image"])
        assert not {i for im in trained for i in shown[im]} & {i for im in valid for i in shown[im]}
        assert set(fold.rows("test")["image"]) == set(dataset.rows("test")["image"])
        assert fold.info["fold"]["grouped"] == "instances"
    assert sum(map(len, held_out)) == len(set().union(*held_out))  # each image held out at most once
    spanning = {im for im in shown if len({i for i in shown[im]}) > 1}
    assert set().union(*held_out) >= {im for im in shown if im.startswith("images/solo")}  # one instance: held out
    assert len(spanning & set().union(*held_out)) < len(spanning)  # some pairs span folds and sit out everywhere
    again = write_folds(dataset, tmp_path / "folds", 3, seed=0, grouped=True)  # a resumed study finds them
    assert [f.fingerprint for f in again] == [f.fingerprint for f in folds]
    with pytest.raises(BenchmarkError, match="holds another dataset or other folds"):
        write_folds(dataset, tmp_path / "folds", 3, seed=0)  # plain folds never overwrite grouped ones


def test_grouped_folds_refuse_what_they_cannot_do_in_one_line(tmp_path, capsys):
    from benchmarks.data.dataset import load_dataset
    from benchmarks.data.folds import write_folds

    root = instance_dataset(tmp_path / "instances")
    with pytest.raises(BenchmarkError, match=r"fold \d's (valid|train) holds no image of '\w'.*use fewer folds"):
        write_folds(load_dataset(root), tmp_path / "many", 7, seed=0, grouped=True)  # 6 instances of a label
    (root / "objects.jsonl").write_text('{"image": "images/solo0.png"}\n')
    with pytest.raises(BenchmarkError, match=r"objects.jsonl:1: not an object record"):
        write_folds(load_dataset(root), tmp_path / "damaged", 2, seed=0, grouped=True)
    (root / "objects.jsonl").unlink()
    with pytest.raises(BenchmarkError, match="records no object instances"):
        write_folds(load_dataset(root), tmp_path / "none", 2, seed=0, grouped=True)
    refused(capsys, ["tune", str(root), "--family", "linear_probe", "--group-folds"], "--group-folds: give --folds K")


def test_a_study_chosen_by_grouped_folds_is_its_own_curve(tmp_path, capsys):
    root = instance_dataset(tmp_path / "instances")
    argv = ["tune", str(root), "--family", "linear_probe", "--img-size", "32", "--results", str(tmp_path / "r")]
    assert cli([*argv, "--trials", "2", "--folds", "2", "--group-folds"]) == 0
    assert "each object instance in one fold" in capsys.readouterr().out
    assert cli([*argv, "--trials", "2", "--folds", "2"]) == 0
    studies, _ = read_studies(tmp_path / "r")
    curves = family_curves(studies)
    assert sorted(c.title for c in curves) == ["linear probe (2-fold CV by instance)", "linear probe (2-fold CV)"]
    promoted = [load_run(p) for p in (tmp_path / "r").iterdir() if (p / "run.json").is_file()]
    assert {r.params["tuning"]["selection"] for r in promoted} == {
        "2-fold CV over train + valid",
        "2-fold CV by instance over train + valid",
    }


@pytest.mark.training
def test_a_cross_validated_fastai_study_trains_every_fold_without_keep_best(tiny_scenes, tmp_path):
    argv = [*tune_argv(tiny_scenes, tmp_path), *TINY_STUDY, "--folds", "2"]
    argv[argv.index("--trials") + 1] = "1"
    done = subprocess.run(argv, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    folder, study = study_of(tmp_path)
    (only,) = study["trials"]
    runs = [load_run(folder / "trials" / name) for name in [*only["runs"], study["promoted"]]]
    assert len(runs) == 3 and all(run.status == "done" for run in runs)
    assert all(run.params.get("keep_best") is False and "kept" not in run.info for run in runs), [
        (run.params.get("keep_best"), run.info.get("kept")) for run in runs
    ]


def test_runs_of_a_cross_validated_study_turn_keep_best_off_where_the_trainer_has_it():
    from benchmarks.data.dataset import Dataset
    from benchmarks.tuning.settings import StudySettings

    dataset = Dataset(Path("d"), "d", ["a"], None, "sha256:x")
    for kind, flag in (("fastai", True), ("keras", True), ("linear_probe", False)):
        plain = StudySettings(dataset, families()[kind]).cell({}).argv(Path("r"))
        folded = StudySettings(dataset, families()[kind], folds=3, fold_roots=(Path("f0"),))
        assert "--no-keep-best" not in plain and ("--no-keep-best" in folded.cell({}).argv(Path("r"))) == flag
        assert [c.dataset for c in folded.fold_cells({})] == [Path("f0")]


def test_a_paired_verdict_sees_a_lead_that_overlapping_bands_hide():
    rng = np.random.default_rng(0)
    shared = rng.normal(0, 0.03, (1000, 1))  # what the valid images do to both families alike
    a_samples, b_samples = 0.82 + shared + rng.normal(0, 0.002, (1000, 2)), 0.80 + shared
    a, a_resampled = expected_max_bands([0.82, 0.82], valid_samples=a_samples, stream=1, with_samples=True)
    b, b_resampled = expected_max_bands(
        [0.80, 0.80], valid_samples=np.repeat(b_samples, 2, 1), stream=2, with_samples=True
    )
    assert a["valid_low"][1] < b["valid_high"][1]  # the bands overlap ...
    assert "not distinguishable at any budget" in budget_verdict("A", a, "B", b)
    said = budget_verdict("A", a, "B", b, samples=(a_resampled, b_resampled))  # ... the paired difference does not
    assert said.startswith("A vs B: A ahead at every budget")
    noisy = 0.81 + rng.normal(0, 0.03, (1000, 2))  # independent of B's valid images: no lead
    n, n_resampled = expected_max_bands([0.81, 0.81], valid_samples=noisy, stream=3, with_samples=True)
    assert "the paired difference's band includes 0" in budget_verdict(
        "N", n, "B", b, samples=(n_resampled, b_resampled)
    )


def test_the_median_pruner_reads_each_epoch_from_the_run_history(tmp_path):
    """Three finished trials reached 0.8 after their second epoch; a trial at 0.6 there is stopped, one at 0.9 is
    not, and nothing is stopped after the first epoch (warm-up); a keep-best trial counts as what it would end on."""
    import optuna

    from benchmarks.tuning.storage import open_study
    from benchmarks.tuning.trial import TrialTask, _pruning_watch

    study = open_study(tmp_path, "s", create=True)
    for _ in range(3):
        done = study.ask({"lr": optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True)})
        done.report(0.7, 0)
        done.report(0.8, 1)
        study.tell(done, 0.8)

    def verdicts(values: list[float], ends_on: list[float] | None = None) -> list[bool]:
        """The pruner's answer after each epoch; ``ends_on``: the run keeps the best, and would end on these."""
        running = study.ask({"lr": optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True)})
        task = TrialTask(tmp_path, "s", running._trial_id, running.number, None, "roc_auc_score", True)
        watch = _pruning_watch(task)
        answers = []
        for i in range(len(values)):
            info = {"history": [{"roc_auc_score": v} for v in values[: i + 1]]}
            if ends_on is not None:
                info["keep_best_progress"] = {"start_valid_macro_auc": ends_on[0], "ends_on": ends_on[: i + 1]}
            answers.append(watch(type("R", (), {"info": info})()))
        study.tell(running, state=optuna.trial.TrialState.FAIL)
        return answers

    assert verdicts([0.1, 0.6]) == [False, True]
    assert verdicts([0.1, 0.9]) == [False, False]
    # a keep-best run reports what it would end on: a dip below its start (0.8) is not held against it, a start
    # behind the field is, whatever the epoch's own score
    assert verdicts([0.1, 0.6], ends_on=[0.8, 0.8]) == [False, False]
    assert verdicts([0.1, 0.9], ends_on=[0.75, 0.75]) == [False, True]


def test_trial_0_is_the_preset_and_every_trainer_knob_has_its_value():
    from benchmarks.models.registry import family_of

    keras = family_of("keras").start_values("quick")
    assert keras.pop("fine-tune-lr") == pytest.approx(1e-3)  # quick's lr 1e-2 x its fine-tune-lr-factor 0.1
    assert keras == {
        "lr": 1e-2, "lr-mult": 1, "epochs": 2, "freeze-epochs": 0, "unfreeze": 3, "wd": 0.01,
        "mixup": False, "label-smoothing": 0.0, "dropout": 0.2, "schedule": "cosine", "head-init": "probe",
        "wise-ft": 1.0,
    }  # fmt: skip
    assert family_of("fastai").start_values("quick")["lr-mult"] == 100  # fine_tune's own spread: trial 0 is quick
    # Keras' is 1, the guide's one LR for all
    for family in (family_of("fastai"), family_of("keras")):
        start = family.start_values("quick")
        assert list(start) == [knob.option for knob in family.search_space], family.kind  # nothing left to chance
        assert family.start_values("full")["epochs"] == 8
        assert "lr" not in family.start_values(None)  # lr "auto" is no value of the space: the sampler draws it
    assert family_of("linear_probe").start_values(None) == {}  # its default already picks C on valid


def test_a_study_says_how_long_the_rest_of_its_budget_may_take():
    assert Budget(16).pace([600.0, 1800.0], spent=2400) == (
        "14 trials to go: about 4 h 40 min more at the mean 20 min per trial so far (pruned: shorter)"
    )
    assert Budget(16).pace([600.0, 1800.0], spent=2400, parallel=4).startswith("14 trials to go: about 1 h 20 min")
    capped = Budget(16, seconds=3600).pace([600.0], spent=600)
    assert capped == "15 trials to go, but the budget's wall time ends in 50 min"
    assert Budget(2).pace([30.0, 30.0], spent=60) is None  # spent: nothing left to say


def test_a_knob_admits_only_values_of_its_own_kind_and_range():
    from benchmarks.models.search_space import choice, int_range, log_range

    assert choice("unfreeze", 0, 3, 5).admits(3) and not choice("unfreeze", 0, 3, 5).admits(False)
    assert choice("mixup", False, True).admits(False) and not choice("mixup", False, True).admits(0)
    assert log_range("lr", 1e-4, 1e-1).admits(1e-2) and not log_range("lr", 1e-4, 1e-1).admits("auto")
    assert not log_range("lr", 1e-4, 1e-1).admits(0.5) and not int_range("epochs", 1, 8).admits(2.5)
    assert int_range("epochs", 1, 8).admits(2) and not int_range("epochs", 1, 8).admits(True)


def test_wise_ft_is_drawn_only_for_trials_that_start_from_the_probes_head():
    """WiSE-FT blends with the start, which under a random head is no model: such trials leave the knob out."""
    import optuna

    from benchmarks.data.dataset import Dataset
    from benchmarks.tuning.settings import StudySettings
    from benchmarks.tuning.study import distributions, propose

    dataset = Dataset(Path("d"), "d", ["a"], None, "sha256:x")
    for kind in ("fastai", "keras"):
        settings = StudySettings(dataset, families()[kind], preset="quick")
        assert settings.start["head-init"] == "probe" and settings.start["wise-ft"] == 1.0
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0), direction="maximize")
        drawn = [propose(study, settings, distributions(settings)).params for _ in range(24)]
        assert {p["head-init"] for p in drawn} == {"probe", "random"}
        assert all(("wise-ft" in p) == (p["head-init"] == "probe") for p in drawn), kind
        assert {p["wise-ft"] for p in drawn if "wise-ft" in p} == {1.0, 0.5}
        random_head = StudySettings(dataset, families()[kind], preset="quick", fixed={"head-init": "random"})
        assert "wise-ft" not in random_head.start
        assert "wise-ft" not in propose(study, random_head, distributions(random_head)).params


def made_up_study(values: dict[int, float], start: int | None):
    """An in-memory study whose complete trials have these valid macro AUCs (trial ``start`` the preset's)."""
    import optuna

    study = optuna.create_study(direction="maximize")
    space = {"lr": optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True)}
    for number, value in values.items():
        attrs = {"run": f"run{number}", **({"start": "quick"} if number == start else {})}
        study.add_trial(optuna.trial.create_trial(value=value, params={"lr": 1e-3}, distributions=space,
                                                  user_attrs=attrs))  # fmt: skip
    return study


def test_a_study_leaves_its_preset_only_for_a_trial_ahead_of_it_beyond_valid_noise(tmp_path, monkeypatch):
    """Trial 1 scores higher than the preset on valid but is ahead of it in only ~70 % of the paired resamples (a
    gain the valid images cannot tell from noise): the preset stays. Trial 2 is ahead in every resample: chosen,
    though trial 3 scored higher still on the full valid set, because trial 3's lead over the preset is noise."""
    from benchmarks.tuning import selection as tuning
    from benchmarks.tuning.settings import Budget
    from benchmarks.tuning.valid_resamples import ValidResampler

    noise = np.random.default_rng(0).normal(0, 0.01, 1000)
    resampled = {"run0": 0.80 + noise, "run1": 0.805 + noise + np.random.default_rng(1).normal(0, 0.01, 1000),
                 "run2": 0.83 + noise, "run3": 0.84 + noise + np.random.default_rng(2).normal(0, 0.05, 1000),
                 "gone": None}  # fmt: skip
    monkeypatch.setattr(ValidResampler, "trial_samples", lambda self, folder, trial: resampled[trial["run"]])

    chosen = tuning.choose(made_up_study({0: 0.80, 1: 0.805}, start=0).trials, tmp_path, Budget(16))
    assert (chosen.number, chosen.best) == (0, 1)
    assert "trial 1 scored higher on valid, but not in 95%" in tuning.choice_line(chosen)
    # how far trial 1 had to lead: the one-sided 95% normal quantile × the sd of its paired difference (~0.01)
    spread = np.std(resampled["run1"] - resampled["run0"])
    assert chosen.lead_needed == pytest.approx(1.6449 * spread, rel=1e-4) and 0.014 < chosen.lead_needed < 0.019
    assert f"it needed a lead of about {chosen.lead_needed:+.3f}" in tuning.choice_line(chosen)
    assert tuning.choice_record(chosen)["lead_needed"] == round(chosen.lead_needed, 4)
    chosen = tuning.choose(made_up_study({0: 0.80, 1: 0.805, 2: 0.83, 3: 0.84}, start=0).trials, tmp_path, Budget(16))
    assert (chosen.number, chosen.start, chosen.share_ahead, chosen.best) == (2, 0, 1.0, 3)
    assert tuning.choice_record(chosen) == {
        "rule": "the preset unless ahead of it in 95% of paired valid resamples", "start_trial": 0,
        "share_ahead_of_start": 1.0, "highest_valid_trial": 3,
    }  # fmt: skip
    assert tuning.choose(made_up_study({0: 0.80, 1: 0.805, 2: 0.83}, start=0).trials, tmp_path, Budget(2)).number == 0
    chosen = tuning.choose(made_up_study({0: 0.80, 1: 0.805}, start=None).trials, tmp_path, Budget(16))  # the probe
    assert chosen.number == 1 and "the highest valid macro AUC" in tuning.choice_line(chosen)
    resampled["run0"] = None  # the preset's run folder is gone: nothing to pair with, the highest valid wins
    assert tuning.choose(made_up_study({0: 0.80, 1: 0.805}, start=0).trials, tmp_path, Budget(16)).number == 1


def test_the_tuning_page_says_how_far_each_studys_best_trial_had_to_lead_the_preset(tmp_path, monkeypatch):
    """The best trial besides the preset: its valid lead and the lead the rule needed from it on these valid images;
    nothing where it kept no predictions or ended on the preset's own weights, nor for a study without a preset."""
    from benchmarks.tuning.records import StudyRecord, best_trial_lead, describe_lead
    from benchmarks.tuning.valid_resamples import ValidResampler

    rng = np.random.default_rng(0)
    noise = rng.normal(0, 0.01, 1000)
    resampled = {"run0": 0.80 + noise, "run1": 0.81 + noise + rng.normal(0, 0.02, 1000), "run2": 0.805 + noise,
                 "same": 0.80 + noise, "gone": None}  # fmt: skip
    monkeypatch.setattr(ValidResampler, "trial_samples", lambda self, folder, trial: resampled[trial["run"]])

    def study(*trials):
        record = {"budget": {"trials": 16}, "trials": [
            {"number": i, "state": "complete", "valid": valid, "run": run, **({"start": "quick"} if i == 0 else {})}
            for i, (valid, run) in enumerate(trials)]}  # fmt: skip
        return StudyRecord(tmp_path / "tuning" / "s" / "study.json", record)

    resampler = ValidResampler(1000)
    lead, needed = best_trial_lead(study((0.80, "run0"), (0.81, "run1"), (0.805, "run2")), resampler)
    assert lead == pytest.approx(0.01) and needed == pytest.approx(1.6449 * np.std(resampled["run1"] - noise), rel=1e-4)
    assert best_trial_lead(study((0.80, "run0"), (0.81, "gone")), resampler) == (pytest.approx(0.01), None)
    assert best_trial_lead(study((0.80, "run0"), (0.80, "same")), resampler) == (0.0, None)
    assert best_trial_lead(study((0.80, "run0")), resampler) is None  # nothing besides the preset
    assert describe_lead((0.01, 0.0234)) == "+0.010 / +0.023" and describe_lead(None) == "—"
    assert describe_lead((0.01, None)) == "+0.010 / — (ended on the preset's weights)"
    record = study((0.80, "run0"), (0.81, "run1")).record
    record["trials"][0].pop("start")  # the probe's studies have no preset trial
    assert best_trial_lead(StudyRecord(tmp_path / "s.json", record), resampler) is None


def test_expected_max_is_the_mean_best_of_every_k_subset():
    rng = np.random.default_rng(3)
    valid, test = rng.random(7), rng.random(7)
    valid_curve, test_curve = expected_max(valid, test)
    for k in range(1, 8):
        subsets = list(combinations(range(7), k))
        assert valid_curve[k - 1] == pytest.approx(np.mean([valid[list(s)].max() for s in subsets]))
        picks = [max(s, key=lambda i: valid[i]) for s in subsets]  # the trial valid would pick, then its test score
        assert test_curve[k - 1] == pytest.approx(np.mean(test[picks]))
    bands = expected_max_bands(valid, test, resamples=200)
    assert bands["k"] == list(range(1, 8))
    assert all(lo <= mid + 1e-9 for lo, mid in zip(bands["valid_low"], bands["valid"]))
    assert bands["valid"][-1] == pytest.approx(valid.max(), abs=1e-5)  # rounded to 5 places for the record
    assert bands["valid"][0] == pytest.approx(valid.mean(), abs=1e-5)


def curve(values: list[float], width: float = 0.01) -> dict:
    return {
        "k": list(range(1, len(values) + 1)),
        "valid": values,
        "valid_low": [v - width for v in values],
        "valid_high": [v + width for v in values],
    }


def test_the_verdict_says_when_the_winner_depends_on_the_budget():
    steady, late = curve([0.80, 0.82, 0.83, 0.835]), curve([0.70, 0.78, 0.86, 0.90])
    said = budget_verdict("fastai", steady, "Keras", late)
    assert said.startswith("fastai vs Keras: the winner depends on the budget")
    assert "fastai at 1-2 trials" in said and "Keras at 3-4 trials" in said
    assert budget_verdict("A", curve([0.9, 0.91]), "B", curve([0.5, 0.6])).startswith("A vs B: A ahead at every budget")
    assert "not distinguishable at any budget" in budget_verdict("A", curve([0.8, 0.8]), "B", curve([0.805, 0.805]))
    catching_up = budget_verdict("A", curve([0.80, 0.81, 0.82]), "B", curve([0.80, 0.84, 0.86]))
    assert catching_up == "A vs B: not distinguishable at 1 trial; B at 2-3 trials (no budget where the other leads)"
    crossing = budget_verdict("A", curve([0.90, 0.80, 0.80]), "B", curve([0.80, 0.80, 0.90]))
    assert crossing.endswith("A at 1 trial; not distinguishable at 2 trials; B at 3 trials")


def study_record(
    family: str, title: str, seed: int, values: list[tuple[float, float | None]], fingerprint: str = "sha256:x"
) -> dict:
    return {
        "name": f"s-{family}-{seed}",
        "family": family,
        "title": title,
        "settings": {"dataset_fingerprint": fingerprint, "family": family, "seed": seed, "space": []},
        "budget": {"trials": len(values), "seconds": None, "described": f"{len(values)} trials"},
        "spent": {"trials": len(values), "wall_s": 10.0, "trial_s": 9.9},
        "trials": [
            {"number": i, "state": "complete" if test is not None else "pruned", "params": {"lr": 0.01}, "valid": v}
            | ({"test": test} if test is not None else {})
            | ({"start": "quick"} if i == 0 else {})  # trial 0: the preset, kept (chosen)
            for i, (v, test) in enumerate(values)
        ],
        "chosen": 0,
        "promoted": None,
    }


def write_studies(results: Path, fingerprint: str = "sha256:x") -> None:
    for record in (
        study_record("fastai", "fastai", 0, [(0.80, 0.79), (0.85, 0.84), (0.70, None)], fingerprint),
        study_record("fastai", "fastai", 1, [(0.82, 0.80), (0.86, 0.83), (0.75, 0.74)], fingerprint),
        study_record("keras", "Keras", 0, [(0.60, 0.61), (0.65, 0.62), (0.62, 0.60)], fingerprint),
    ):
        folder = results / "tuning" / record["name"]
        folder.mkdir(parents=True)
        if record["settings"]["seed"] == 1:  # made with --soup: the chosen trial 0 averaged with trial 1
            record["soup"] = {"for": [0, 1, 2], "run": "fastai-soup", "trials": [0, 1]}
        (folder / "study.json").write_text(json.dumps(record))
    (results / "tuning" / "damaged").mkdir()
    (results / "tuning" / "damaged" / "study.json").write_text("{not json")


def test_seeds_pool_into_one_curve_per_family_and_a_damaged_record_is_skipped(tmp_path):
    write_studies(tmp_path)
    studies, skipped = read_studies(tmp_path, "sha256:x")
    assert len(studies) == 3 and len(skipped) == 1 and "unreadable" in skipped[0]
    by_family = {c.family: c for c in family_curves(studies)}
    assert by_family["fastai"].trials == 6 and by_family["fastai"].complete == 5  # a pruned trial: valid only
    assert len(by_family["fastai"].curves["valid"]) == 6 and len(by_family["fastai"].curves["test"]) == 5
    html, figures = report_section(tmp_path, "sha256:x")
    assert "<h2>Tuning</h2>" in html and "fastai ahead at every budget from 1 to 3 trials" in html
    assert [title for title, _ in figures] == ["Tuning"]
    assert read_studies(tmp_path, "sha256:other")[0] == []
    # a Keras study over another space: a second Keras curve, titled by its space as its tuned run is named
    record = study_record("keras", "Keras", 0, [(0.70, 0.69), (0.72, 0.70)], "sha256:x")
    record["settings"]["space"] = ["--lr-mult 1 | 10 | 100"]
    (tmp_path / "tuning" / "wider").mkdir()
    (tmp_path / "tuning" / "wider" / "study.json").write_text(json.dumps(record))
    studies = read_studies(tmp_path, "sha256:x")[0]
    curves = family_curves(studies)
    assert sorted(c.title for c in curves) == ["Keras (space 95a434)", "Keras (space e3b0c4)", "fastai"]  # digests
    titles = {study.path.parent.name: title for title, study in titled_studies(studies, curves)}
    assert titles["wider"] == "Keras (space 95a434)"  # the studies table and the dashboard name it as its curve


def test_the_dashboard_tuning_page_shows_the_curves_the_verdict_and_every_trial(tiny_scenes, tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from benchmarks.data.dataset import load_dataset
    from dashboard.logic import datasets, leaderboard

    write_studies(tmp_path, load_dataset(tiny_scenes).fingerprint)
    monkeypatch.setattr(datasets, "DEFAULT_DATA_ROOT", tiny_scenes.parent)
    monkeypatch.setattr(leaderboard, "DEFAULT_RESULTS", tmp_path)
    app = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "streamlit_app.py"), default_timeout=60)
    app.session_state["page"] = "Tuning"
    app.run()
    assert not app.exception, app.exception
    assert any("fastai ahead at every budget from 1 to 3 trials" in m.value for m in app.markdown)
    assert [w.value for w in app.warning] == [next(iter(read_studies(tmp_path)[1]))]  # the damaged record, named
    assert len(app.expander) == 3 and len(app.dataframe) == 3
    assert "← chosen" in app.dataframe[0].value.to_string()
    assert sum("the lead the preset rule needed from it" in c.value for c in app.caption) == 3  # one per study
    assert app.dataframe[0].value["start"].tolist() == ["preset", "", ""]
    souped = next(d.value for d in app.dataframe if "in the soup" in d.value.to_string())
    assert souped["state"].tolist()[:2] == ["complete ← chosen · in the soup", "complete · in the soup"]


def test_the_tuning_page_lists_every_study_and_says_when_the_preset_was_kept(tiny_scenes, tmp_path):
    from benchmarks.data.dataset import load_dataset
    from benchmarks.tuning.page import render_tuning_page

    dataset = load_dataset(tiny_scenes)
    write_studies(tmp_path, dataset.fingerprint)
    page = render_tuning_page(tmp_path, dataset, "python -m benchmarks tuning-curve D --markdown P")
    sizes = dataset.items["split"].value_counts()
    assert page.startswith(f"# Tuning on {dataset.name} ({sizes['train']} train / {sizes['valid']} valid / ")
    rows = [line for line in page.splitlines() if "| 3 trials |" in line]  # the studies table
    assert len(rows) == 3 and all("| 0 (the preset) (0." in row for row in rows), rows
    assert sum("; soup of trials 0, 1 |" in row for row in rows) == 1
    assert "No tuned run beside an untuned one on this dataset yet." in page


def test_tuning_curve_prints_each_family_and_the_verdicts(tmp_path, capsys):
    write_studies(tmp_path)
    assert cli(["tuning-curve", "--results", str(tmp_path), "--html", str(tmp_path / "curve.html")]) == 0
    out = capsys.readouterr().out
    assert "fastai: 6 finished trials (5 complete) from seeds [0, 1]" in out and "Keras:" in out
    assert (
        "- fastai vs Keras: fastai ahead at every budget" in out and (tmp_path / "curve.html").stat().st_size > 100_000
    )


def test_every_tunable_family_declares_knobs_its_own_command_accepts():
    assert {f.kind for f in tunable_families()} == {"fastai", "keras", "linear_probe"}
    for family in tunable_families():
        command = Cell(Path("d"), family.kind, family.grid, None, None).argv(Path("r"))
        help_text = subprocess.run(
            [sys.executable, "-m", *command[: command.index("--dataset")], "--help"], capture_output=True, text=True
        ).stdout
        for knob in family.search_space:
            value = knob.low if knob.kind != "choice" else knob.choices[-1]
            fixed = parse_fixed(family.search_space, [f"{knob.option}={value}"], family.kind)
            argv = Cell(Path("d"), family.kind, family.grid, None, None, fixed).argv(Path("r"))
            assert f"--{knob.option}" in argv and f"--{knob.option}" in help_text, (family.kind, knob.option)


def test_a_grid_spec_with_a_tune_block_tunes_every_tunable_model_with_the_same_budget(tiny_scenes, tmp_path):
    spec = tmp_path / "tuned.toml"
    spec.write_text(
        f'name = "tuned"\nseeds = [0, 1]\n\n[tune]\ntrials = 4\nsampler = "random"\nfolds = 3\n\n[[datasets]]\npath = '
        f'"{tiny_scenes}"\n\n[[models]]\nfamily = "fastai"\noptions = {{img-size = 64, epochs = 1}}\n\n'
        '[[models]]\nfamily = "linear_probe"\n\n[[models]]\nfamily = "prior"\n'
    )
    read = read_spec(spec)
    argvs = {cell.key: cell.argv(tmp_path / "results") for cell in read.cells}
    tuned = [argv for key, argv in argvs.items() if key.endswith(("tuned/seed=0", "tuned/seed=1"))]
    assert len(tuned) == 4  # fastai and the probe, two seeds each; the prior has nothing to tune
    for argv in tuned:
        assert argv[:2] == ["benchmarks", "tune"] and argv[argv.index("--trials") + 1] == "4"
        assert argv[argv.index("--sampler") + 1] == "random"
        assert argv[argv.index("--folds") + 1] == "3" and "--group-folds" not in argv
    spec.write_text(spec.read_text().replace("folds = 3", "folds = 3\ngroup-folds = true"))
    assert all("--group-folds" in c.argv(tmp_path) for c in read_spec(spec).cells if "tune" in c.argv(tmp_path))
    spec.write_text(spec.read_text().replace("folds = 3\n", "folds = 1\n"))
    with pytest.raises(BenchmarkError, match=r"\[tune\] group-folds must be true or false, and true only with folds"):
        read_spec(spec)
    spec.write_text(spec.read_text().replace("folds = 1\ngroup-folds = true", "soup = true"))
    souped = {c.key: c.argv(tmp_path) for c in read_spec(spec).cells if "tune" in c.argv(tmp_path)}
    assert all(("--soup" in argv) == ("fastai" in key) for key, argv in souped.items())  # the probe: nothing to soup
    spec.write_text(spec.read_text().replace("soup = true", "folds = 3"))
    fastai = next(argv for argv in tuned if "fastai" in argv)
    assert fastai[fastai.index("--img-size") + 1] == "64" and fastai[fastai.index("--fix") + 1] == "epochs=1"
    spec.write_text(spec.read_text().replace("epochs = 1", "epochs = 1, bs = 8"))
    with pytest.raises(BenchmarkError, match="option 'bs' is not one of fastai's knobs"):
        read_spec(spec)
    spec.write_text(spec.read_text().replace("trials = 4", "trials = 0"))
    with pytest.raises(BenchmarkError, match=r"\[tune\] trials must be a positive integer"):
        read_spec(spec)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--family", "prior"], "--family prior: cannot be tuned; choose one of: linear_probe, fastai, keras"),
        (["--family", "fastai", "--fix", "momentum=0.9"], "--fix 'momentum=0.9': give NAME=VALUE with NAME one of"),
        (["--family", "fastai", "--fix", "epochs=many"], "--fix 'epochs=many': epochs takes a number"),
        (["--family", "fastai", "--fix", "item-tfm=crop"], "--fix 'item-tfm=crop': item-tfm is one of resize, rrc"),
        (["--family", "linear_probe", "--preset", "quick"], "--preset quick: linear_probe has no presets"),
        (["--family", "keras", "--preset", "fast"], "--preset fast: keras has the presets full, quick, small"),
        (["--family", "fastai", "--trials", "0"], "--trials 0: the budget needs at least one trial"),
        (["--family", "linear_probe", "--soup"], "--soup: linear_probe has no fine-tuned weights to average"),
        (["--family", "keras", "--soup", "--folds", "3"], "--soup: a cross-validated study's trials are fold models"),
        ([], "tune needs a DATASET folder and --family"),
    ],
)
def test_bad_tune_options_are_refused_in_one_line(tiny_scenes, tmp_path, capsys, args, message):
    refused(capsys, ["tune", str(tiny_scenes), "--results", str(tmp_path), *args], message)
    assert not (tmp_path / "tuning").exists()


def test_list_spaces_prints_every_tunable_knob(capsys):
    assert cli(["tune", "--list-spaces"]) == 0
    out = capsys.readouterr().out
    assert "fastai:" in out and "keras:" in out and "--fine-tune-lr 1e-05..0.01 (log)" in out and "--c 0.0001" in out


def test_tune_help_explains_budgets_and_the_curve(capsys):
    with pytest.raises(SystemExit):
        cli(["tune", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for said in ("Budget: --trials N finished trials", "--budget-seconds", "Selection reads valid only", "resumes",
                 "expected to reach with k trials"):  # fmt: skip
        assert said in text, said
