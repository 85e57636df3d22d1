"""SERVING_RUNTIME=openvino: the fastai and Keras networks served through their OpenVINO export still score what
the evaluator scored; the export is made once, checked, cached, and replaced when damaged."""

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from benchmarks.data.dataset import load_dataset
from benchmarks.data.images import open_rgb
from benchmarks.errors import BenchmarkError, RunError
from benchmarks.evaluation.results import load_run
from benchmarks.models.compiled import GRAPH_FILE, PARITY_FILE, PARITY_TOLERANCE
from benchmarks.serving import runtime as serving_runtime
from benchmarks.serving.predictors import load_predictor, runtime_of
from benchmarks.serving.runtime import EXPORT_DIR


def scored_test_predictions(run, dataset_root):
    written = pd.read_csv(run.path / "predictions.csv")
    test = written[written["split"] == "test"].set_index("image")
    images = [open_rgb(dataset_root / rel) for rel in test.index]
    return images, test[load_run(run.path).labels].to_numpy(float)


@pytest.mark.parametrize("fixture", ["fastai_run", "keras_run"])
def test_openvino_serves_the_scored_model(request, tiny_scenes, fixture, monkeypatch):
    run = request.getfixturevalue(fixture)
    images, scored = scored_test_predictions(run, tiny_scenes)

    predictor = load_predictor(run.path, "openvino")
    assert runtime_of(predictor) == "openvino" and predictor.labels == run.labels
    np.testing.assert_allclose(predictor.predict(images), scored, atol=PARITY_TOLERANCE)
    assert predictor.parity["max_abs_difference"] <= PARITY_TOLERANCE
    assert (run.path / EXPORT_DIR / PARITY_FILE).is_file()
    assert not [p for p in (run.path / EXPORT_DIR).parent.iterdir() if p.name.startswith(".export-")]

    # The second load reuses the export (exporting again would fail here) ...
    monkeypatch.setattr(type(predictor.native), "export_openvino", lambda *a: pytest.fail("exported twice"))
    monkeypatch.setenv("SERVING_RUNTIME", "openvino")
    again = load_predictor(run.path)
    np.testing.assert_allclose(again.predict(images[:3]), scored[:3], atol=PARITY_TOLERANCE)
    # ... and SERVING_RUNTIME=native serves the framework itself.
    assert runtime_of(load_predictor(run.path, "native")) == "native"


@pytest.mark.parametrize("runtime", ["native", "openvino"])
@pytest.mark.parametrize("fixture", ["fastai_run", "keras_run"])
def test_concurrent_callers_share_network_runs_and_each_gets_its_scored_scores(request, tiny_scenes, fixture, runtime):
    """Both runtimes are served batched and thread-safe (the API calls them without a lock of its own): 8 threads
    at once get every image's own scored scores, though their calls shared fewer network runs."""
    run = request.getfixturevalue(fixture)
    images, scored = scored_test_predictions(run, tiny_scenes)
    predictor = load_predictor(run.path, runtime)
    assert predictor.thread_safe and runtime_of(predictor) == runtime

    order = [i % len(images) for i in range(32)]
    with ThreadPoolExecutor(8) as pool:
        each = list(pool.map(lambda i: predictor.predict([images[i]])[0], order))
    np.testing.assert_allclose(each, scored[order], atol=PARITY_TOLERANCE)
    assert predictor.network.runs < 32


def test_a_damaged_export_is_made_again(fastai_run, tiny_scenes):
    load_predictor(fastai_run.path, "openvino")
    weights = fastai_run.path / EXPORT_DIR / GRAPH_FILE.replace(".xml", ".bin")
    weights.write_bytes(weights.read_bytes()[:100])
    images, scored = scored_test_predictions(fastai_run, tiny_scenes)
    predictor = load_predictor(fastai_run.path, "openvino")
    np.testing.assert_allclose(predictor.predict(images), scored, atol=PARITY_TOLERANCE)
    assert weights.stat().st_size > 1000


def test_an_export_that_scores_differently_is_refused_and_leaves_nothing(keras_run, monkeypatch):
    target = keras_run.path / EXPORT_DIR
    if target.exists():
        import shutil

        shutil.rmtree(target)
    monkeypatch.setattr(serving_runtime, "max_score_difference", lambda native, network: 0.25)
    with pytest.raises(RunError, match=r"differs from the native model by 0\.25 .*SERVING_RUNTIME=native"):
        load_predictor(keras_run.path, "openvino")
    assert not target.exists() and not list(target.parent.glob(".export-*"))


def test_the_tm_replica_is_served_through_openvino_as_it_was_scored(replica_run, tiny_scenes):
    scored = pd.read_csv(replica_run.path / "predictions.csv").query("split == 'test'").set_index("image")
    images = [open_rgb(tiny_scenes / rel) for rel in scored.index[:6]]
    predictor = load_predictor(replica_run.path, "openvino")
    assert runtime_of(predictor) == "openvino" and predictor.parity["max_abs_difference"] <= PARITY_TOLERANCE
    np.testing.assert_allclose(predictor.predict(images), scored[replica_run.labels].to_numpy(float)[:6], atol=1e-4)


