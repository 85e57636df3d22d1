"""Data efficiency: nested label-stratified train subsets, grids that make them, and learning curves read from the
runs on them (each size against the probe on the same subset)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from benchmarks.cli import main
from benchmarks.data.dataset import load_dataset
from benchmarks.data.subsets import stratified_order, subset_info, subset_size, write_subset
from benchmarks.models.baselines import run_linear_probe, run_prior
from benchmarks.runner.learning_curves import against_the_bar, first_ahead, learning_points
from benchmarks.runner.spec import read_spec
from tests.conftest import refused


def test_the_ordering_fills_labels_evenly_and_its_prefixes_are_nested():
    rng = np.random.default_rng(0)
    targets = (rng.random((300, 5)) < [0.5, 0.3, 0.1, 0.05, 0.02]).astype(int)
    order = stratified_order(targets, seed=3)
    assert sorted(order) == list(range(300))  # every image once
    assert np.array_equal(order, stratified_order(targets, seed=3)) and not np.array_equal(
        order, stratified_order(targets, seed=4)
    )
    sizes = [subset_size(targets, order, n) for n in (2, 5, 10)]
    assert sizes == sorted(sizes)  # prefixes of one ordering: nested by construction
    for n, size in zip((2, 5, 10), sizes):
        counts = targets[order[:size]].sum(axis=0)
        assert (counts >= np.minimum(targets.sum(axis=0), n)).all()
    # the rarest label is served first: 10 per label needs far fewer images than a random prefix would
    assert sizes[2] < 150


def test_a_subset_keeps_valid_and_test_and_records_where_it_came_from(tiny_scenes, tmp_path, capsys):
    full = load_dataset(tiny_scenes)
    small = write_subset(full, tmp_path / "small", per_label=2, draw=0)
    larger = write_subset(full, tmp_path / "larger", per_label=4, draw=0)
    for split in ("valid", "test"):
        assert list(small.rows(split)["image"]) == list(full.rows(split)["image"])
    small_train, larger_train = set(small.rows("train")["image"]), set(larger.rows("train")["image"])
    assert small_train < larger_train <= set(full.rows("train")["image"])
    assert (small.targets("train").sum(axis=0) >= np.minimum(full.targets("train").sum(axis=0), 2)).all()
    info = subset_info(tmp_path / "small")
    assert info["of"] == full.fingerprint and info["per_label"] == 2 and info["train_images"] == len(small_train)
    image = small.rows("train")["image"].iloc[0]
    assert os.path.samefile(tmp_path / "small" / image, full.root / image)  # hard-linked, not copied
    assert small.fingerprint != full.fingerprint
    refused(capsys, ["subset", str(tiny_scenes), str(tmp_path / "small"), "--per-label", "2"], "already there")
    refused(capsys, ["subset", str(tiny_scenes), str(tmp_path / "x"), "--per-label", "0"], "at least 1")


def test_a_grid_spec_expands_subsets_after_their_dataset(tmp_path, capsys):
    spec = tmp_path / "spec.toml"
    spec.write_text(
        'name = "eff"\n[[datasets]]\npath = "data/x"\nsubsets = {per-label = [25, 10], draws = [0, 1]}\n'
        '[[models]]\nfamily = "prior"\n'
    )
    read = read_spec(spec)
    assert [str(d.path) for d in read.datasets] == [
        "data/x",
        "data/x-subsets/x-10-per-label-draw0",
        "data/x-subsets/x-10-per-label-draw1",
        "data/x-subsets/x-25-per-label-draw0",
        "data/x-subsets/x-25-per-label-draw1",
    ]
    assert read.datasets[1].subset == {"of": read.datasets[0].path, "per_label": 10, "draw": 0}
    assert len(read.cells) == 5
    spec.write_text('[[datasets]]\npath = "data/x"\nsubsets = {per-label = [0]}\n[[models]]\nfamily = "prior"\n')
    refused(capsys, ["grid", str(spec), "--dry-run"], "per-label must be at least 1")
    spec.write_text('[[datasets]]\npath = "data/x"\nsubsets = {every = 3}\n[[models]]\nfamily = "prior"\n')
    refused(capsys, ["grid", str(spec), "--dry-run"], "unknown key 'every'")


@pytest.mark.training
def test_learning_points_pool_draws_and_compare_each_size_with_the_probe(tiny_scenes, tmp_path, capsys):
    from tm_replica.replica import train_replica  # here: it loads TensorFlow

    full = load_dataset(tiny_scenes)
    results = tmp_path / "results"
    for per_label in (2, 4):
        for draw in (0, 1):
            subset = write_subset(full, tmp_path / f"s{per_label}-{draw}", per_label, draw)
            run_linear_probe(subset, results, img_size=64)
            train_replica(subset, results, epochs=1)
    run_linear_probe(full, results, img_size=64)
    run_prior(full, results)
    curves = learning_points(results, full.fingerprint, len(full.rows("train")))
    assert set(curves) == {"linear_probe·lite0", "prior", "teachable_machine_replica·mobilenet_v2_0.35"}
    probe = curves["linear_probe·lite0"]
    assert [p.per_label for p in probe] == [2, 4, "all"] and [len(p.runs) for p in probe] == [2, 2, 1]
    comparisons = against_the_bar(curves)
    assert {c["per label"] for c in comparisons} == {2, 4} and all(c["draws"] == 2 for c in comparisons)
    assert {c["model"] for c in comparisons} == {"teachable_machine_replica·mobilenet_v2_0.35"}  # not the prior
    chart, page = tmp_path / "c.html", tmp_path / "curves.md"
    argv = ["learning-curve", str(tiny_scenes), "--results", str(results), "--html", str(chart)]
    assert main([*argv, "--markdown", str(page)]) == 0
    out = capsys.readouterr().out
    assert "per label" in out and "against the linear probe" in out and chart.is_file()
    text = page.read_text()
    assert "| linear_probe·lite0 | 2 |" in text and "## Against the linear probe" in text
    assert "![learning curves](curves.png)" in text and (tmp_path / "curves.png").is_file()


@pytest.mark.parametrize(
    "verdicts, expected",
    [
        (["not", "ahead", "ahead", "ahead"], 25),
        (["ahead", "not", "ahead", "ahead"], 50),
        (["ahead", "ahead", "ahead", "not"], None),
    ],
)
def test_first_ahead_is_the_size_from_which_a_model_stays_ahead(verdicts, expected):
    rows = [
        {"model": "m", "per label": size, "verdict": "ahead of the probe in every draw" if v == "ahead" else v}
        for size, v in zip((10, 25, 50, "all"), verdicts)
    ]
    assert first_ahead(rows) == {"m": expected}


def test_the_seed_range_is_the_spread_of_seeds_within_a_draw_averaged_over_draws():
    from types import SimpleNamespace

    from benchmarks.runner.learning_curves import Point, seed_range

    def point(rows):  # (draw, seed, auc)
        runs = [SimpleNamespace(params={"seed": seed}, info={}) for _, seed, _ in rows]
        return Point("m", 10, runs, [d for d, _, _ in rows], [50] * len(rows), [a for _, _, a in rows])

    # draw 0's seeds span 0.02, draw 1's 0.04: the draws' own gap (0.70 vs 0.80) is not the seeds' doing
    assert seed_range(point([(0, 0, 0.70), (0, 1, 0.72), (1, 0, 0.80), (1, 1, 0.76), (1, 2, 0.78)])) == "0.030"
    assert seed_range(point([(0, None, 0.70), (1, None, 0.80)])) == "—"  # one run per draw (the probe): no seeds
