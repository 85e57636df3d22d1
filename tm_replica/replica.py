"""Teachable Machine replica: TM's own network and training recipe, trained locally on any dataset.

Every TM image model is a frozen ImageNet MobileNetV2 (width 0.35, 224 px) + global average pooling, then
Dense(100, relu) → Dense(classes, softmax, no bias), trained with Adam 0.001, categorical cross-entropy,
batch 16, 50 epochs, on 85% of each class's images (googlecreativelab/teachablemachine-community,
libraries/image/src/teachable-mobilenet.ts). The upload mirrors ``tm-export``: a class per label with its
train images (+ ``none``). ``--head sigmoid`` keeps base and head size but predicts labels
independently (BCE), to separate "the base is small" from "softmax cannot say two labels".

The base comes from a TM export (``--tm-export``) or from ``assets/tm_mobilenet_v2_0.35_base.npz``: the 260
base arrays of the MIT-licensed keras_waste4 export (identical in every TM export checked; the weights are
Google's MobileNetV2, Apache-2.0), stored as float16. Embeddings are computed once and cached.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from benchmarks.atomic import atomic_write
from benchmarks.data.dataset import Dataset
from benchmarks.data.images import open_rgb
from benchmarks.data.paths import cache_dir
from benchmarks.errors import RunError
from benchmarks.evaluation.results import EVAL_SPLITS
from benchmarks.exports.adapter_runs import write_adapter_run
from benchmarks.exports.class_mapping import map_classes
from benchmarks.exports.image_prep import teachable_machine_fit, to_minus_one_one
from benchmarks.exports.tm_keras_model import (
    DEFAULT_SIZE,
    NONE_CLASS,
    UPLOAD_SPLITS,
    TMKerasClassifier,
    base_weights,
    build_base,
    weights_of_export,
)
from benchmarks.models.compiled import compiled_or_native, probe_images

SHIPPED_BASE = Path(__file__).parent / "assets" / "tm_mobilenet_v2_0.35_base.npz"
KIND = "teachable_machine_replica"
TM_HOLDOUT = 0.15  # TM trains on 85% of each class's images
HEAD_FILE = "head.keras"  # the trained Dense head; the frozen base is rebuilt from its weights


def load_base_weights(tm_export: Path | None) -> tuple[dict[str, np.ndarray], str]:
    if tm_export:
        return base_weights(weights_of_export(tm_export), tm_export), str(Path(tm_export).resolve())
    with np.load(SHIPPED_BASE) as data:
        return {
            k.replace("|", "/"): data[k].astype(np.float32) for k in data.files
        }, f"shipped {SHIPPED_BASE.name} (from keras_waste4, float16)"


def base_digest(weights: dict[str, np.ndarray]) -> str:
    digest = hashlib.sha256()
    for key in sorted(weights):
        digest.update(key.encode())
        digest.update(np.ascontiguousarray(weights[key], dtype=np.float16).tobytes())
    return digest.hexdigest()[:16]


def embeddings(dataset: Dataset, weights: dict[str, np.ndarray], batch: int = 32) -> np.ndarray:
    """1280-d pooled MobileNetV2 features for every image (dataset order), cached by dataset and base; computed by
    the base's OpenVINO export where it matches TensorFlow's outputs (``compiled_or_native``)."""
    path = cache_dir() / "tm_embeddings" / f"{dataset.fingerprint.replace(':', '-')}-{base_digest(weights)}.npy"
    if path.is_file():
        return np.load(path)
    network, runtime = base_network(weights)
    paths = dataset.image_paths()
    chunks = []
    for i in tqdm(range(0, len(paths), batch), desc=f"TM base embeddings ({runtime})", unit="batch"):
        chunks.append(network(tm_inputs([open_rgb(p) for p in paths[i : i + batch]])))
    features = np.concatenate(chunks).astype(np.float32)
    atomic_write(path, lambda tmp: np.save(open(tmp, "wb"), features))
    return features


def tm_inputs(images: list) -> np.ndarray:
    return np.stack([to_minus_one_one(teachable_machine_fit(image, DEFAULT_SIZE)) for image in images])


def base_network(weights: dict[str, np.ndarray]):
    """TM's frozen base + pooling as images → embeddings, and the runtime that runs it."""
    import keras

    from benchmarks.serving.tf_runtime import traced_forward

    base = build_base(weights, DEFAULT_SIZE, SHIPPED_BASE)
    pooled = keras.Model(base.input, keras.layers.GlobalAveragePooling2D()(base.output))
    forward = traced_forward(pooled, DEFAULT_SIZE)
    return compiled_or_native(
        cache_dir() / "networks" / f"tm-base-{base_digest(weights)}-openvino",
        lambda xml_path: pooled.export(str(xml_path), format="openvino", verbose=False),
        lambda x: np.asarray(forward(x)),
        tm_inputs(probe_images()),
        what="TM base embeddings",
    )


def replica_classifier(head, weights: dict[str, np.ndarray]) -> TMKerasClassifier:
    """TM's frozen MobileNetV2-0.35 base + a trained head, fed the way TM feeds images (the TM export loader's
    classifier, so replicas and real exports are served by the same code)."""
    import keras

    base = build_base(weights, DEFAULT_SIZE, SHIPPED_BASE)
    model = keras.Model(base.input, head(keras.layers.GlobalAveragePooling2D()(base.output)))
    return TMKerasClassifier(model, DEFAULT_SIZE, {"format": f"MobileNetV2-0.35 base + {HEAD_FILE}"})


