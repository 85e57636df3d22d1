"""Teachable Machine replica: both heads on tiny data, cached embeddings, the shipped base, and TM agreement."""

import json

import numpy as np
import pandas as pd
import pytest

from benchmarks.data.dataset import load_dataset
from benchmarks.data.images import open_rgb
from cloud_baselines.teachable_machine import open_tm_export
from tests.cloud_helpers import FRUIT, FRUIT_IMAGES, TM, dataset_from_files
from tm_replica import replica as tm_replica

pytestmark = pytest.mark.training  # trains models on tiny data: `make test-fast` leaves these out


def test_both_heads_train_and_embeddings_are_computed_once(tiny_scenes, tmp_path, monkeypatch):
    dataset = load_dataset(tiny_scenes)
    run = tm_replica.train_replica(dataset, tmp_path, epochs=3)
    info = json.loads((run.path / "run.json").read_text())
    assert info["kind"] == "teachable_machine_replica" and info["params"]["single_label_by_construction"] is True
    assert (run.path / "metrics.json").is_file() and info["timings"]["train_s"] > 0
    assert info["model"]["size_bytes"] > 1e6 and (run.path / tm_replica.HEAD_FILE).is_file()  # float32 base + head

    def no_recompute(*args, **kwargs):
        raise AssertionError("embeddings should come from the cache")

    monkeypatch.setattr(tm_replica, "open_rgb", no_recompute)  # embeddings read images only when not cached
    sigmoid = tm_replica.train_replica(dataset, tmp_path, head="sigmoid", epochs=3)
    assert json.loads((sigmoid.path / "run.json").read_text())["params"]["single_label_by_construction"] is False


def test_saved_replica_predicts_new_images_as_it_scored_the_test_split(replica_run, tiny_scenes):
    import pandas as pd

    from benchmarks.serving.predictors import load_predictor

    dataset = load_dataset(tiny_scenes)
    predictor = load_predictor(replica_run.path)
    table = pd.read_csv(replica_run.path / "predictions.csv").set_index("image")
    rels = list(dataset.rows("test")["image"][:4])
    scores = predictor.predict([open_rgb(dataset.root / rel) for rel in rels])
    np.testing.assert_allclose(scores, table.loc[rels, dataset.labels].to_numpy(float), atol=1e-4)


def test_tm_upload_mirrors_tm_export(small_dataset):
    rows, names, classes = tm_replica.tm_upload(load_dataset(small_dataset))
    assert classes == ["cat", "dog", "none"] and names.count("cat") == 2 and names.count("none") == 1  # train only
    keep = tm_replica.holdout_split(["a"] * 20 + ["b"] * 10, seed=0)
    assert keep[:20].sum() == 17 and keep[20:].sum() == 9  # 15% of each class held out, as TM does


def test_shipped_base_is_the_base_inside_tm_exports():
    shipped, _ = tm_replica.load_base_weights(None)
    from_export, origin = tm_replica.load_base_weights(TM / "keras_waste4")
    assert set(shipped) == set(from_export) and len(shipped) == 260
    assert (
        max(np.abs(shipped[k] - from_export[k]).max() / (np.abs(from_export[k]).max() + 1e-6) for k in shipped) < 1e-3
    )


def test_replica_trained_on_the_fruit_samples_agrees_with_the_real_tm_model(tmp_path):
    labels = ["fresh_apple", "fresh_banana", "fresh_orange", "rotten_apple", "rotten_orange", "rotten_banana"]
    root = dataset_from_files(tmp_path / "fruit", FRUIT_IMAGES, lambda p: ["_".join(p.stem.split("_")[:2])], labels)
    table = pd.read_csv(root / "labels.csv", keep_default_na=False)
    # the replica trains on train only (as tm-export uploads): one real image per class there, the other in test
    table["split"] = table["split"].map({"valid": "train", "train": "valid", "test": "test"})
    table.to_csv(root / "labels.csv", index=False)
    dataset = load_dataset(root)
    run = tm_replica.train_replica(dataset, tmp_path / "results", epochs=50, seed=0)
    scores = pd.read_csv(run.path / "predictions.csv")
    test = scores[scores["split"] == "test"]
    tm, classes, _ = open_tm_export(FRUIT / "converted_tflite")
    agree = 0
    for _, row in test.iterrows():
        replica_top = row[labels].astype(float).idxmax()
        tm_top = classes[tm.predict(open_rgb(root / row["image"])).argmax()].lower().replace(" ", "_")
        agree += replica_top == tm_top
    assert agree >= 4  # 6 unseen test images, one training image per class; chance would be 1
