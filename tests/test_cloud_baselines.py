"""Cloud adapters on the real exports in tests/fixtures (Teachable Machine, AutoML Edge, Vision API)."""

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from benchmarks.data.dataset import load_dataset, write_dataset
from benchmarks.data.images import open_rgb
from benchmarks.errors import BenchmarkError
from benchmarks.evaluation import evaluate as evaluate_module
from benchmarks.exports.class_mapping import map_classes, read_indexed_labels
from cloud_baselines.cli import main as cloud_main
from cloud_baselines.teachable_machine import evaluate_tm_export, export_for_tm, open_tm_export
from cloud_baselines.vertex_automl import (
    evaluate_edge_export,
    export_import_files,
    ingest_batch_predictions,
    open_edge_export,
)
from cloud_baselines.vision_api import ingest_vision_responses

FIXTURES = Path(__file__).resolve().parent / "fixtures"
TM = FIXTURES / "teachable_machine"
FRUIT = TM / "tflite_fruit6"
FRUIT_IMAGES = sorted((FRUIT / "sample_images").glob("*.png"))
FLOWERS = FIXTURES / "vertex_automl" / "edge_tflite_flowers5"
VISION = FIXTURES / "vision_api" / "3998-4115-output-201-to-217.json"
MADE_HERE = FIXTURES / "made_here"  # formats with no public example: built with their own converters (README there)
PHOTOS = sorted((FLOWERS / "ios_resources").glob("*.jp*g"))


@pytest.fixture(autouse=True)
def fewer_resamples(monkeypatch):
    monkeypatch.setattr(evaluate_module, "BOOTSTRAP_RESAMPLES", 50)


def true_fruit_class(path: Path) -> str:
    """``rotten_banana_53.png`` → ``ROTTEN BANANA``."""
    return " ".join(path.stem.split("_")[:2]).upper()


def dataset_from_files(root: Path, files: list[Path], labels_of, labels: list[str]) -> Path:
    """A dataset whose valid and test splits hold ``files`` (alternating), with a token train split."""
    rows = []
    for i, path in enumerate(files):
        rel = f"images/{path.name}"
        (root / "images").mkdir(parents=True, exist_ok=True)
        shutil.copy(path, root / rel)
        rows.append((rel, tuple(labels_of(path)), "valid" if i % 2 else "test"))
    for i, label in enumerate(labels):
        rel = f"images/train_{i}.png"
        Image.new("RGB", (32, 32), (i * 20, 0, 0)).save(root / rel)
        rows.append((rel, (label,), "train"))
    write_dataset(root, pd.DataFrame(rows, columns=["image", "labels", "split"]), labels, name=root.name)
    return root


def test_tm_float_tflite_gets_every_sample_image_right():
    classifier, classes, _ = open_tm_export(FRUIT / "converted_tflite")
    for path in FRUIT_IMAGES:
        assert classes[classifier.predict(open_rgb(path)).argmax()] == true_fruit_class(path)


@pytest.mark.parametrize(
    ("open_export", "batches"),
    [
        (lambda: open_tm_export(FRUIT / "converted_tflite"), True),
        (lambda: open_tm_export(FRUIT / "converted_tflite_quantized"), True),
        (lambda: open_edge_export(FLOWERS), False),  # its graph has the batch of 1 baked in: one image per call
    ],
    ids=["tm-float", "tm-quantized", "automl-edge"],
)
def test_tflite_batches_score_what_single_calls_score(open_export, batches):
    """/predict/batch gives a TFLite export the whole batch in one interpreter call (input resized to N) where
    its graph allows, else one image per call; the scores are the same either way."""
    classifier = open_export()[0]
    images = [open_rgb(p) for p in (FRUIT_IMAGES[:5] + PHOTOS[:2])]
    batched = classifier.predict_batch(images)
    assert classifier._batchable == batches and classifier._batch == (len(images) if batches else 1)
    single = np.stack([classifier.predict(image) for image in images])
    np.testing.assert_allclose(batched, single, atol=1e-5)
    assert classifier.predict_batch(images[:3]).shape == (3, classifier.n_classes)


