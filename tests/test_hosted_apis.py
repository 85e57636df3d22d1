"""Hosted services against local stand-ins: the Vision API, Roboflow and Vertex AI's SDK (no network, no account)."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from benchmarks.data.dataset import load_dataset, write_dataset
from benchmarks.errors import BenchmarkError
from cloud_baselines.vertex_automl import (
    export_import_files,
)
from cloud_baselines.vision_api import ingest_vision_responses
from tests.cloud_helpers import (
    VISION,
    dataset_from_files,
)


def test_vertex_export_needs_a_gcs_prefix(small_dataset, tmp_path):
    with pytest.raises(BenchmarkError, match="must start with gs://"):
        export_import_files(load_dataset(small_dataset), tmp_path / "v", "bucket/x")


def test_vision_api_responses_become_a_zero_shot_run(tmp_path):
    responses = json.loads(VISION.read_text())["responses"]
    names = [r["context"]["uri"].rsplit("/", 1)[1] for r in responses]
    files = []
    for name in names:
        Image.new("RGB", (16, 16)).save(tmp_path / name)
        files.append(tmp_path / name)

    def has(name, wanted):
        return any(
            a["description"] == wanted
            for r in responses
            if r["context"]["uri"].endswith(name)
            for a in r.get("labelAnnotations", [])
        )

    root = dataset_from_files(
        tmp_path / "posters", files, lambda p: ["art"] if has(p.name, "Art") else ["other"], ["art", "other"]
    )
    (tmp_path / "map.json").write_text(json.dumps({"Art": "art", "Visual arts": "art", "Font": "other"}))
    run = ingest_vision_responses(VISION, load_dataset(root), tmp_path / "results", tmp_path / "map.json")
    predictions = pd.read_csv(run.path / "predictions.csv")
    assert len(predictions) == len(names) and predictions["art"].max() > 0.5
    snake = {
        "responses": [{"label_annotations": r.get("labelAnnotations", []), "context": r["context"]} for r in responses]
    }
    (tmp_path / "snake.json").write_text(json.dumps(snake))
    again = ingest_vision_responses(
        tmp_path / "snake.json", load_dataset(root), tmp_path / "results", tmp_path / "map.json"
    )
    pd.testing.assert_frame_equal(predictions, pd.read_csv(again.path / "predictions.csv"))


class FakeServices:
    """Vision API and Roboflow stand-ins on 127.0.0.1: each answers from the image's mean colour."""

    def __init__(self):
        import http.server
        import threading

        calls = self.calls = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                import base64
                import io

                body = self.rfile.read(int(self.headers["Content-Length"]))
                calls.append(self.path)
                if "key=bad" in self.path:
                    return self.reply(403, {"error": {"message": "API key not valid"}})
                if self.path.startswith("/vision"):
                    content = json.loads(body)["requests"][0]["image"]["content"]
                    red = np.asarray(Image.open(io.BytesIO(base64.b64decode(content))))[..., 0].mean() / 255
                    labels = [{"description": "Red", "score": float(red)}, {"description": "Art", "score": 0.5}]
                    return self.reply(200, {"responses": [{"labelAnnotations": labels}]})
                red = np.asarray(Image.open(io.BytesIO(base64.b64decode(body))))[..., 0].mean() / 255
                return self.reply(
                    200,
                    {
                        "predictions": {"red": {"confidence": float(red)}, "blue": {"confidence": float(1 - red)}},
                        "predicted_classes": [],
                    },
                )

            def reply(self, code, data):
                payload = json.dumps(data).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def services():
    fake = FakeServices()
    yield fake
    fake.server.shutdown()


@pytest.fixture
def red_blue(tmp_path) -> Path:
    rows = []
    for i in range(12):
        red = i % 2 == 0
        rel = f"images/{i}.png"
        (tmp_path / "rb" / "images").mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (20, 20), (220 if red else 10, i, 0 if red else 220)).save(
            tmp_path / "rb" / rel
        )  # all different
        rows.append((rel, ("red",) if red else ("blue",), ["train", "valid", "test"][i % 3]))
    write_dataset(tmp_path / "rb", pd.DataFrame(rows, columns=["image", "labels", "split"]), ["red", "blue"], name="rb")
    return tmp_path / "rb"


