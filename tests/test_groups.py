"""Seed groups: runs of one model pooled over seeds, CIs over seeds × test images, P(A > B), honest verdicts."""

import numpy as np
import pytest

from benchmarks.cli import main as cli
from benchmarks.data.dataset import load_dataset
from benchmarks.evaluation import evaluate as evaluate_module
from benchmarks.evaluation.evaluate import evaluate_run
from benchmarks.evaluation.groups import (
    bootstrap_samples,
    compare_groups,
    find_group,
    group_runs,
    label_samples,
    probability_of_improvement,
    summarize,
)
from benchmarks.evaluation.label_verdicts import best_per_label, bootstrap_p_value, compare_per_label
from benchmarks.evaluation.leaderboard import format_table, group_leaderboard
from benchmarks.evaluation.metrics import macro_of
from benchmarks.evaluation.results import create_run, load_run
from tests.conftest import make_dataset

RESAMPLES = 100  # below the bootstrap's parallel threshold: fast


@pytest.fixture(autouse=True)
def fewer_resamples(monkeypatch):
    monkeypatch.setattr(evaluate_module, "BOOTSTRAP_RESAMPLES", RESAMPLES)


@pytest.fixture
def dataset(tmp_path):
    rows = [
        (f"images/{split}{i}.png", ["a", "b", "a b", ""][i % 4], split)
        for split in ("train", "valid", "test")
        for i in range(40)
    ]
    return load_dataset(make_dataset(tmp_path / "ds", rows, ["a", "b"]))


def _run(results, dataset, kind, seed, skill, **params):
    """A run whose scores follow the targets with weight ``skill`` (plus seed-dependent noise)."""
    rng = np.random.default_rng(seed + (0 if kind == "fastai" else 100))
    run = create_run(results, kind=kind, dataset=dataset, backbone="lite0", params={"seed": seed, **params})
    rows = dataset.rows(["valid", "test"])
    targets = dataset.targets(["valid", "test"])
    run.write_predictions(
        list(rows["image"]), list(rows["split"]), np.clip(targets * skill + rng.random(targets.shape), 0, 1)
    )
    run.finish()
    evaluate_run(run.path)
    return load_run(run.path)


def test_seeds_of_one_model_form_one_group_and_settings_tell_models_apart(tmp_path, dataset):
    results = tmp_path / "r"
    runs = [
        _run(results, dataset, "fastai", s, 0.5, preset="quick", epochs=2, lr_used=0.001 * (s + 1), num_workers=0)
        for s in (0, 1)
    ]
    runs.append(_run(results, dataset, "fastai", 2, 0.5, preset="quick", epochs=2, num_workers=None))
    runs.append(_run(results, dataset, "fastai", 0, 0.5, preset="quick", epochs=3))
    groups = group_runs(runs)
    # lr_used is what training found, num_workers how it ran (None where a run left it unresolved)
    assert [len(g.runs) for g in groups] == [3, 1]
    assert [g.name for g in groups] == ["fastai·lite0·quick (epochs=2)", "fastai·lite0·quick (epochs=3)"]
    assert find_group(groups, "fastai·lite0·quick (epochs=2)").seeds == [0, 1, 2]


def test_a_grid_of_one_change_variants_names_each_by_its_change(tmp_path, dataset):
    """Names show where a model leaves the usual value; many variants once cut the list at three settings and
    two different models (MixUp, the whole body) both read ``(epochs=2, label_smoothing=0.0, lr=auto)``."""
    results = tmp_path / "r"
    usual = {"preset": "quick", "epochs": 2, "label_smoothing": 0.0, "lr": "auto", "mixup": False, "unfreeze": 3}
    changes = [{}, {"mixup": True}, {"mixup": True, "epochs": 3}, {"unfreeze": 0}, {"lr": 0.008}, {"lr": 0.016}]
    runs = [_run(results, dataset, "fastai", 0, 0.5, **{**usual, **change}) for change in changes]
    assert [g.name for g in group_runs(runs)] == [
        "fastai·lite0·quick",
        "fastai·lite0·quick (mixup=True)",
        "fastai·lite0·quick (epochs=3, mixup=True)",
        "fastai·lite0·quick (unfreeze=0)",
        "fastai·lite0·quick (lr=0.008)",
        "fastai·lite0·quick (lr=0.016)",
    ]