def test_kinds_without_an_export_stay_native_and_unknown_runtimes_are_refused(replica_run, tmp_path, monkeypatch):
    from cloud_baselines.teachable_machine import evaluate_tm_export
    from tests.cloud_helpers import FRUIT, FRUIT_IMAGES, dataset_from_files

    labels = sorted({"_".join(p.stem.split("_")[:2]) for p in FRUIT_IMAGES})
    root = dataset_from_files(tmp_path / "fruit", FRUIT_IMAGES, lambda p: ["_".join(p.stem.split("_")[:2])], labels)
    tflite = evaluate_tm_export(FRUIT / "converted_tflite", load_dataset(root), tmp_path / "results")
    assert runtime_of(load_predictor(tflite.path, "openvino")) == "native"  # a TFLite file: no network to export
    monkeypatch.setenv("SERVING_RUNTIME", "tensorrt")
    with pytest.raises(BenchmarkError, match="SERVING_RUNTIME='tensorrt' is not a serving runtime; use one of"):
        load_predictor(replica_run.path)


def test_the_api_serves_openvino_with_the_same_scores(fastai_run, keras_run, replica_run, tiny_results, tiny_scenes):
    os.environ.update(RESULTS_DIR=str(tiny_results), SERVING_RUNTIME="openvino")
    try:
        from api.app import app

        with TestClient(app) as client:
            health = client.get("/health").json()
            runtimes = {m["kind"]: m["runtime"] for m in client.get("/models").json()}
            first = sorted(pd.read_csv(keras_run.path / "predictions.csv").query("split == 'test'")["image"])[0]
            with open(tiny_scenes / first, "rb") as handle:
                reply = client.post(
                    "/predict", files={"image": ("a.jpg", handle, "image/jpeg")}, data={"model": keras_run.run_id}
                )
    finally:
        for key in ("RESULTS_DIR", "SERVING_RUNTIME"):
            os.environ.pop(key)
    assert health["runtime"] == "openvino" and health["skipped"] == []
    assert runtimes["fastai"] == runtimes["keras"] == runtimes["teachable_machine_replica"] == "openvino"
    written = pd.read_csv(keras_run.path / "predictions.csv").set_index("image")
    served = reply.json()["predictions"][0]["scores"]
    np.testing.assert_allclose(
        [served[label] for label in keras_run.labels],
        written.loc[first, keras_run.labels].to_numpy(float),
        atol=PARITY_TOLERANCE,
    )


def test_a_model_openvino_cannot_serve_is_served_natively_not_dropped(keras_run, monkeypatch, caplog):
    """Under SERVING_RUNTIME=openvino a run whose export is refused (a Keras model trained in mixed_bfloat16, or a
    parity failure as here) stays on the API through its own framework — the model it was scored with — with one
    logged line; /models names its runtime."""
    from benchmarks.serving.predictors import load_servable_predictor

    target = keras_run.path / EXPORT_DIR
    if target.exists():
        import shutil

        shutil.rmtree(target)
    monkeypatch.setattr(serving_runtime, "max_score_difference", lambda native, network: 0.25)
    with caplog.at_level("WARNING", logger="imgbench.serving"):
        predictor = load_servable_predictor(keras_run.path, "openvino")
    assert runtime_of(predictor) == "native" and any("served natively" in r.getMessage() for r in caplog.records)
    monkeypatch.setenv("RESULTS_DIR", str(keras_run.path.parent))
    monkeypatch.setenv("SERVING_RUNTIME", "openvino")
    monkeypatch.setenv("SERVE_RUNS", keras_run.run_id)
    from api.app import app

    with TestClient(app) as client:
        models = client.get("/models").json()
        health = client.get("/health").json()
    assert [(m["id"], m["runtime"]) for m in models] == [(keras_run.run_id, "native")] and health["skipped"] == []


def test_a_keras_model_trained_in_mixed_precision_is_refused_by_the_openvino_export_in_one_line(tmp_path):
    """On CPUs with AMX Keras trains in mixed_bfloat16: OpenVINO cannot read its bf16 constants, and a float32 copy
    would not serve the scores the run was scored with."""
    import keras

    from keras_model.serving import KerasPredictor

    predictor = KerasPredictor.__new__(KerasPredictor)
    inner = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, dtype="mixed_bfloat16")])
    predictor.model = keras.Sequential([keras.Input((4,)), inner])
    with pytest.raises(ValueError, match="trained with the mixed_bfloat16 policy"):
        predictor.export_openvino(tmp_path / "model.xml", np.zeros((1, 4), np.float32))
    assert not list(tmp_path.iterdir())


def test_two_processes_exporting_one_network_both_end_with_a_checked_export(tmp_path, monkeypatch):
    """Grid cells in parallel may export the same frozen network: the one whose move comes second uses the first's."""
    import torch

    from benchmarks.models import compiled

    model = torch.nn.Linear(4, 2).eval()
    example = np.ones((1, 4), np.float32)

    def export(xml_path):
        compiled.export_torch(model, xml_path, example)

    def difference(network):
        return float(np.abs(network(example) - model(torch.from_numpy(example)).detach().numpy()).max())

    folder = tmp_path / "net"
    args = dict(what="tiny", fallback="natively", about={})
    first, _ = compiled.export_checked(folder, export, difference, **args)
    real_rename = type(folder).rename

    def other_process_won(self, target):  # the folder reappears between our removal and our move
        real_rename(tmp_path / "keep", target) if (tmp_path / "keep").exists() else None
        raise OSError("Directory not empty")

    real_rename(folder, tmp_path / "keep")
    monkeypatch.setattr(type(folder), "rename", other_process_won)
    second, parity = compiled.export_checked(folder, export, difference, **args)
    np.testing.assert_allclose(second(example), first(example), atol=1e-6)
    assert parity["max_abs_difference"] <= compiled.PARITY_TOLERANCE
    assert [p.name for p in tmp_path.iterdir()] == ["net"]  # no scratch folder left behind