def test_vision_annotate_calls_the_api_once_per_image_and_caches(services, red_blue, tmp_path):
    from cloud_baselines.vision_api import annotate_dataset

    (tmp_path / "map.json").write_text(json.dumps({"Red": "red"}))
    run = annotate_dataset(
        load_dataset(red_blue), tmp_path / "results", "good", tmp_path / "map.json", endpoint=services.url + "/vision"
    )
    assert len(services.calls) == 8 and "key=good" in services.calls[0]
    predictions = pd.read_csv(run.path / "predictions.csv")
    assert (predictions["red"] > 0.5).sum() == 4 and (predictions["blue"] == 0).all()
    annotate_dataset(
        load_dataset(red_blue), tmp_path / "results", "good", tmp_path / "map.json", endpoint=services.url + "/vision"
    )
    assert len(services.calls) == 8  # every answer came from the cache


def test_hosted_api_errors_are_one_line(services, red_blue, tmp_path):
    from cloud_baselines.vision_api import annotate_dataset

    with pytest.raises(
        BenchmarkError,
        match=r"Vision API: HTTP 403 from http://127.0.0.1:\d+/vision: API key not valid \(check the API key\)",
    ):
        annotate_dataset(load_dataset(red_blue), tmp_path / "r", "bad", endpoint=services.url + "/vision")
    with pytest.raises(BenchmarkError, match="Vision API: cannot reach"):
        annotate_dataset(load_dataset(red_blue), tmp_path / "r", "good", endpoint="http://127.0.0.1:9/vision")


def test_roboflow_export_predict_and_ingest(services, red_blue, tmp_path):
    from cloud_baselines.roboflow import classify_dataset, export_for_roboflow, ingest_saved

    counts = export_for_roboflow(load_dataset(red_blue), tmp_path / "rf")
    table = pd.read_csv(tmp_path / "rf" / "train" / "_classes.csv")
    assert counts == {"train": 4, "valid": 4, "test": 4} and list(table.columns) == ["filename", "red", "blue"]
    run = classify_dataset(load_dataset(red_blue), tmp_path / "results", "rb/1", "good", endpoint=services.url)
    assert json.loads((run.path / "metrics.json").read_text())["overall"]["macro_roc_auc"] == 1.0
    rows = load_dataset(red_blue).rows(["valid", "test"])
    with open(tmp_path / "saved.jsonl", "w") as out:
        for rel in rows["image"]:
            red = rel in set(load_dataset(red_blue).items[load_dataset(red_blue).items["labels"] == ("red",)]["image"])
            out.write(
                json.dumps(
                    {
                        "image": rel.replace("/", "__"),
                        "response": {
                            "predictions": [
                                {"class": "red", "confidence": 0.9 if red else 0.2},
                                {"class": "blue", "confidence": 0.1 if red else 0.8},
                            ]
                        },
                    }
                )
                + "\n"
            )
    again = ingest_saved(tmp_path / "saved.jsonl", load_dataset(red_blue), tmp_path / "results")
    assert json.loads((again.path / "run.json").read_text())["params"]["single_label_by_construction"] is True


class FakeGcs:
    """google-cloud-storage stand-in: blobs are local files in a dict."""

    def __init__(self):
        self.files, self.uploads = {}, []
        gcs = self

        class Blob:
            def __init__(self, name):
                self.name = name

            def exists(self):
                return self.name in gcs.files

            def upload_from_filename(self, path):
                gcs.files[self.name] = Path(path).read_bytes()
                gcs.uploads.append(self.name)

            def download_to_filename(self, path):
                Path(path).write_bytes(gcs.files[self.name])

        class Bucket:
            def blob(self, name):
                return Blob(name)

        class Client:
            def __init__(self, project=None):
                pass

            def bucket(self, name):
                return Bucket()

        self.Client, self.Blob = Client, Blob