def test_tuned_runs_of_several_seeds_are_one_model_and_cross_validated_ones_another(tmp_path, dataset):
    results = tmp_path / "r"
    study = {"budget": "16 trials", "start_preset": "quick"}
    made = []
    for seed, lr, c, folds in ((0, 0.002, 0.1, None), (1, 0.03, 1.0, None), (2, 0.004, 0.5, None), (0, 0.01, 3.0, 3)):
        tuning = {**study, **({"selection": f"{folds}-fold CV over train + valid"} if folds else {})}
        run = _run(results, dataset, "fastai", seed, 0.5, preset="tuned", lr=lr, c_grid=[c], tuning=tuning)
        run.update(study={"chosen": {"lr": lr, "c": c}})  # what the study chose: not the model's identity
        made.append(run)
    groups = {g.name: len(g.runs) for g in group_runs([load_run(run.path) for run in made])}
    assert groups == {
        "fastai·lite0·tuned (tuning.selection=—)": 3,
        "fastai·lite0·tuned (tuning.selection=3-fold CV over train + valid)": 1,
    }
    # a study over another search space made another model (the runs promoted before spaces were recorded: —)
    other = _run(results, dataset, "fastai", 1, 0.5, preset="tuned", lr=0.01, tuning={**study, "space": "1a2b3c"})
    other.update(study={"chosen": {"lr": 0.01}})
    names = {g.name: len(g.runs) for g in group_runs([load_run(run.path) for run in [*made[:3], other]])}
    assert names == {"fastai·lite0·tuned (tuning.space=—)": 3, "fastai·lite0·tuned (tuning.space=1a2b3c)": 1}


def test_group_ci_covers_seeds_and_images_and_stored_samples_match_recomputed(tmp_path, dataset):
    results = tmp_path / "r"
    runs = [_run(results, dataset, "fastai", s, 0.4, preset="quick") for s in (0, 1, 2)]
    (group,) = group_runs(runs)
    summary = summarize(group)["macro_roc_auc"]
    assert summary["sd"] > 0 and summary["ci"][0] < summary["mean"] < summary["ci"][1]
    one_seed = summarize(group_runs(runs[:1])[0])["macro_roc_auc"]
    assert one_seed["sd"] is None
    stored = bootstrap_samples(runs[0], "macro_roc_auc")  # from metrics.json
    from_labels = macro_of(label_samples(runs[0], "roc_auc"))  # from bootstrap.npz
    (runs[0].path / "bootstrap.npz").unlink()
    recomputed = macro_of(label_samples(runs[0], "roc_auc"))  # the same seeded draw, in memory
    assert np.allclose(stored, from_labels, atol=1e-6) and np.allclose(stored, recomputed, atol=1e-6)


def test_compare_groups_gives_p_of_improvement_and_refuses_a_verdict_inside_the_noise(tmp_path, dataset):
    results = tmp_path / "r"
    strong = [_run(results, dataset, "fastai", s, 0.8, preset="quick") for s in (0, 1, 2)]
    weak = [_run(results, dataset, "keras", s, 0.1, preset="quick") for s in (0, 1, 2)]
    a, b = group_runs(strong + weak)
    result = compare_groups(a, b)["metrics"]["macro_roc_auc"]
    assert result["p_a_better"] == 1.0 and result["verdict"] == f"{a.name} is better"
    assert result["ci"][0] > 0 and result["a_sd"] >= 0
    same = compare_groups(a, a)["metrics"]["macro_roc_auc"]
    assert same["difference"] == 0 and same["verdict"] == "not distinguishable from seed and test-image noise"
    assert probability_of_improvement(np.array([0.8, 0.7]), np.array([0.7, 0.6])) == 0.875  # (1 + 1 + ½ + 1) / 4


