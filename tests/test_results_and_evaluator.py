import json

import numpy as np
import pytest

from benchmarks.atomic import atomic_write, atomic_write_json
from benchmarks.data.dataset import load_dataset
from benchmarks.errors import BenchmarkError, RunError
from benchmarks.evaluation.compare import compare_runs
from benchmarks.evaluation.evaluate import evaluate_run
from benchmarks.evaluation.leaderboard import leaderboard
from benchmarks.evaluation.results import create_run, load_run, recording
from tests.conftest import make_dataset


def _rows(n_per_split=12):
    rows = []
    for split in ("train", "valid", "test"):
        for i in range(n_per_split):
            rows.append((f"images/{split}{i}.png", ["a", "b", "a b", ""][i % 4], split))
    return rows


@pytest.fixture
def dataset(tmp_path):
    return load_dataset(make_dataset(tmp_path / "ds", _rows(), ["a", "b"]))


def _run_with_scores(results, dataset, scores_fn, kind="prior"):
    run = create_run(results, kind=kind, dataset=dataset, params={})
    rows = dataset.rows(["valid", "test"])
    run.write_predictions(list(rows["image"]), list(rows["split"]), scores_fn(dataset.targets(["valid", "test"])))
    run.finish()
    return run


def test_run_folder_has_run_json_predictions_and_metrics(tmp_path, dataset):
    run = _run_with_scores(tmp_path / "results", dataset, lambda t: np.clip(t * 0.6 + 0.2, 0, 1))
    metrics = evaluate_run(run.path)
    info = json.loads((run.path / "run.json").read_text())
    assert info["status"] == "done" and info["dataset"]["fingerprint"] == dataset.fingerprint
    assert info["environment"]["python"]
    assert metrics["overall"]["macro_roc_auc"] == 1.0
    assert set(metrics["per_label"]) == {"a", "b"} and "curves" in metrics
    assert (run.path / "metrics.json").is_file()
    overall = metrics["overall"]  # calibration, with CIs like every macro metric
    assert 0 <= overall["macro_ece"] <= 1 and 0 <= overall["brier"] <= 1
    assert len(overall["macro_ece_ci"]) == len(overall["brier_ci"]) == 2
    assert (
        set(metrics["calibration"]["reliability"]) == {"a", "b"} and "equal-mass" in metrics["calibration"]["binning"]
    )
    assert all("ece" in entry and "brier" in entry for entry in metrics["per_label"].values())


def test_threshold_is_tuned_on_valid_not_test(tmp_path, dataset):
    splits = dataset.rows(["valid", "test"])["split"].to_numpy()

    def scores(t):
        # valid positives score 0.9, test positives 0.35; negatives 0.3 everywhere
        s = np.where(t == 1, 0.9, 0.3)
        s[(splits == "test")[:, None] & (t == 1)] = 0.35
        return s

    run = _run_with_scores(tmp_path / "results", dataset, scores)
    metrics = evaluate_run(run.path)
    assert metrics["thresholds"]["a"] == pytest.approx(0.9)  # valid's best cut, not test's 0.35
    assert metrics["per_label"]["a"]["recall"] == 0.0  # so on test nothing passes it
    assert metrics["overall"]["macro_roc_auc"] == 1.0  # while the ranking is still perfect


def test_run_without_predictions_and_with_wrong_labels_are_refused(tmp_path, dataset):
    run = create_run(tmp_path / "results", kind="prior", dataset=dataset, params={})
    with pytest.raises(RunError, match="predictions.csv: missing"):
        evaluate_run(run.path)
    (run.path / "predictions.csv").write_text("image,split,a,zebra\nimages/valid0.png,valid,0.1,0.2\n")
    with pytest.raises(RunError, match=r"label columns do not match the dataset's labels \(missing \['b'\]\)"):
        evaluate_run(run.path)
    rows = dataset.rows(["valid"])
    text = "image,split,a,b\n" + "".join(f"{i},valid,0.5,0.5\n" for i in rows["image"])
    (run.path / "predictions.csv").write_text(text)
    with pytest.raises(RunError, match="test image\\(s\\) have no prediction"):
        evaluate_run(run.path)


