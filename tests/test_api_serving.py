"""Serving like a service: which runs are served (SERVE_RUNS), Prometheus metrics, and load shed with 503 +
Retry-After (a full queue, a request that waited past its timeout) instead of queueing without bound."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from contextlib import contextmanager

import pytest
from fastapi.testclient import TestClient

from api.selection import served_folders
from benchmarks.data.dataset import load_dataset
from benchmarks.errors import BenchmarkError


@contextmanager
def api_with(**environment):
    """The app started with these settings (restored after); its state is the module-level app's."""
    saved = {name: os.environ.get(name) for name in environment}
    os.environ.update({name: str(value) for name, value in environment.items()})
    from api.app import app

    state = {
        name: getattr(app.state, name) for name in ("models", "skipped", "instruments") if hasattr(app.state, name)
    }
    try:
        with TestClient(app) as client:
            yield app, client
    finally:
        for name, value in saved.items():
            os.environ.pop(name) if value is None else os.environ.__setitem__(name, value)
        for name, value in state.items():
            setattr(app.state, name, value)


def image_bytes(tiny_scenes) -> bytes:
    return load_dataset(tiny_scenes).image_paths("test")[0].read_bytes()


def test_by_default_the_best_run_of_each_kind_is_served_and_named_runs_on_request(tmp_path, fastai_run, keras_run):
    results = tmp_path / "results"
    for run in (fastai_run, keras_run):
        shutil.copytree(run.path, results / run.path.name, ignore=shutil.ignore_patterns("checkpoints"))
    worse = results / "fastai-worse"  # the same kind again, scored lower
    shutil.copytree(fastai_run.path, worse, ignore=shutil.ignore_patterns("checkpoints"))
    record = json.loads((worse / "metrics.json").read_text())
    record["overall"]["macro_roc_auc"] -= 0.1
    (worse / "metrics.json").write_text(json.dumps(record))
    assert [p.name for p in served_folders(results, None)] == sorted([fastai_run.run_id, keras_run.run_id])
    assert len(served_folders(results, "all")) == 3
    assert [p.name for p in served_folders(results, f"fastai-worse, {keras_run.run_id}")] == sorted(
        ["fastai-worse", keras_run.run_id]
    )
    listed = tmp_path / "serve.txt"
    listed.write_text(f"# the ones we ship\n{keras_run.run_id}\n")
    assert [p.name for p in served_folders(results, f"@{listed}")] == [keras_run.run_id]
    with pytest.raises(BenchmarkError, match="SERVE_RUNS names nope, which is not a run in"):
        served_folders(results, "nope")
    with pytest.raises(BenchmarkError, match="give run ids"):
        served_folders(results, "../elsewhere")


def test_metrics_count_requests_model_time_and_batch_sizes(tiny_results, replica_run, tiny_scenes):
    with api_with(RESULTS_DIR=tiny_results, SERVE_RUNS=replica_run.run_id) as (_, client):
        assert client.post("/predict", files={"image": ("a.jpg", image_bytes(tiny_scenes), "image/jpeg")}).is_success
        assert client.post("/predict", files={"image": ("a.txt", b"hello", "text/plain")}).status_code == 415
        text = client.get("/metrics").text
    assert 'imgbench_requests_total{endpoint="/predict",status="200"} 1.0' in text
    assert 'imgbench_requests_total{endpoint="/predict",status="415"} 1.0' in text
    assert f'imgbench_model_seconds_count{{model="{replica_run.run_id}"}} 1.0' in text
    assert f'imgbench_network_batch_images_bucket{{le="1.0",model="{replica_run.run_id}"}} 1.0' in text
    assert f'imgbench_model_queue{{model="{replica_run.run_id}"}} 0.0' in text