def test_group_leaderboard_and_cli_show_mean_sd_and_compare_by_model_name(tmp_path, dataset, capsys):
    results = tmp_path / "r"
    for s in (0, 1):
        _run(results, dataset, "fastai", s, 0.8, preset="quick")
        _run(results, dataset, "keras", s, 0.2, preset="quick")
    table = group_leaderboard(results, dataset)
    assert list(table["model"]) == ["fastai·lite0·quick", "keras·lite0·quick"] and list(table["seeds"]) == [2, 2]
    assert " ± " in format_table(table)
    assert cli(["leaderboard", "--results", str(results), "--group-by", "model"]) == 0
    assert "fastai·lite0·quick" in capsys.readouterr().out
    assert cli(["compare", "fastai·lite0·quick", "keras·lite0·quick", "--results", str(results)]) == 0
    out = capsys.readouterr().out
    assert "P(A>B) 1.00" in out and "fastai·lite0·quick is better" in out
    assert cli(["compare", "fastai·lite0·quick", "nothing·like·this", "--results", str(results)]) == 2
    assert "no model group named 'nothing·like·this'" in capsys.readouterr().err


def test_dashboard_leaderboard_shows_models_over_seeds_and_compares_them(tmp_path, dataset, monkeypatch):
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    from dashboard.logic import datasets, leaderboard

    results = tmp_path / "r"
    for s in (0, 1):
        _run(results, dataset, "fastai", s, 0.8, preset="quick")
        _run(results, dataset, "keras", s, 0.2, preset="quick")
    signature = leaderboard.results_signature(results)
    assert len(leaderboard.seed_groups(results, dataset)) == 2
    monkeypatch.setattr(datasets, "DEFAULT_DATA_ROOT", dataset.root.parent)
    monkeypatch.setattr(leaderboard, "DEFAULT_RESULTS", results)
    app = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "streamlit_app.py"), default_timeout=120)
    app.session_state["page"] = "Leaderboard"
    app.run()
    assert not app.exception and "Models over seeds" in [h.value for h in app.subheader]
    app.radio[-1].set_value("models (seeds pooled)").run()
    next(b for b in app.button if b.label == "compare").click().run()
    shown = " ".join(m.value for m in app.markdown)
    assert "P(A > B) over seed pairs 1.00" in shown and "fastai·lite0·quick is better" in shown
    evaluate_run(next(results.iterdir()))  # re-evaluated: the cached table is keyed on it
    assert leaderboard.results_signature(results) != signature