def test_run_on_a_changed_dataset_is_refused(tmp_path, dataset):
    run = _run_with_scores(tmp_path / "results", dataset, lambda t: t * 0.5 + 0.25)
    (dataset.root / "images" / "test0.png").write_bytes((dataset.root / "images" / "test0.png").read_bytes() + b"x")
    with pytest.raises(RunError, match="fingerprint"):
        evaluate_run(run.path)


def test_not_a_run_folder(tmp_path):
    with pytest.raises(RunError, match="run.json: missing"):
        load_run(tmp_path)


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "metrics.json"
    atomic_write_json(target, {"ok": 1})

    def crash(tmp):
        tmp.write_text('{"half": ')
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(target, crash)
    assert json.loads(target.read_text()) == {"ok": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_atomic_write_flushes_the_file_before_the_rename_and_the_folder_after(tmp_path, monkeypatch):
    import os

    from benchmarks import atomic

    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(
        atomic.os, "fsync", lambda fd: events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}"))) or real_fsync(fd)
    )
    monkeypatch.setattr(atomic.os, "replace", lambda a, b: events.append(("replace", str(b))) or real_replace(a, b))
    atomic_write_json(tmp_path / "run.json", {"ok": 1})
    kinds = [kind for kind, _ in events]
    assert kinds == ["fsync", "replace", "fsync"]
    assert events[0][1].startswith(str(tmp_path / ".run.json.")) and events[2][1] == str(tmp_path)


def test_crashed_run_is_marked_failed_and_ctrl_c_interrupted(tmp_path, dataset):
    run = create_run(tmp_path / "r", kind="prior", dataset=dataset, params={})
    with pytest.raises(ValueError):
        with recording(run):
            raise ValueError("boom")
    assert load_run(run.path).info["status"] == "failed" and "boom" in load_run(run.path).info["error"]
    other = create_run(tmp_path / "r", kind="prior", dataset=dataset, params={})
    with pytest.raises(KeyboardInterrupt):
        with recording(other):
            raise KeyboardInterrupt
    assert load_run(other.path).info["status"] == "interrupted"


def test_scores_outside_zero_one_are_refused(tmp_path, dataset):
    run = create_run(tmp_path / "r", kind="prior", dataset=dataset, params={})
    rows = dataset.rows(["valid", "test"])
    with pytest.raises(RunError, match=r"probabilities in \[0, 1\]"):
        run.write_predictions(list(rows["image"]), list(rows["split"]), np.full((len(rows), 2), 1.5))


def test_compare_says_which_run_is_better(tmp_path, dataset):
    rng = np.random.default_rng(0)
    good = _run_with_scores(tmp_path / "r", dataset, lambda t: np.clip(t * 0.7 + rng.random(t.shape) * 0.3, 0, 1))
    noise = _run_with_scores(tmp_path / "r", dataset, lambda t: rng.random(t.shape))
    result = compare_runs(good.path, noise.path)
    assert result["metrics"]["macro_roc_auc"]["verdict"] == f"{good.run_id} is better"
    same = compare_runs(good.path, good.path)
    assert same["metrics"]["map"]["verdict"] == "no significant difference"
    assert result["metrics"]["brier"]["verdict"] == f"{good.run_id} is better"  # lower Brier: the better-calibrated


def test_leaderboard_ranks_runs_and_refuses_mixed_datasets(tmp_path, dataset):
    results = tmp_path / "r"
    _run_with_scores(results, dataset, lambda t: np.full(t.shape, 0.5), kind="prior")
    best = _run_with_scores(results, dataset, lambda t: np.clip(t * 0.8 + 0.1, 0, 1), kind="linear_probe")
    table = leaderboard(results, dataset)
    assert table["run"].tolist()[0] == best.run_id and table["macro_auc"].tolist()[0] == 1.0
    assert {"ece", "ece_ci", "brier", "brier_ci"} <= set(table.columns) and table["brier"].notna().all()
    other = load_dataset(make_dataset(tmp_path / "other", _rows(8), ["a", "b"]))
    _run_with_scores(results, other, lambda t: np.full(t.shape, 0.5))
    with pytest.raises(BenchmarkError, match="2 different datasets"):
        leaderboard(results)
    assert len(leaderboard(results, other)) == 1