def load_replica_classifier(run) -> TMKerasClassifier:
    """The replica's saved head on the base it was trained with (shipped, or the TM export it named)."""
    import keras

    head_path = run.path / HEAD_FILE
    if not head_path.is_file():
        raise RunError(
            f"{run.path}: no {HEAD_FILE} (runs made before replicas saved their head); run `python -m tm_replica` again"
        )
    base_export = run.params.get("base_export")
    if base_export and not Path(base_export).exists():
        raise RunError(f"{run.path}: its base came from {base_export}, which is no longer there")
    try:
        head = keras.saving.load_model(head_path, safe_mode=True, compile=False)
    except Exception as exc:
        raise RunError(
            f"{head_path}: cannot load the head ({exc.__class__.__name__}); the file may be damaged"
        ) from None
    weights, _ = load_base_weights(Path(base_export) if base_export else None)
    return replica_classifier(head, weights)


def tm_upload(dataset: Dataset) -> tuple[list[int], list[str], list[str]]:
    """(row index, class) pairs as tm-export uploads them: every label an image carries, or ``none``."""
    classes = list(dataset.labels) + (
        [NONE_CLASS] if any(not labels for labels in dataset.rows(UPLOAD_SPLITS)["labels"]) else []
    )
    index_of = {rel: i for i, rel in enumerate(dataset.items["image"])}
    rows, names = [], []
    upload = dataset.rows(UPLOAD_SPLITS)
    for rel, labels in zip(upload["image"], upload["labels"]):
        for cls in labels or [NONE_CLASS]:
            rows.append(index_of[rel])
            names.append(cls)
    return rows, names, classes


def tm_head(n_outputs: int, activation: str, seed: int):
    import keras

    init = keras.initializers.VarianceScaling(seed=seed)
    return keras.Sequential(
        [
            keras.Input((1280,)),
            keras.layers.Dense(100, activation="relu", kernel_initializer=init, use_bias=True),
            keras.layers.Dense(
                n_outputs,
                activation=activation,
                kernel_initializer=keras.initializers.VarianceScaling(seed=seed + 1),
                use_bias=activation != "softmax",
            ),
        ]
    )


def holdout_split(names: list[str], seed: int) -> np.ndarray:
    """TM keeps 15% of each class's images for its own validation; True = trained on."""
    rng = np.random.default_rng(seed)
    keep = np.ones(len(names), dtype=bool)
    for cls in sorted(set(names)):
        members = np.flatnonzero(np.asarray(names) == cls)
        keep[rng.permutation(members)[: int(len(members) * TM_HOLDOUT)]] = False
    return keep


def train_replica(
    dataset: Dataset,
    results: Path,
    *,
    tm_export: Path | None = None,
    head: str = "softmax",
    epochs: int = 50,
    bs: int = 16,
    lr: float = 0.001,
    seed: int = 0,
):
    import keras

    weights, origin = load_base_weights(tm_export)
    features = embeddings(dataset, weights)
    keras.utils.set_random_seed(seed)
    start = time.perf_counter()
    if head == "softmax":
        rows, names, classes = tm_upload(dataset)
        keep = holdout_split(names, seed)
        x = features[np.asarray(rows)][keep]
        y = keras.utils.to_categorical([classes.index(n) for n in np.asarray(names)[keep]], len(classes))
        model = tm_head(len(classes), "softmax", seed)
        loss = "categorical_crossentropy"
    else:
        upload = dataset.items["split"].isin(UPLOAD_SPLITS).to_numpy()
        keep = holdout_split(["all"] * int(upload.sum()), seed)
        x, y = features[upload][keep], dataset.targets(UPLOAD_SPLITS).astype(np.float32)[keep]
        classes = list(dataset.labels)
        model = tm_head(len(classes), "sigmoid", seed)
        loss = "binary_crossentropy"
    model.compile(optimizer=keras.optimizers.Adam(lr), loss=loss)
    model.fit(x, y, batch_size=bs, epochs=epochs, shuffle=True, verbose=0)
    train_s = time.perf_counter() - start
    positions = dataset.items.index.get_indexer(dataset.rows(EVAL_SPLITS).index)  # features are in dataset order
    class_scores = np.asarray(model.predict(features[positions], verbose=0), dtype=np.float64)
    mapping = map_classes(classes, dataset.labels)
    params = {
        "head": head,
        "classes": classes,
        "epochs": epochs,
        "bs": bs,
        "lr": lr,
        "seed": seed,
        "base": origin,
        "tm_holdout": TM_HOLDOUT,
        "base_export": str(Path(tm_export).resolve()) if tm_export else None,
        "trained_on": "the train split as tm-export uploads it (85% of each class; TM's own holdout is the rest)",
        "trained_on_splits": UPLOAD_SPLITS,
        "single_label_by_construction": head == "softmax",
    }
    size_bytes = sum(w.nbytes for w in weights.values()) + 4 * model.count_params()
    return write_adapter_run(
        dataset,
        results,
        kind=KIND,
        label_scores=mapping.label_scores(class_scores),
        params=params,
        mapping=mapping,
        model={"format": f"MobileNetV2-0.35 base + {HEAD_FILE}", "base": origin, "size_bytes": int(size_bytes)},
        backbone="mobilenet_v2_0.35",
        timings={"train_s": round(train_s, 2)},
        save_model=lambda run_dir: atomic_write(run_dir / HEAD_FILE, lambda tmp: model.save(tmp), suffix=".keras"),
    )