def test_runs_get_readable_names_and_two_runs_show_how_they_differ(tmp_path, dataset):
    from benchmarks.evaluation import charts
    from benchmarks.evaluation.groups import params_diff, run_names
    from dashboard.logic import leaderboard

    results = tmp_path / "r"
    a = _run(results, dataset, "fastai", 0, 0.5, preset="quick", img_size=96)
    b = _run(results, dataset, "fastai", 1, 0.5, preset="quick", img_size=224)
    twin = _run(results, dataset, "fastai", 1, 0.5, preset="quick", img_size=224)  # same model, same seed again
    names = run_names([a, b, twin])
    assert names[a.run_id] == "fastai·lite0·quick (img_size=96) · seed 0"
    assert names[b.run_id].startswith("fastai·lite0·quick (img_size=224) · seed 1 · 20")  # its start time added
    assert names[b.run_id] != names[twin.run_id]
    assert params_diff(a, b) == [
        {"setting": "img_size", "A": "96", "B": "224"},
        {"setting": "seed", "A": "0", "B": "1"},
    ]

    table = leaderboard.leaderboard_table(results, dataset)
    shown = leaderboard.readable_leaderboard(table)
    assert list(shown.columns[:5]) == ["name", "macro_auc", "macro_auc_ci", "map", "map_ci"]  # a phone shows these
    assert set(shown["name"]) == set(names.values()) and "run" in shown
    assert list(charts.leaderboard_bars(table).data[0].y) == list(table["name"])

    history = [{"phase": "frozen", "epoch": 0, "train_loss": 0.5, "valid_loss": 0.4}, {"epoch": 1, "valid_loss": 0.3}]
    run = load_run(a.path)
    run.info["history"] = history
    run.update()
    histories = leaderboard.training_histories(results, table)
    assert histories == {names[a.run_id]: history}
    figure = charts.training_curves(histories)
    assert [trace.y for trace in figure.data] == [(0.4, 0.3), (0.5, None)]
    run.info["history"] = [{"phase": "unfrozen", "epoch": 0, "loss": 0.5, "val_loss": 0.4}]  # Keras' own names
    run.update()  # (what Keras runs before 2026-12-05 wrote): still drawn
    assert leaderboard.training_histories(results, table)[names[a.run_id]][0] == {
        "phase": "unfrozen",
        "epoch": 0,
        "train_loss": 0.5,
        "valid_loss": 0.4,
    }


def test_hidden_and_tagged_runs_persist_and_a_damaged_file_is_survived(tmp_path, dataset, monkeypatch):
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    from dashboard.logic import annotations, datasets, leaderboard

    results = tmp_path / "r"
    keep = _run(results, dataset, "fastai", 0, 0.8, preset="quick")
    hide = _run(results, dataset, "keras", 0, 0.2, preset="quick")
    tags = {keep.run_id: "baseline for the report"}
    annotations.save_annotations(results, [hide.run_id, "a-run-on-another-dataset"], tags)
    kept, problem = annotations.load_annotations(results)
    assert problem is None and kept["tags"] == tags
    every_run = leaderboard.leaderboard_table(results, dataset)
    table = annotations.annotated(every_run, kept)
    assert list(table["run"]) == [keep.run_id] and list(table["tag"]) == ["baseline for the report"]
    assert len(annotations.annotated(every_run, kept, show_hidden=True)) == 2

    monkeypatch.setattr(datasets, "DEFAULT_DATA_ROOT", dataset.root.parent)
    monkeypatch.setattr(leaderboard, "DEFAULT_RESULTS", results)
    app = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "streamlit_app.py"), default_timeout=120)
    app.session_state["page"] = "Leaderboard"
    app.run()
    shown = app.dataframe[0].value
    assert not app.exception and list(shown["name"]) == ["fastai·lite0·quick · seed 0"]
    assert list(shown["tag"]) == ["baseline for the report"]

    (results / annotations.ANNOTATIONS).write_text("{not json")
    annotations, problem = annotations.load_annotations(results)
    assert annotations == {"hidden": [], "tags": {}} and "not readable" in problem
    app.run()
    assert not app.exception and len(app.dataframe[0].value) == 2 and "not readable" in app.warning[0].value