def test_damaged_metrics_are_derived_in_memory_or_named_and_damaged_predictions_stay_on_the_board(tmp_path, dataset):
    from benchmarks.evaluation.evaluate import metrics_of
    from benchmarks.evaluation.results import read_metrics

    results = tmp_path / "r"
    healthy = _run_with_scores(results, dataset, lambda t: np.clip(t * 0.8 + 0.1, 0, 1))
    evaluate_run(healthy.path)
    (healthy.path / "metrics.json").write_text('{"overall": {}}')
    with pytest.raises(
        RunError, match="metrics.json: damaged \\(no per_label, thresholds, curves\\).*benchmarks evaluate"
    ):
        read_metrics(load_run(healthy.path))
    assert metrics_of(load_run(healthy.path))["overall"]["macro_roc_auc"] == 1.0  # derived data, in memory
    assert (healthy.path / "metrics.json").read_text() == '{"overall": {}}'  # a reader never writes
    broken = _run_with_scores(results, dataset, lambda t: np.full(t.shape, 0.5))
    (broken.path / "predictions.csv").write_text("image,split\n")
    table = leaderboard(results, dataset).set_index("run")
    assert table.loc[healthy.run_id, "macro_auc"] == 1.0
    assert np.isnan(table.loc[broken.run_id, "macro_auc"]) and "predictions.csv" in table.loc[broken.run_id, "status"]


def test_a_running_run_whose_process_is_gone_shows_as_crashed(tmp_path, dataset):
    import subprocess
    import sys

    from benchmarks.evaluation.results import create_run

    run = create_run(tmp_path, kind="prior", dataset=dataset, params={})
    assert run.shown_status == "running"  # this process wrote it and is alive
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    info = json.loads((run.path / "run.json").read_text())
    info["process"]["pid"] = child.pid  # as if a process that has since been killed -9 had written it
    (run.path / "run.json").write_text(json.dumps(info))
    assert load_run(run.path).shown_status == "crashed"
    info["process"]["host"] = "another-machine"
    info["heartbeat"] = "2020-01-01T00:00:00+00:00"
    (run.path / "run.json").write_text(json.dumps(info))
    assert load_run(run.path).shown_status == "stale"


def test_report_colours_do_not_depend_on_the_host_plotly_theme(tmp_path, dataset, monkeypatch):
    import plotly.graph_objects as go
    import plotly.io as pio

    from benchmarks.evaluation.report import build_report
    from benchmarks.models.baselines import run_prior

    run_prior(dataset, tmp_path)
    pio.templates["host"] = go.layout.Template(layout={"colorway": ["#000001"]})
    monkeypatch.setattr(pio.templates, "default", "host")  # what Streamlit does inside the dashboard
    assert "#000001" not in build_report(dataset, tmp_path)


def test_a_run_that_trained_on_valid_is_flagged_wherever_it_appears(tmp_path, dataset):
    clean = _run_with_scores(tmp_path, dataset, lambda t: np.clip(t * 0.8 + 0.1, 0, 1))
    tainted = _run_with_scores(tmp_path, dataset, lambda t: np.clip(t * 0.8 + 0.1, 0, 1))
    tainted.update(params={**tainted.params, "trained_on_splits": ["train", "valid"]})
    assert evaluate_run(clean.path)["threshold_contamination"] is None
    note = evaluate_run(tainted.path)["threshold_contamination"]
    assert "tuned on images it trained on" in note
    status = leaderboard(tmp_path, dataset).set_index("run")["status"]
    assert (
        status[clean.run_id] == "done"
        and "WARNING: thresholds tuned on its own training images" in status[tainted.run_id]
    )


def test_an_update_that_would_damage_run_json_is_refused_and_nothing_is_written(tmp_path, dataset):
    run = create_run(tmp_path, kind="prior", dataset=dataset, params={})
    before = (run.path / "run.json").read_text()
    with pytest.raises(RunError, match=r"run.json: field 'progress.phase'"):
        run.update(progress={"phase": "thawed", "epoch": 0})
    with pytest.raises(RunError, match=r"run.json: field 'status'"):
        run.update(status="alive")
    assert (run.path / "run.json").read_text() == before and load_run(run.path).info == run.info