def test_tm_quantized_twin_reads_its_quantization_and_mostly_agrees():
    quantized, classes, _ = open_tm_export(FRUIT / "converted_tflite_quantized")
    float_model, _, _ = open_tm_export(FRUIT / "converted_tflite")
    described = quantized.describe()
    assert described["input_dtype"] == "uint8" and described["output_quantization"]["scale"] == pytest.approx(1 / 256)
    agree = [quantized.predict(open_rgb(p)).argmax() == float_model.predict(open_rgb(p)).argmax() for p in FRUIT_IMAGES]
    assert sum(agree) >= 10  # 11 of 12 (the 2021 quantized export is calibrated to [0, 1]; see FORMATS.md)
    assert abs(quantized.predict(open_rgb(FRUIT_IMAGES[0])).sum() - 1) < 0.02


@pytest.mark.parametrize("export", ["keras_waste4", "tfjs_trash5"])
def test_tm_keras_and_tfjs_exports_load_under_keras3(export):
    classifier, classes, _ = open_tm_export(TM / export)
    assert classifier.n_classes == len(classes) in (4, 5)
    scores = classifier.predict(
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (300, 200, 3), dtype=np.uint8))
    )
    assert scores.shape == (len(classes),) and abs(scores.sum() - 1) < 1e-4


def test_tm_h5_matches_its_tfjs_sibling_format_and_converted_zip(tmp_path):
    with __import__("zipfile").ZipFile(tmp_path / "converted_keras.zip", "w") as archive:
        for name in ("keras_model.h5", "labels.txt"):
            archive.write(TM / "keras_waste4" / name, name)
    from_zip, classes, _ = open_tm_export(tmp_path / "converted_keras.zip")
    from_folder, _, _ = open_tm_export(TM / "keras_waste4")
    image = open_rgb(FRUIT_IMAGES[0])
    np.testing.assert_allclose(from_zip.predict(image), from_folder.predict(image), atol=1e-6)
    assert classes == ["cardboard", "plastic", "glass", "metal"]


def test_old_tfjs_export_without_image_size_uses_tm_default(tmp_path):
    folder = tmp_path / "tm"
    shutil.copytree(TM / "tfjs_trash5", folder)
    metadata = json.loads((folder / "metadata.json").read_text())
    metadata.pop("imageSize")
    (folder / "metadata.json").write_text(json.dumps(metadata))
    classifier, classes, _ = open_tm_export(folder)
    assert classifier.size == 224 and classes == metadata["labels"]


def test_tm_eval_writes_a_scored_run_with_the_mapping(tmp_path, capsys):
    labels = ["fresh_apple", "fresh_banana", "fresh_orange", "rotten_apple", "rotten_orange", "rotten_banana"]
    root = dataset_from_files(tmp_path / "fruit", FRUIT_IMAGES, lambda p: ["_".join(p.stem.split("_")[:2])], labels)
    run = evaluate_tm_export(FRUIT / "converted_tflite", load_dataset(root), tmp_path / "results")
    assert "class 'FRESH APPLE' -> fresh_apple" in capsys.readouterr().out
    info = json.loads((run.path / "run.json").read_text())
    assert info["kind"] == "teachable_machine" and info["params"]["single_label_by_construction"] is True
    metrics = json.loads((run.path / "metrics.json").read_text())
    assert metrics["overall"]["macro_roc_auc"] > 0.95


