"""MLflow export: every finished run logged once (params, history as steps, metrics with CI bounds, tags, artifacts),
read back with MLflow's own client; exporting again duplicates nothing; a changed run replaces its MLflow run."""

from __future__ import annotations

import json
import shutil

import pytest

from benchmarks.cli import main as cli
from benchmarks.evaluation.results import load_run
from benchmarks.evaluation.tracking import RUN_ID_TAG, export_runs
from tests.conftest import refused


@pytest.fixture
def copied_results(tmp_path, fastai_run, keras_run):
    """The session's fastai and Keras runs copied into a folder of their own (the export must not see the others)."""
    results = tmp_path / "results"
    for run in (fastai_run, keras_run):
        shutil.copytree(run.path, results / run.path.name, ignore=shutil.ignore_patterns("checkpoints"))
    return results


def active_runs(uri: str) -> dict:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    experiments = [e.experiment_id for e in client.search_experiments()]
    return {run.data.tags[RUN_ID_TAG]: run for run in client.search_runs(experiments)}


def test_every_run_is_logged_once_with_its_settings_history_metrics_and_files(copied_results, fastai_run, tmp_path):
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    summary = export_runs(copied_results, uri, with_models=True)
    assert sorted(summary.exported) == sorted(p.parent.name for p in copied_results.glob("*/run.json"))
    assert len(summary.exported) == 2
    runs = active_runs(uri)
    logged = runs[fastai_run.run_id]
    metrics = json.loads((fastai_run.path / "metrics.json").read_text())
    assert logged.data.metrics["macro_roc_auc"] == pytest.approx(metrics["overall"]["macro_roc_auc"])
    low, high = metrics["overall"]["macro_roc_auc_ci"]
    assert (logged.data.metrics["macro_roc_auc_ci_low"], logged.data.metrics["macro_roc_auc_ci_high"]) == (
        pytest.approx(low),
        pytest.approx(high),
    )
    assert logged.data.metrics["valid_macro_roc_auc"] == pytest.approx(metrics["valid"]["macro_roc_auc"])
    assert logged.data.params["lr"] == json.dumps(fastai_run.params["lr"]) and logged.data.params["kind"] == "fastai"
    assert logged.data.tags["dataset_fingerprint"] == fastai_run.fingerprint and logged.data.tags["seed"] == "0"
    client = MlflowClient(tracking_uri=uri)
    history = client.get_metric_history(logged.info.run_id, "epoch/valid_loss")
    assert [m.step for m in history] == list(range(len(fastai_run.info["history"])))
    assert [m.value for m in history] == pytest.approx([row["valid_loss"] for row in fastai_run.info["history"]])
    files = {a.path for a in client.list_artifacts(logged.info.run_id)}
    assert {"run.json", "metrics.json", "predictions.csv", "model"} <= files
    assert logged.info.status == "FINISHED" and logged.info.run_name == fastai_run.run_id


def test_exporting_again_duplicates_nothing_and_a_changed_run_replaces_its_mlflow_run(copied_results, tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    first = export_runs(copied_results, uri)
    before = active_runs(uri)
    again = export_runs(copied_results, uri)
    assert again.exported == [] and sorted(again.unchanged) == sorted(first.exported)
    assert {k: r.info.run_id for k, r in active_runs(uri).items()} == {k: r.info.run_id for k, r in before.items()}
    changed = load_run(copied_results / first.exported[0])
    changed.update(note="re-evaluated")  # run.json changed since the export
    third = export_runs(copied_results, uri)
    assert third.replaced == [changed.run_id] and len(third.unchanged) == len(first.exported) - 1
    after = active_runs(uri)
    assert len(after) == len(before) and after[changed.run_id].info.run_id != before[changed.run_id].info.run_id


def test_unfinished_runs_are_skipped_with_their_reason_and_a_bad_store_is_one_line(copied_results, tmp_path, capsys):
    unfinished = load_run(next(copied_results.iterdir()))
    unfinished.update(status="failed", error="boom")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert cli(["export-mlflow", "--results", str(copied_results), "--tracking-uri", uri]) == 0
    out = capsys.readouterr().out
    assert f"skipped {unfinished.run_id}: failed, not finished" in out and "1 exported" in out
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    bad = f"sqlite:///{blocked}/mlflow.db"  # MLflow makes missing folders; under a file it cannot
    refused(
        capsys,
        ["export-mlflow", "--results", str(copied_results), "--tracking-uri", bad],
        f"--tracking-uri {bad}: MLflow cannot open it",
    )