def test_a_full_queue_and_a_timed_out_wait_are_503_with_retry_after(tiny_results, replica_run, tiny_scenes):
    settings = dict(
        RESULTS_DIR=tiny_results, SERVE_RUNS=replica_run.run_id, MAX_QUEUED_PER_MODEL=1, REQUEST_TIMEOUT_S=1.5
    )
    with api_with(**settings) as (app, client):
        files = {"image": ("a.jpg", image_bytes(tiny_scenes), "image/jpeg")}
        model = app.state.models[replica_run.run_id]
        model.lock = threading.Lock()  # served unbatched, one request at a time (as a model without batching is)
        model.lock.acquire()  # ...and busy with a long request
        try:
            waiting = {}
            first = threading.Thread(target=lambda: waiting.update(reply=client.post("/predict", files=files)))
            first.start()
            while model.queue.count == 0:  # the first request has its place and waits for the model
                time.sleep(0.01)
            started = time.monotonic()
            refused = client.post("/predict", files=files)  # no place left: refused at once
            assert time.monotonic() - started < 1.0
            first.join()
        finally:
            model.lock.release()
        assert refused.status_code == 503 and int(refused.headers["Retry-After"]) >= 1
        assert "requests waiting" in refused.json()["detail"]
        timed_out = waiting["reply"]
        assert timed_out.status_code == 503 and "is still busy after 1.5 s" in timed_out.json()["detail"]
        assert client.post("/predict", files=files).status_code == 200  # free again: served
        text = client.get("/metrics").text
    assert f'imgbench_rejected_total{{model="{replica_run.run_id}",reason="queue full"}} 1.0' in text
    assert f'imgbench_rejected_total{{model="{replica_run.run_id}",reason="timed out"}} 1.0' in text


def test_an_unknown_served_run_stops_the_api_at_start_in_one_line(tiny_results, tmp_path):
    import subprocess
    import sys

    env = {**os.environ, "RESULTS_DIR": str(tiny_results), "SERVE_RUNS": "missing-run"}
    started = subprocess.run(
        [sys.executable, "-m", "uvicorn", "api.app:app", "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert started.returncode != 0
    assert "error: SERVE_RUNS names missing-run, which is not a run in" in started.stdout + started.stderr
    assert "Traceback" not in started.stdout + started.stderr


@pytest.mark.training
def test_the_same_app_answers_on_ray_serve_on_a_local_cluster(fastai_run, tiny_scenes, tmp_path, ray_cluster):
    """api.ray_serve deploys the app on a real Ray head (as `ray start --head` makes one): the replica loads the
    chosen run from RESULTS_DIR (forwarded through the runtime env) and scores like the app in process."""
    import subprocess
    import sys

    import requests

    from tests.conftest import free_port, wait_until_up

    address, env = ray_cluster
    port = free_port()
    env = dict(env, RESULTS_DIR=str(fastai_run.path.parent), SERVE_RUNS=fastai_run.run_id)
    command = [sys.executable, "-m", "api.ray_serve", "--address", address, "--port", str(port), "--max-queued", "4"]
    server = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_until_up(f"http://127.0.0.1:{port}/health", seconds=240)
        health = requests.get(f"http://127.0.0.1:{port}/health", timeout=30).json()
        assert health["models"] == 1 and health["skipped"] == []
        image = next(iter(load_dataset(tiny_scenes).image_paths("test")))
        with open(image, "rb") as file:
            served = requests.post(f"http://127.0.0.1:{port}/predict", files={"image": file}, timeout=60).json()
        with api_with(RESULTS_DIR=fastai_run.path.parent, SERVE_RUNS=fastai_run.run_id) as (_, client):
            with open(image, "rb") as file:
                local = client.post("/predict", files={"image": file}).json()
        assert served["predictions"][0]["scores"] == pytest.approx(local["predictions"][0]["scores"], abs=1e-6)
        assert "imgbench_requests_total" in requests.get(f"http://127.0.0.1:{port}/metrics", timeout=30).text
    finally:
        server.terminate()
        output = server.communicate(timeout=60)[0]
        print(output[-3000:])


@pytest.mark.training
def test_the_overload_tool_counts_accepted_shed_and_other_answers(fastai_run, tiny_scenes, tmp_path):
    """tools.api_overload against a real uvicorn with a 1-slot queue: 16 clients get 503s, never anything else."""
    from tools.api_overload import measure, render

    image = next(iter(load_dataset(tiny_scenes).image_paths("test")))
    os.environ["MAX_QUEUED_PER_MODEL"] = "1"
    try:
        measured = measure(fastai_run.path.parent, image, fastai_run.run_id, [16], 3.0, "uvicorn")
    finally:
        os.environ.pop("MAX_QUEUED_PER_MODEL")
    (row,) = measured["rows"]
    assert row["accepted"] > 0 and row["shed_503"] > 0 and row["other_errors"] == {}
    assert row["rss_after_mb"] and "| uvicorn |" in render([measured], "python -m tools.api_overload ...")