def test_labels_txt_with_spaces_and_two_digit_indexes(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_text("".join(f"{i} class number {i}\n" for i in range(12)))
    assert read_indexed_labels(path)[10] == "class number 10"
    path.write_text("0 a\nb\n")
    with pytest.raises(BenchmarkError, match=r"labels.txt:2: expected '<index> <class name>'"):
        read_indexed_labels(path)


def test_class_mapping_by_name_and_by_file(tmp_path):
    mapping = map_classes(["Fresh-Apple", "none"], ["fresh_apple", "pear"])
    assert mapping.targets == ["fresh_apple", None]
    assert any("label 'pear' has no class" in line for line in mapping.report())
    (tmp_path / "m.json").write_text(json.dumps({"none": "pear"}))
    assert map_classes(["Fresh-Apple", "none"], ["fresh_apple", "pear"], tmp_path / "m.json").targets == [None, "pear"]
    with pytest.raises(BenchmarkError, match="none of the model's classes"):
        map_classes(["x"], ["y"])


@pytest.mark.parametrize(
    "damage, message",
    [
        ("edgetpu", "an Edge TPU model"),
        ("truncated_tflite", "not a readable TFLite model"),
        ("label_count", "outputs 6 classes but its label file lists 5"),
        ("truncated_h5", "not a readable HDF5 model"),
        ("truncated_bin", "weights.bin is shorter"),
        ("empty", "no Teachable Machine export found"),
    ],
)
def test_bad_exports_are_one_clear_line(tmp_path, damage, message):
    folder = tmp_path / "export"
    folder.mkdir()
    if damage == "edgetpu":
        (folder / "model_edgetpu.tflite").write_bytes(b"TFL3" + b"\0" * 64 + b"edgetpu-custom-op")
        shutil.copy(FRUIT / "converted_tflite" / "labels.txt", folder)
    elif damage == "truncated_tflite":
        (folder / "model.tflite").write_bytes((FRUIT / "converted_tflite" / "model_unquant.tflite").read_bytes()[:5000])
        shutil.copy(FRUIT / "converted_tflite" / "labels.txt", folder)
    elif damage == "label_count":
        shutil.copy(FRUIT / "converted_tflite" / "model_unquant.tflite", folder)
        (folder / "labels.txt").write_text("0 a\n1 b\n2 c\n3 d\n4 e\n")
    elif damage == "truncated_h5":
        (folder / "keras_model.h5").write_bytes((TM / "keras_waste4" / "keras_model.h5").read_bytes()[:4000])
        shutil.copy(TM / "keras_waste4" / "labels.txt", folder)
    elif damage == "truncated_bin":
        for name in ("model.json", "metadata.json"):
            shutil.copy(TM / "tfjs_trash5" / name, folder)
        (folder / "weights.bin").write_bytes((TM / "tfjs_trash5" / "weights.bin").read_bytes()[:100000])
    dataset = tmp_path / "ds"
    dataset_from_files(dataset, FRUIT_IMAGES[:4], lambda p: ["a"], ["a", "b"])
    with pytest.raises(BenchmarkError, match=message):
        evaluate_tm_export(folder, load_dataset(dataset), tmp_path / "results")
    assert cloud_main(["tm-eval", str(folder), str(dataset), "--results", str(tmp_path / "results")]) == 2


def test_automl_edge_export_gets_its_sample_photos_right():
    classifier, classes, _ = open_edge_export(FLOWERS)
    assert classifier.describe()["input_dtype"] == "uint8"
    for photo in sorted((FLOWERS / "ios_resources").glob("*.jp*g")):
        scores = classifier.predict(open_rgb(photo))
        assert classes[scores.argmax()].rstrip("s") == photo.stem.rstrip("s")  # sunflower.jpg is class 'sunflowers'


def test_vertex_eval_and_ingest_make_runs(tmp_path):
    photos = sorted((FLOWERS / "ios_resources").glob("*.jp*g"))
    labels = ["daisy", "dandelion", "roses", "sunflowers", "tulips"]
    name_of = {"sunflower": "sunflowers"}
    root = dataset_from_files(tmp_path / "flowers", photos, lambda p: [name_of.get(p.stem, p.stem)], labels)
    dataset = load_dataset(root)
    run = evaluate_edge_export(FLOWERS, dataset, tmp_path / "results")
    assert json.loads((run.path / "run.json").read_text())["model"]["input_quantization"]["zero_point"] == 128

    files = export_import_files(dataset, tmp_path / "vertex", "gs://bucket/flowers")
    first = json.loads(files["jsonl"].read_text().splitlines()[0])
    assert first["imageGcsUri"].startswith("gs://bucket/flowers/images/")
    assert files["csv"].read_text().splitlines()[0].split(",")[0] in ("training", "validation", "test")

    rows = dataset.rows(["valid", "test"])
    with open(tmp_path / "predictions_00001.jsonl", "w") as out:
        for rel, true in zip(rows["image"], rows["labels"]):
            out.write(
                json.dumps(
                    {
                        "instance": {"content": f"gs://bucket/flowers/{rel}", "mimeType": "image/jpeg"},
                        "prediction": {
                            "ids": ["1", "2"],
                            "displayNames": [true[0], "background"],
                            "confidences": [0.9, 0.05],
                        },
                    }
                )
                + "\n"
            )
    run = ingest_batch_predictions(tmp_path / "predictions_00001.jsonl", dataset, tmp_path / "results")
    metrics = json.loads((run.path / "metrics.json").read_text())
    assert metrics["overall"]["macro_roc_auc"] > 0.9
    (tmp_path / "partial.jsonl").write_text((tmp_path / "predictions_00001.jsonl").read_text().splitlines()[0] + "\n")
    with pytest.raises(BenchmarkError, match="no prediction for 4 of 5"):
        ingest_batch_predictions(tmp_path / "partial.jsonl", dataset, tmp_path / "results")


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


def test_tm_export_makes_one_class_per_label_plus_none(small_dataset, tmp_path):
    counts = export_for_tm(load_dataset(small_dataset), tmp_path / "tm")
    assert counts == {"cat": 2, "dog": 2, "none": 1}  # train only (thresholds are tuned on valid); 'cat dog' in both
    assert (tmp_path / "tm" / "cat.zip").is_file() and len(list((tmp_path / "tm" / "dog").iterdir())) == 2
    with pytest.raises(BenchmarkError, match="already exists"):
        export_for_tm(load_dataset(small_dataset), tmp_path / "tm")


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


@pytest.fixture
def fruit_and_flowers(tmp_path) -> Path:
    """One dataset with the fruit samples and the flower photos: both real exports score it (each its own labels)."""
    fruit = ["fresh_apple", "fresh_banana", "fresh_orange", "rotten_apple", "rotten_orange", "rotten_banana"]
    flowers = ["daisy", "dandelion", "roses", "sunflowers", "tulips"]
    photos = sorted((FLOWERS / "ios_resources").glob("*.jp*g"))

    def labels_of(path: Path) -> list[str]:
        return (
            [{"sunflower": "sunflowers"}.get(path.stem, path.stem)]
            if path in photos
            else ["_".join(path.stem.split("_")[:2])]
        )

    return dataset_from_files(tmp_path / "mixed", FRUIT_IMAGES + photos, labels_of, fruit + flowers)


def test_evaluated_exports_predict_new_images_as_they_scored_the_test_split(fruit_and_flowers, tmp_path):
    from benchmarks.evaluation.results import load_run
    from benchmarks.serving.predictors import can_predict, load_predictor

    dataset = load_dataset(fruit_and_flowers)
    runs = [
        evaluate_tm_export(FRUIT / "converted_tflite", dataset, tmp_path / "results"),
        evaluate_edge_export(FLOWERS, dataset, tmp_path / "results"),
    ]
    written = pd.read_csv(runs[0].path / "predictions.csv").set_index("image")
    for run in runs:
        run = load_run(run.path)
        assert can_predict(run)
        predictor = load_predictor(run)
        table = pd.read_csv(run.path / "predictions.csv").set_index("image")
        for rel in table.index[:4]:
            scores = predictor.predict([open_rgb(dataset.root / rel)])[0]
            np.testing.assert_allclose(scores, table.loc[rel, dataset.labels].to_numpy(float), atol=2e-5)
    assert written.loc[:, ["daisy", "tulips"]].to_numpy().max() == 0  # the fruit model scores no flower label


def test_batch_prediction_runs_and_moved_exports_cannot_predict(tmp_path):
    from benchmarks.errors import RunError
    from benchmarks.evaluation.results import load_run
    from benchmarks.serving.predictors import can_predict, load_predictor

    labels = ["fresh_apple", "fresh_banana", "fresh_orange", "rotten_apple", "rotten_orange", "rotten_banana"]
    root = dataset_from_files(tmp_path / "fruit", FRUIT_IMAGES, lambda p: ["_".join(p.stem.split("_")[:2])], labels)
    dataset = load_dataset(root)
    rows = dataset.rows(["valid", "test"])
    with open(tmp_path / "predictions_00001.jsonl", "w") as out:
        for rel, true in zip(rows["image"], rows["labels"]):
            out.write(
                json.dumps(
                    {
                        "instance": {"content": f"gs://b/{rel}"},
                        "prediction": {"displayNames": [true[0]], "confidences": [0.9]},
                    }
                )
                + "\n"
            )
    batch = ingest_batch_predictions(tmp_path / "predictions_00001.jsonl", dataset, tmp_path / "results")
    assert not can_predict(load_run(batch.path))

    export = tmp_path / "export"
    shutil.copytree(FRUIT / "converted_tflite", export)
    run = evaluate_tm_export(export, dataset, tmp_path / "results")
    shutil.rmtree(export)
    with pytest.raises(RunError, match="no longer there"):
        load_predictor(run.path)


def test_try_an_image_page_shows_the_evaluated_exports_side_by_side(fruit_and_flowers, tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from dashboard.logic import datasets, leaderboard

    dataset = load_dataset(fruit_and_flowers)
    evaluate_tm_export(FRUIT / "converted_tflite", dataset, tmp_path / "results")
    evaluate_edge_export(FLOWERS, dataset, tmp_path / "results")
    monkeypatch.setattr(datasets, "DEFAULT_DATA_ROOT", fruit_and_flowers.parent)
    monkeypatch.setattr(leaderboard, "DEFAULT_RESULTS", tmp_path / "results")
    app = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "streamlit_app.py"), default_timeout=120)
    app.session_state["page"] = "Try an image"
    app.run()
    app.selectbox(key="test_image").select_index(1).run()
    assert not app.exception and not app.error, (app.exception, [e.value for e in app.error])
    shown = [m.value for m in app.markdown]
    assert sum("predicted:" in m for m in shown) == 2
    assert any(m.startswith("**teachable_machine**") for m in shown) and any(
        m.startswith("**vertex_automl**") for m in shown
    )


