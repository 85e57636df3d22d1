"""Robust AUC everywhere a user looks: the leaderboard column with its CI, `compare` on the sets two runs share, the
HTML report's section, `make robustness`'s choice of runs and runtime, and the dashboard's pages."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from benchmarks.cli import main
from benchmarks.data.dataset import load_dataset
from benchmarks.errors import RunError
from benchmarks.evaluation.compare import compare_runs
from benchmarks.evaluation.evaluate import evaluate_run
from benchmarks.evaluation.groups import group_runs, summarize
from benchmarks.evaluation.leaderboard import format_table, group_leaderboard, leaderboard, table_notes
from benchmarks.evaluation.results import load_run
from benchmarks.evaluation.robustness import mean_under_corruption, read_robustness
from benchmarks.models.baselines import run_linear_probe, run_prior
from benchmarks.robustness.scoring import score_run
from benchmarks.robustness.table import collect, pairwise
from tests.conftest import refused

APP = str(Path(__file__).resolve().parents[1] / "streamlit_app.py")


@pytest.fixture(scope="module")
def scored(tiny_scenes, tmp_path_factory):
    """Two probes (64 and 96 px: two models) and the prior; the 64-px probe scored under two corruptions, the
    96-px one under one of them."""
    dataset = load_dataset(tiny_scenes)
    results = tmp_path_factory.mktemp("robust-views")
    small, large = run_linear_probe(dataset, results, img_size=64), run_linear_probe(dataset, results, img_size=96)
    prior = run_prior(dataset, results)
    for run in (small, large, prior):
        evaluate_run(run.path)
    score_run(small, ["contrast", "gaussian_noise"], [1])
    score_run(large, ["contrast"], [1])
    return results, load_run(small.path), load_run(large.path), load_run(prior.path)


def test_leaderboard_shows_robust_auc_with_its_ci_and_says_what_it_averages(scored, tiny_scenes):
    results, small, large, prior = scored
    table = leaderboard(results, load_dataset(tiny_scenes)).set_index("run")
    record = read_robustness(small)
    assert table.loc[small.run_id, "robust_auc"] == pytest.approx(record["summary"]["mean_corrupted"]["value"])
    assert table.loc[small.run_id, "robust_auc_ci"] == record["summary"]["mean_corrupted"]["ci"]
    assert table.loc[large.run_id, "robust_sets"] == 1 and table.loc[small.run_id, "robust_sets"] == 2
    assert table.loc[prior.run_id, "robust_auc"] is None or np.isnan(table.loc[prior.run_id, "robust_auc"])
    text = format_table(table.reset_index())
    assert "robust_auc" in text and "1/2 corruption × severity sets" in text and "on the sets they share" in text
    unscored = table.reset_index().assign(robust_auc=None)
    assert any("no run here scored under corruption yet" in note for note in table_notes(unscored))
    grouped = group_leaderboard(results, load_dataset(tiny_scenes)).set_index("model")
    probe_model = next(name for name in grouped.index if "linear_probe" in name and "96" not in name)
    assert grouped.loc[probe_model, "robust_auc"] is not None


def test_a_damaged_robustness_record_is_a_note_not_a_crash(scored, tiny_scenes, tmp_path):
    results = tmp_path / "results"
    shutil.copytree(scored[0], results)
    (results / scored[1].run_id / "robustness.npz").write_bytes(b"not a zip")
    table = leaderboard(results, load_dataset(tiny_scenes))
    row = table.set_index("run").loc[scored[1].run_id]
    assert row["macro_auc"] is not None and (row["robust_auc"] is None or np.isnan(row["robust_auc"]))
    notes = table_notes(table)
    assert any(note.startswith("robust AUC —:") and "damaged" in note and "--force" in note for note in notes)
    assert compare_runs(results / scored[1].run_id, results / scored[2].run_id)["metrics"].keys() >= {"macro_roc_auc"}


def test_compare_pairs_robust_auc_on_the_sets_both_runs_were_scored_on(scored):
    results, small, large, prior = scored
    entry = compare_runs(small.path, large.path)["metrics"]["robust_auc"]
    both = {"contrast-1"}
    assert entry["sets"] == 1
    assert entry["a"] == pytest.approx(mean_under_corruption(read_robustness(small), both)[0])
    assert entry["b"] == pytest.approx(read_robustness(large)["summary"]["mean_corrupted"]["value"])
    rows = collect([small, large])["rows"]
    same = pairwise(rows)[0]  # the robustness command's own pairing: the same difference and interval
    assert entry["difference"] == pytest.approx(same["difference"]) and entry["ci"] == pytest.approx(same["ci"])
    assert "robust_auc" not in compare_runs(small.path, prior.path)["metrics"]  # the prior has no model to corrupt
    summary = summarize(next(g for g in group_runs([small]) if g.runs))
    assert summary["robust_auc"]["mean"] == pytest.approx(read_robustness(small)["summary"]["mean_corrupted"]["value"])


def test_compare_prints_how_many_sets_robust_auc_averages(scored, capsys):
    _, small, large, _ = scored
    assert main(["compare", str(small.path), str(large.path)]) == 0
    assert "robust_auc (mean over 1 corrupted test sets)" in capsys.readouterr().out


def test_the_report_has_a_robustness_section_and_its_heatmap(scored, tiny_scenes):
    from benchmarks.evaluation.report import build_report
    from benchmarks.report_sections import upper_sections

    results = scored[0]
    dataset = load_dataset(tiny_scenes)
    sections, figures = upper_sections(results, dataset)
    page = build_report(dataset, results, sections, figures)
    assert "<h2>Robustness to common corruptions</h2>" in page and "<h2>Robustness figures</h2>" in page
    assert "no row: prior" in page and "robust_auc" in page  # the leaderboard's column, too
    assert "How many images per label?" not in page  # no run on a subset of this dataset: no empty section


def test_models_on_scores_the_newest_run_of_every_model_and_fastest_falls_back_to_native(
    scored, tiny_scenes, tmp_path, monkeypatch, capsys, caplog
):
    from benchmarks.serving import predictors

    results = tmp_path / "results"
    shutil.copytree(scored[0], results)
    real = predictors.load_predictor

    def no_openvino(run, runtime=None):
        if runtime == "openvino":
            raise RunError(f"{run.path if hasattr(run, 'path') else run}: OpenVINO export failed (a stand-in)")
        return real(run, runtime)

    monkeypatch.setattr(predictors, "load_predictor", no_openvino)
    argv = ["robustness", "--models-on", str(tiny_scenes), "--results", str(results), "--corruptions", "fog"]
    with caplog.at_level("WARNING", logger="imgbench.serving"):
        assert main([*argv, "--severities", "1", "--runtime", "fastest", "--force"]) == 0  # force: choose afresh
    assert sum("served natively" in r.getMessage() for r in caplog.records) == 2  # the two probes, not the prior
    assert "no row: prior" in capsys.readouterr().out
    for run_id in (scored[1].run_id, scored[2].run_id):
        record = read_robustness(load_run(results / run_id))
        assert record["runtime"] == "native" and "fog-1" in record["samples"]
    refused(capsys, ["robustness", "--corruptions", "fog"], "--models-on DATASET")


@pytest.mark.parametrize("page", ["Robustness", "Images needed"])
def test_the_robustness_and_data_pages_render(scored, tiny_scenes, monkeypatch, page):
    from streamlit.testing.v1 import AppTest

    from dashboard.logic import datasets
    from dashboard.logic import leaderboard as leaderboard_logic

    monkeypatch.setattr(datasets, "DEFAULT_DATA_ROOT", tiny_scenes.parent)
    monkeypatch.setattr(leaderboard_logic, "DEFAULT_RESULTS", scored[0])
    app = AppTest.from_file(APP, default_timeout=120)
    app.session_state["page"] = page
    app.run()
    assert not app.exception and not app.error, (app.exception, [e.value for e in app.error])
    if page == "Robustness":
        assert any("is better" in m.value or "not distinguishable" in m.value for m in app.markdown)
        assert any("no row: prior" in c.value for c in app.caption)
        app.radio[0].set_value("1").run()
        assert not app.exception
    else:
        assert any("No run on a subset of this dataset" in i.value for i in app.info)