class FakeAiplatform:
    """google-cloud-aiplatform stand-in: 'training' learns nothing; batch prediction answers the true labels."""

    def __init__(self, gcs: FakeGcs, truth: dict[str, list[str]]):
        self.calls = []
        fake = self

        class ImageDataset:
            @staticmethod
            def create(**kwargs):
                fake.calls.append(("dataset", kwargs))
                return "dataset"

        class Batch:
            def iter_outputs(self):
                return [gcs.Blob("x/predictions/prediction-model/predictions_00001.jsonl")]

        class Model:
            def batch_predict(self, **kwargs):
                fake.calls.append(("batch", kwargs))
                lines = gcs.files["stampscenes-test/batch_input.jsonl"].decode().splitlines()
                out = []
                for line in lines:
                    uri = json.loads(line)["content"]
                    names = truth[uri.split("stampscenes-test/", 1)[1]] or ["cat"]
                    out.append(
                        json.dumps(
                            {
                                "instance": {"content": uri},
                                "prediction": {"ids": ["1"], "displayNames": names, "confidences": [0.9] * len(names)},
                            }
                        )
                    )
                gcs.files["x/predictions/prediction-model/predictions_00001.jsonl"] = ("\n".join(out) + "\n").encode()
                return Batch()

        class AutoMLImageTrainingJob:
            def __init__(self, **kwargs):
                fake.calls.append(("job", kwargs))

            def run(self, **kwargs):
                fake.calls.append(("run", kwargs))
                return Model()

        self.ImageDataset, self.AutoMLImageTrainingJob = ImageDataset, AutoMLImageTrainingJob
        self.schema = type(
            "schema",
            (),
            {
                "dataset": type(
                    "d",
                    (),
                    {
                        "ioformat": type(
                            "i", (), {"image": type("im", (), {"multi_label_classification": "gs://schema/multi"})}
                        )
                    },
                )
            },
        )

    def init(self, **kwargs):
        self.calls.append(("init", kwargs))


def test_vertex_train_flow_against_sdk_fakes(small_dataset, tmp_path, capsys):
    from cloud_baselines.vertex_online import VertexPlan, run_vertex

    dataset = load_dataset(small_dataset)
    plan = VertexPlan("proj", "us-central1", "gs://bucket", "stampscenes-test", 8000, "cloud")
    assert run_vertex(dataset, plan, tmp_path / "r", dry_run=True) is None
    out = capsys.readouterr().out
    assert "8 node hours" in out and "multi_label=True" in out and not (tmp_path / "r").exists()

    gcs = FakeGcs()
    truth = dict(zip(dataset.items["image"], [list(labels) for labels in dataset.items["labels"]]))
    vertex = FakeAiplatform(gcs, truth)
    run = run_vertex(dataset, plan, tmp_path / "r", aiplatform=vertex, storage=gcs)
    assert len([u for u in gcs.uploads if "/images/" in u]) == len(dataset.items)
    job = dict(vertex.calls)["job"]
    assert job["multi_label"] is True and job["model_type"] == "CLOUD"
    assert dict(vertex.calls)["run"]["training_filter_split"] == "labels.aiplatform.googleapis.com/ml_use=training"
    assert json.loads((run.path / "metrics.json").read_text())["overall"]["macro_roc_auc"] > 0.7
    run_vertex(dataset, plan, tmp_path / "r", aiplatform=vertex, storage=gcs)  # images already uploaded are skipped
    assert len([u for u in gcs.uploads if "/images/" in u]) == len(dataset.items)


def test_vertex_plan_errors_are_clear(small_dataset):
    from cloud_baselines.vertex_online import VertexPlan, run_vertex

    with pytest.raises(BenchmarkError, match="no project"):
        run_vertex(load_dataset(small_dataset), VertexPlan("", "us-central1", "gs://b", "n"), Path("r"), dry_run=True)
    with pytest.raises(BenchmarkError, match="8000..800000 milli node hours"):
        run_vertex(
            load_dataset(small_dataset), VertexPlan("p", "us-central1", "gs://b", "n", 100), Path("r"), dry_run=True
        )