@pytest.mark.parametrize(
    "export, opener, tolerance",
    [
        ("tm_tiny_gray2", open_tm_export, 1e-5),
        ("automl_tfjs_waste4", open_edge_export, 1e-4),
        ("automl_container_waste4", open_edge_export, 1e-5),
    ],
)
def test_every_export_format_scores_what_its_source_model_scored(export, opener, tolerance):
    """TM's tiny grayscale TF.js model, AutoML Edge's TF.js graph model and its Container SavedModel reproduce the
    scores their source network gave the photos before conversion (expected.json, written by build_exports.py)."""
    expected = json.loads((MADE_HERE / export / "expected.json").read_text())
    classifier, classes, _ = opener(MADE_HERE / export)
    assert sorted(classes) == sorted(expected["classes"])
    got = classifier.predict_batch([open_rgb(p) for p in PHOTOS])
    want = [[expected["scores"][p.name][expected["classes"].index(c)] for c in classes] for p in PHOTOS]
    np.testing.assert_allclose(got, want, atol=tolerance)
    assert got.std(axis=0).max() > 1e-3  # the photos score differently: a reader feeding wrong pixels would show


def test_tiny_model_reads_its_input_from_the_export():
    classifier, classes, _ = open_tm_export(MADE_HERE / "tm_tiny_gray2")
    assert (classifier.size, classifier.channels) == (96, 1) and classes == ["Class 1", "Class 2"]
    assert classifier.describe()["format"] == "tfjs-tiny-grayscale"


