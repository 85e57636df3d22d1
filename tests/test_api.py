"""The prediction API over the session's tiny fastai, Keras and TM replica runs: every endpoint and every bad input."""

import io
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import requests
from fastapi.testclient import TestClient
from PIL import Image

from benchmarks.data.dataset import load_dataset
from tests.conftest import free_port, wait_until_up


def png_bytes(mode="RGB", size=(80, 60), colour=(200, 40, 40)) -> bytes:
    buffer = io.BytesIO()
    value = colour if mode in ("RGB", "RGBA", "CMYK") else colour[0]
    if mode == "RGBA":
        value = colour + (128,)
    if mode == "CMYK":
        value = colour + (0,)
    Image.new(mode, size, value).save(buffer, format="TIFF" if mode == "CMYK" else "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def client(fastai_run, keras_run, replica_run, tiny_results):
    os.environ["RESULTS_DIR"] = str(tiny_results)
    from api.app import app

    with TestClient(app) as test_client:
        yield test_client
    os.environ.pop("RESULTS_DIR")


def test_health_and_models(client, fastai_run, keras_run, replica_run):
    assert client.get("/health").json() == {"status": "ok", "models": 3, "runtime": "native", "skipped": []}
    models = {m["id"]: m for m in client.get("/models").json()}
    assert set(models) == {fastai_run.run_id, keras_run.run_id, replica_run.run_id}
    assert models[replica_run.run_id]["kind"] == "teachable_machine_replica"
    assert models[keras_run.run_id]["kind"] == "keras" and len(models[keras_run.run_id]["thresholds"]) == len(
        keras_run.labels
    )


def test_damaged_runs_beside_good_ones_are_skipped_and_reported(
    tmp_path, fastai_run, keras_run, replica_run, tiny_scenes
):
    """A serving.json that is not JSON, a run.json that is null, a truncated state dict: each run is skipped with its
    reason on /health, and the good model is still served."""
    import shutil

    results = tmp_path / "results"
    shutil.copytree(keras_run.path, results / keras_run.run_id)
    for name, damage in (("bad-serving", "serving.json"), ("bad-weights", "model_state.pt")):
        shutil.copytree(fastai_run.path, results / name)
        (results / name / damage).write_bytes(b"\x00not what it should be")
    (results / "bad-run-json").mkdir()
    (results / "bad-run-json" / "run.json").write_text("null")
    os.environ["RESULTS_DIR"] = str(results)
    os.environ["SERVE_RUNS"] = "all"  # two damaged copies of one kind: the default serves only the best of a kind
    from api.app import app

    shared_state = (getattr(app.state, "models", {}), getattr(app.state, "skipped", []))  # the module client's app
    try:
        with TestClient(app) as damaged_client:
            health = damaged_client.get("/health").json()
            assert health["models"] == 1
            assert {s["run"] for s in health["skipped"]} == {"bad-serving", "bad-weights", "bad-run-json"}
            assert all(s["reason"] and "Traceback" not in s["reason"] for s in health["skipped"])
            image = load_dataset(tiny_scenes).image_paths("test")[0]
            reply = damaged_client.post("/predict", files={"image": ("scene.jpg", image.read_bytes(), "image/jpeg")})
            assert reply.status_code == 200 and [p["model"] for p in reply.json()["predictions"]] == [keras_run.run_id]
    finally:
        os.environ["RESULTS_DIR"] = str(fastai_run.path.parent)
        os.environ.pop("SERVE_RUNS")
        app.state.models, app.state.skipped = shared_state


def test_predict_all_models_gives_scores_thresholds_labels_latency(client, tiny_scenes):
    image = load_dataset(tiny_scenes).image_paths("test")[0]
    reply = client.post("/predict", files={"image": ("scene.jpg", image.read_bytes(), "image/jpeg")})
    assert reply.status_code == 200
    body = reply.json()
    assert body["filename"] == "scene.jpg" and len(body["predictions"]) == 3
    for prediction in body["predictions"]:
        assert set(prediction["scores"]) == set(prediction["thresholds"]) and prediction["latency_ms"] > 0
        assert all(prediction["scores"][label] >= prediction["thresholds"][label] for label in prediction["labels"])


def test_predict_one_model_and_the_served_scores_match_the_run(client, fastai_run, tiny_scenes):
    import pandas as pd

    dataset = load_dataset(tiny_scenes)
    rel = dataset.rows("test")["image"].iloc[0]
    reply = client.post(
        "/predict",
        files={"image": ("x.jpg", (tiny_scenes / rel).read_bytes(), "image/jpeg")},
        data={"model": fastai_run.run_id},
    )
    scores = reply.json()["predictions"][0]["scores"]
    written = pd.read_csv(fastai_run.path / "predictions.csv").set_index("image").loc[rel]
    np.testing.assert_allclose(
        [scores[label] for label in dataset.labels], written[dataset.labels].to_numpy(float), atol=1e-3
    )


def test_batch_and_odd_image_modes(client):
    files = [("images", (f"{mode}.png", png_bytes(mode), "image/png")) for mode in ("RGB", "RGBA", "L", "I;16")]
    files.append(("images", ("cmyk.tif", png_bytes("CMYK"), "image/tiff")))
    reply = client.post("/predict/batch", files=files, data={"model": "all"})
    assert reply.status_code == 200
    assert [r["filename"] for r in reply.json()["results"]] == ["RGB.png", "RGBA.png", "L.png", "I;16.png", "cmyk.tif"]


@pytest.mark.parametrize(
    "upload, status, message",
    [
        (("notes.txt", b"hello", "text/plain"), 415, "content type text/plain is not an image"),
        (("fake.png", b"not really a png at all", "image/png"), 415, "not a JPEG, PNG"),
        (("broken.png", png_bytes()[:60], "image/png"), 400, "cannot read image"),
        (("empty.png", b"", "image/png"), 400, "empty file"),
    ],
)
def test_bad_uploads_are_4xx_json(client, upload, status, message):
    reply = client.post("/predict", files={"image": upload})
    assert reply.status_code == status and message in reply.json()["detail"]


def test_size_cap_and_decompression_bomb(client, monkeypatch):
    monkeypatch.setenv("MAX_UPLOAD_MB", "0.001")
    assert (
        client.post(
            "/predict", files={"image": ("big.png", png_bytes(size=(400, 400)) + b"\0" * 2000, "image/png")}
        ).status_code
        == 413
    )
    monkeypatch.delenv("MAX_UPLOAD_MB")
    bomb = io.BytesIO()
    Image.new("1", (10000, 10000)).save(bomb, format="PNG")  # 100 Mpx in a few KB
    reply = client.post("/predict", files={"image": ("bomb.png", bomb.getvalue(), "image/png")})
    assert reply.status_code == 413 and "too large to decode safely" in reply.json()["detail"]


def test_unknown_model_is_404_and_api_key_is_enforced(client, monkeypatch):
    reply = client.post("/predict", files={"image": ("a.png", png_bytes(), "image/png")}, data={"model": "nope"})
    assert reply.status_code == 404 and "GET /models" in reply.json()["detail"]
    monkeypatch.setenv("API_KEY", "s3cret")
    assert client.get("/models").status_code == 401
    assert client.get("/models", headers={"X-API-Key": "s3cret"}).status_code == 200
    assert client.get("/health").status_code == 200  # health stays open for load balancers


def test_uvicorn_serves_concurrent_requests(tiny_results, fastai_run, keras_run, replica_run):
    port = free_port()
    env = {**os.environ, "RESULTS_DIR": str(tiny_results)}
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "api.app:app", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=Path(__file__).resolve().parents[1],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_up(f"{url}/health")
        image = png_bytes(size=(64, 64))

        def one(_):
            return requests.post(
                f"{url}/predict", files={"image": ("a.png", image, "image/png")}, timeout=60
            ).status_code

        with ThreadPoolExecutor(8) as pool:
            assert list(pool.map(one, range(24))) == [200] * 24
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_openapi_schema_fuzzing(client):
    """schemathesis generates requests from the OpenAPI spec; none may cause a server error."""
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, given, settings

    schema = schemathesis.openapi.from_asgi("/openapi.json", client.app)
    for result in schema.get_all_operations():
        operation = result.ok()

        @settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(case=operation.as_strategy())
        def fuzz(case):
            response = case.call()
            assert response.status_code < 500, (
                f"{operation.method} {operation.path}: {response.status_code} {response.text[:200]}"
            )

        fuzz()
