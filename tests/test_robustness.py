"""Robustness to common corruptions: seeded, cached corrupted test sets; the served model scored on them; CE
against the probe; paired comparisons; clear refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from benchmarks.cli import main
from benchmarks.data import corrupted_test
from benchmarks.data.corrupted_test import CLEAN, corrupted_test_images, set_path
from benchmarks.data.corruptions import CORRUPTION_NAMES, corrupt, corruptions, prepared
from benchmarks.data.dataset import load_dataset
from benchmarks.evaluation.evaluate import evaluate_run, metrics_of
from benchmarks.evaluation.results import load_run
from benchmarks.evaluation.robustness import corruption_errors, read_robustness
from benchmarks.models.baselines import run_linear_probe, run_prior
from benchmarks.robustness.scoring import score_run
from benchmarks.robustness.table import collect, pairwise
from tests.conftest import refused


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    rng = np.random.default_rng(0)
    gradient = np.linspace(0, 255, 96, dtype=np.uint8)
    pixels = np.stack([np.tile(gradient, (96, 1)), np.tile(gradient[:, None], (1, 96)), rng.integers(0, 255, (96, 96))])
    return Image.fromarray(pixels.transpose(1, 2, 0).astype(np.uint8))


def test_every_corruption_is_seeded_per_image_and_keeps_the_image_shape(photo):
    assert list(corruptions()) == list(CORRUPTION_NAMES) and len(CORRUPTION_NAMES) == 15
    for name in CORRUPTION_NAMES:
        first = corrupt(photo, name, 3, "images/test/a.jpg")
        assert first.shape == (96, 96, 3) and first.dtype == np.uint8, name
        assert np.array_equal(first, corrupt(photo, name, 3, "images/test/a.jpg")), f"{name} is not deterministic"
        assert not np.array_equal(first, np.asarray(photo)), f"{name} left the image unchanged"
    # noise differs between images (a seed per image), and grows with severity
    assert not np.array_equal(corrupt(photo, "gaussian_noise", 3, "a"), corrupt(photo, "gaussian_noise", 3, "b"))
    damage = [np.abs(corrupt(photo, "gaussian_noise", s, "a").astype(float) - np.asarray(photo)).mean() for s in (1, 5)]
    assert damage[1] > 2 * damage[0]


def test_large_images_are_capped_before_corruption():
    assert prepared(Image.new("RGB", (1024, 512))).size == (256, 128)
    assert prepared(Image.new("L", (64, 40))).mode == "RGB"


def test_a_corrupted_set_is_made_once_and_shared(tiny_scenes, monkeypatch):
    dataset = load_dataset(tiny_scenes)
    made = corrupted_test_images(dataset, "jpeg_compression", 5)
    assert len(made) == len(dataset.rows("test")) and set_path(dataset, "jpeg_compression", 5).is_file()

    def no_corrupting(*_args):
        raise AssertionError("the cached set should have been read")

    monkeypatch.setattr(corrupted_test, "corrupt", no_corrupting)
    again = corrupted_test_images(dataset, "jpeg_compression", 5)
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(made, again))
    # a damaged cache entry is made again, not read
    set_path(dataset, "jpeg_compression", 5).write_bytes(b"not a zip")
    monkeypatch.undo()
    remade = corrupted_test_images(dataset, "jpeg_compression", 5)
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(made, remade))


@pytest.fixture(scope="module")
def probe_and_prior(tiny_scenes, tmp_path_factory):
    dataset = load_dataset(tiny_scenes)
    results = tmp_path_factory.mktemp("robustness")
    probe, prior = run_linear_probe(dataset, results, img_size=64), run_prior(dataset, results)
    for run in (probe, prior):
        evaluate_run(run.path)
    return load_run(probe.path), load_run(prior.path)


def test_scores_the_served_model_resumes_and_refuses_runs_without_a_model(probe_and_prior, monkeypatch):
    probe, prior = probe_and_prior
    record = score_run(probe, ["gaussian_noise"], [1, 5])
    clean = record["summary"]["clean"]["value"]
    assert clean == pytest.approx(metrics_of(probe)["overall"]["macro_roc_auc"], abs=1e-6)  # the one scoring path
    assert set(record["summary"]["sets"]) == {"gaussian_noise-1", "gaussian_noise-5"}
    assert record["summary"]["relative"]["value"] == pytest.approx(record["summary"]["mean_corrupted"]["value"] / clean)
    assert len(record["samples"]["gaussian_noise-5"]) == 1000 and record["machine"]["cpu"]

    # asked for one more corruption: only its set is scored, the others are read back
    from benchmarks.serving import predictors

    calls = []
    real = predictors.load_predictor

    def counting(*args, **kwargs):
        predictor = real(*args, **kwargs)
        original = predictor.predict
        predictor.predict = lambda images: calls.append(len(images)) or original(images)
        return predictor

    monkeypatch.setattr("benchmarks.robustness.scoring.load_predictor", counting)
    extended = score_run(probe, ["gaussian_noise", "contrast"], [1, 5])
    assert sum(calls) == 2 * len(load_dataset(probe.info["dataset"]["path"]).rows("test"))
    assert extended["summary"]["sets"]["gaussian_noise-5"] == record["summary"]["sets"]["gaussian_noise-5"]
    assert set(extended["summary"]["by_corruption"]) == {"gaussian_noise", "contrast"}

    with pytest.raises(Exception, match="no robustness row"):
        score_run(prior, ["contrast"], [1])


def test_corruption_error_is_one_against_itself_and_follows_the_errors():
    samples = np.linspace(0.6, 0.8, 1000)
    base = {"points": {CLEAN: 0.9, "fog-1": 0.8, "fog-3": 0.6}, "samples": {CLEAN: samples + 0.2, "fog-1": samples,
            "fog-3": samples - 0.1}}  # fmt: skip
    assert corruption_errors(base, base)["mce"]["value"] == pytest.approx(1.0)
    # half the errors of the baseline under fog: CE 0.5; the same drop from clean: relative mCE 1
    better = {"points": {CLEAN: 0.95, "fog-1": 0.9, "fog-3": 0.8}, "samples": base["samples"]}
    errors = corruption_errors(better, base)
    assert errors["per_corruption"]["fog"]["value"] == pytest.approx((0.1 + 0.2) / (0.2 + 0.4))
    assert errors["relative_mce"]["value"] == pytest.approx((0.05 + 0.15) / (0.1 + 0.3))
    assert errors["sets"] == 2


def test_pairwise_verdicts_need_a_difference_beyond_the_noise():
    rng = np.random.default_rng(0)

    def row(name, shift):  # each run's resamples move on their own (not paired): differences need to exceed them
        noise = rng.normal(0, 0.01, 1000)
        return {"run": name, "record": {"points": {CLEAN: 0.9, "fog-3": 0.7 + shift},
                                        "samples": {CLEAN: 0.9 + noise, "fog-3": 0.7 + shift + noise}}}  # fmt: skip

    same = pairwise([row("A", 0.0), row("B", 0.0005)])
    assert same[0]["verdict"] == "not distinguishable"
    apart = pairwise([row("A", 0.1), row("B", 0.0), row("C", 0.0003)])
    verdicts = {(p["a"], p["b"]): p["verdict"] for p in apart}
    assert verdicts[("A", "B")] == "A is better" and verdicts[("B", "C")] == "not distinguishable"


def test_command_prints_rows_baseline_and_why_a_run_has_none(probe_and_prior, capsys, tmp_path):
    probe, prior = probe_and_prior
    heatmap, page = tmp_path / "robustness.html", tmp_path / "robustness-results.md"
    argv = ["robustness", str(probe.path), str(prior.path), "--corruptions", "contrast", "--severities", "1"]
    assert main([*argv, "--html", str(heatmap), "--markdown", str(page)]) == 0
    out = capsys.readouterr().out
    assert "mean corrupted AUC" in out and "contrast-1" in out and heatmap.is_file()
    text = page.read_text()
    assert "| contrast | digital |" in text and "no row: prior" in text and "Generated by `python -m benchmarks" in text
    assert "no row: prior" in out and "nothing to run" in out
    assert "relative to linear_probe" in out
    assert main([*argv, "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["summary"][0]["mCE vs baseline"].startswith("1.000") and printed["missing"][0]["run"] == "prior"
    collected = collect([probe, prior])
    assert collected["baseline"] and read_robustness(prior) is None


def test_bad_choices_are_refused_in_one_line(probe_and_prior, capsys):
    probe, _ = probe_and_prior
    refused(capsys, ["robustness", str(probe.path), "--corruptions", "frost"], "unknown corruption frost")
    refused(capsys, ["robustness", str(probe.path), "--severities", "6"], "severity 6 is not one of 1..5")
    (probe.path / "robustness.json").write_text("{")
    assert main(["robustness", str(probe.path), "--corruptions", "contrast", "--severities", "1"]) == 0
    assert "mean corrupted AUC" in capsys.readouterr().out  # a damaged record is written again, not a crash


def test_corrupted_pixels_are_the_same_in_another_process(photo, tmp_path):
    """The seed comes from sha256 of (corruption, severity, image id), not Python's salted hash(): another process
    (another run's scoring, a Ray worker) makes the same pixels."""
    import subprocess
    import sys

    photo.save(tmp_path / "photo.png")
    code = (
        "import hashlib, sys; from PIL import Image; from benchmarks.data.corruptions import corrupt; "
        "image = Image.open(sys.argv[1]).convert('RGB'); "
        "print(hashlib.sha256(b''.join(corrupt(image, n, 3, 'a').tobytes() for n in "
        "('gaussian_noise', 'glass_blur', 'snow', 'jpeg_compression'))).hexdigest())"
    )
    other = subprocess.run([sys.executable, "-c", code, str(tmp_path / "photo.png")], capture_output=True, text=True)
    here = Image.open(tmp_path / "photo.png").convert("RGB")
    names = ("gaussian_noise", "glass_blur", "snow", "jpeg_compression")
    mine = __import__("hashlib").sha256(b"".join(corrupt(here, n, 3, "a").tobytes() for n in names)).hexdigest()
    assert other.stdout.strip() == mine, other.stderr[-500:]