@pytest.mark.parametrize(
    "command, export, mapping",
    [
        ("tm-eval", "tm_tiny_gray2", {"Class 1": "flower", "Class 2": None}),
        ("vertex-eval", "automl_tfjs_waste4", {"cardboard": "flower"}),
        ("vertex-eval", "automl_container_waste4", {"cardboard": "flower"}),
    ],
)
def test_eval_commands_print_a_summary_for_single_class_data(tmp_path, capsys, command, export, mapping):
    """Every valid/test image carries the one label: AUC is undefined, and the run is still made and summarised."""
    root = dataset_from_files(tmp_path / "one", PHOTOS, lambda p: ["flower"], ["flower"])
    (tmp_path / "mapping.json").write_text(json.dumps(mapping))
    argv = [command, str(MADE_HERE / export), str(root), "--results", str(tmp_path / "r")]
    assert cloud_main([*argv, "--mapping", str(tmp_path / "mapping.json")]) == 0
    out = capsys.readouterr().out
    assert "test macro AUC n/a, mAP" in out
    (run,) = (tmp_path / "r").iterdir()
    assert json.loads((run / "run.json").read_text())["status"] == "done"

    from benchmarks.serving.predictors import load_predictor  # the served model is the scored one

    table = pd.read_csv(run / "predictions.csv").set_index("image")
    served = load_predictor(run).predict([open_rgb(root / rel) for rel in table.index[:3]])
    np.testing.assert_allclose(served[:, 0], table["flower"].to_numpy(float)[:3], atol=1e-5)