def test_ranks_across_datasets_with_friedman_and_the_nemenyi_critical_difference(tmp_path, capsys):
    from benchmarks.evaluation.ranks import average_ranks, cd_diagram, scores_by_dataset

    results = tmp_path / "r"
    for d in range(3):
        rows = [
            (f"images/{s}{i}.png", ["a", "b", "a b", ""][i % 4], s)
            for s in ("train", "valid", "test")
            for i in range(20 + d)
        ]
        data = load_dataset(make_dataset(tmp_path / f"ds{d}", rows, ["a", "b"]))
        for kind, skill in (("fastai", 0.9), ("keras", 0.5), ("teachable_machine_replica", 0.1)):
            _run(results, data, kind, 0, skill, preset="quick")
    scores = scores_by_dataset(results)
    assert scores.shape == (3, 3)
    result = average_ranks(scores)
    assert list(result["ranks"].values()) == [1.0, 2.0, 3.0]
    assert result["critical_difference"] == pytest.approx(2.343 * (3 * 4 / 18) ** 0.5, abs=1e-3)  # Demšar's table
    assert result["friedman_p"] == pytest.approx(0.0498, abs=1e-3)  # chi² = 6 with 2 degrees of freedom
    assert result["cliques"] == [
        ["fastai·lite0·quick", "keras·lite0·quick"],
        ["keras·lite0·quick", "teachable_machine_replica·lite0·quick"],
    ]
    assert len(cd_diagram(result).data) == 1
    assert cli(["ranks", "--results", str(results), "--html", str(tmp_path / "cd.html")]) == 0
    assert "not distinguishable from keras·lite0·quick" in capsys.readouterr().out and (tmp_path / "cd.html").is_file()
    two = scores.iloc[:2]
    with pytest.raises(Exception, match="at least 3 datasets"):
        average_ranks(two)


def test_per_label_verdicts_name_the_best_model_and_its_ties(tmp_path, dataset, capsys):
    results = tmp_path / "r"
    strong = [_run(results, dataset, "fastai", s, 0.8, preset="quick") for s in (0, 1)]
    twin = [_run(results, dataset, "keras", s, 0.8, preset="quick") for s in (0, 1)]
    weak = [_run(results, dataset, "teachable_machine_replica", s, 0.05, preset="quick") for s in (0, 1)]
    a, b, c = group_runs(strong + twin + weak)
    per_label = compare_per_label(a, c)
    assert [e["label"] for e in per_label] == ["a", "b"] and all(
        e["verdict"] == f"{a.name} is better" for e in per_label
    )
    rows = best_per_label([a, b, c])
    for row in rows:
        assert row["best"] in (a.name, b.name) and c.name not in row["tied"]
        assert ({a.name, b.name} - {row["best"]}) <= set(row["tied"]) or row["auc"] > 0.95
    assert cli(["compare", a.name, c.name, "--results", str(results), "--per-label"]) == 0
    out = capsys.readouterr().out
    assert "               a: A " in out and f"-> {a.name} is better" in out


def test_per_label_verdicts_control_false_discoveries_where_the_truth_is_known(tmp_path):
    """Twelve labels, five models of *equal* skill (different noise): every "best" is chance, and uncorrected 95 %
    intervals hand out wins; after Benjamini-Hochberg none survives. One truly better model on half the labels is
    still found."""
    labels = [f"l{k}" for k in range(12)]
    rows = [
        (f"images/{split}{i}.png", " ".join(labels[k] for k in range(12) if (i * 7 + k * 3) % 5 < 2), split)
        for split in ("train", "valid", "test")
        for i in range(60)
    ]
    dataset = load_dataset(make_dataset(tmp_path / "ds", rows, labels))
    results = tmp_path / "r"
    same = [_run(results, dataset, "fastai", seed, 0.3, preset=f"p{seed}") for seed in range(5)]
    groups = group_runs(same)
    table = best_per_label(groups)
    assert all(len(row["tied"]) == 4 for row in table)  # nobody is distinguishable from the chance best
    raw_wins = sum(p < 0.05 for row in table for p in row["p"].values())
    assert raw_wins >= 2 and all(p >= 0.05 for row in table for p in row["p_adjusted"].values())

    assert bootstrap_p_value(np.array([0.1] * 99)) == pytest.approx(0.02)  # all on one side: 2 x 1/100
    assert bootstrap_p_value(np.array([-1.0, 1.0] * 50)) == 1.0
    strong = _run(results, dataset, "keras", 0, 3.0, preset="strong")
    rows_with_strong = best_per_label(group_runs([*same, strong]))
    assert all(row["best"].startswith("keras") and not row["tied"] for row in rows_with_strong)