def test_tfjs_fused_depthwise_op_is_split_back_into_tensorflow_ops(tmp_path):
    """TF.js's converter fuses depthwise conv + bias + Relu6 into its own op; TensorFlow runs the split form."""
    import tensorflow as tf
    from google.protobuf import json_format

    from benchmarks.exports.image_prep import automl_fit, to_minus_one_one
    from cloud_baselines.tfjs_graph import GraphModelClassifier

    rng = np.random.default_rng(0)
    kernel, bias = rng.normal(size=(3, 3, 3, 1)).astype("f4"), rng.normal(size=3).astype("f4")
    graph = tf.Graph()
    with graph.as_default():
        image = tf.compat.v1.placeholder(tf.float32, [1, 8, 8, 3], name="image")
        w, b = tf.constant(kernel, name="w"), tf.constant(bias, name="b")
        y = tf.nn.relu6(tf.nn.bias_add(tf.nn.depthwise_conv2d(image, w, [1, 1, 1, 1], "SAME"), b), name="act")
        tf.nn.softmax(tf.reduce_mean(y, axis=[1, 2]), name="scores")
    nodes = json_format.MessageToDict(graph.as_graph_def())["node"]
    depthwise = next(n for n in nodes if n["op"] == "DepthwiseConv2dNative")
    fused = {
        "name": "act",
        "op": "FusedDepthwiseConv2dNative",
        "input": [*depthwise["input"], "b"],
        "attr": {
            **depthwise["attr"],
            "fused_ops": {"list": {"s": ["Qmlhc0FkZA==", "UmVsdTY="]}},
            "num_args": {"i": "1"},
        },
    }  # fused_ops ["BiasAdd", "Relu6"], base64 as protobuf JSON writes bytes
    kept = [n for n in nodes if n["op"] not in ("DepthwiseConv2dNative", "BiasAdd", "Relu6")] + [fused]
    for node in kept:
        if node["name"] in ("w", "b"):
            node["attr"]["value"]["tensor"].pop("tensorContent", None)
    (tmp_path / "model.json").write_text(
        json.dumps(
            {
                "format": "graph-model",
                "modelTopology": {"node": kept},
                "weightsManifest": [
                    {
                        "paths": ["w.bin"],
                        "weights": [
                            {"name": "w", "shape": [3, 3, 3, 1], "dtype": "float32"},
                            {"name": "b", "shape": [3], "dtype": "float32"},
                        ],
                    }
                ],
            }
        )
    )
    (tmp_path / "w.bin").write_bytes(kernel.tobytes() + bias.tobytes())
    photo = open_rgb(PHOTOS[0])
    x = to_minus_one_one(automl_fit(photo, 8))[None]
    with tf.compat.v1.Session(graph=graph) as session:
        want = session.run("scores:0", {"image:0": x})
    np.testing.assert_allclose(GraphModelClassifier(tmp_path / "model.json").predict(photo), want[0], atol=1e-6)
