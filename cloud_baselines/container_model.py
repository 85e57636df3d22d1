"""AutoML Vision Edge's *Container* export: a TensorFlow SavedModel served as ``{"image_bytes": …, "key": …}``.

Why it needs no preprocessing of ours: the graph decodes and resizes the encoded image itself, and answers with
its own label names beside the scores (``labels``, ``scores``, ``key``), so the class list comes from the model.
Images are handed over as PNG bytes — lossless, so the model sees exactly the decoded pixels it was scored on;
``DecodeJpeg`` reads PNG too. Labels may come in score order: scores are put back in one fixed class order by name.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.errors import BenchmarkError

SIGNATURE = "serving_default"


class ContainerClassifier:
    def __init__(self, folder: Path):
        self.path = Path(folder)
        if not (self.path / "saved_model.pb").is_file():
            raise BenchmarkError(f"{self.path}: no saved_model.pb; is this AutoML Edge's Container export folder?")
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import tensorflow as tf

        try:
            loaded = tf.saved_model.load(str(self.path))
        except (OSError, ValueError, tf.errors.OpError) as exc:
            raise BenchmarkError(
                f"{self.path}: not a loadable SavedModel ({str(exc).splitlines()[0][:140]}); re-download the export"
            ) from None
        signature = loaded.signatures.get(SIGNATURE)
        inputs = signature.structured_input_signature[1] if signature is not None else {}
        if "image_bytes" not in inputs or inputs["image_bytes"].dtype != tf.string:
            raise BenchmarkError(
                f"{self.path}: its {SIGNATURE} signature takes {sorted(inputs)}, not image_bytes; not an AutoML "
                "image-classification container"
            )
        self._loaded, self._signature, self._takes_key = loaded, signature, "key" in inputs
        labels, _ = self._call([Image.new("RGB", (8, 8))])
        self.classes = sorted(labels[0])
        self.n_classes = len(self.classes)
        self._size_bytes = sum(p.stat().st_size for p in self.path.rglob("*") if p.is_file())

    def describe(self) -> dict:
        return {"format": "automl-container-savedmodel", "file": self.path.name, "size_bytes": self._size_bytes}

    def _call(self, images: list[Image.Image]) -> tuple[list[list[str]], np.ndarray]:
        import tensorflow as tf

        encoded = []
        for image in images:
            png = io.BytesIO()
            image.convert("RGB").save(png, format="PNG")
            encoded.append(png.getvalue())
        feeds = {"image_bytes": tf.constant(encoded)}
        if self._takes_key:
            feeds["key"] = tf.constant([str(i) for i in range(len(images))])
        try:
            out = self._signature(**feeds)
        except (tf.errors.OpError, TypeError, ValueError) as exc:
            raise BenchmarkError(
                f"{self.path}: the model refused an image ({str(exc).splitlines()[0][:140]})"
            ) from None
        if "labels" not in out or "scores" not in out:
            raise BenchmarkError(f"{self.path}: the model answers {sorted(out)}, expected labels and scores")
        labels = [[label.decode() for label in row] for row in out["labels"].numpy()]
        return labels, out["scores"].numpy().astype(np.float32)

    def predict(self, image: Image.Image) -> np.ndarray:
        return self.predict_batch([image])[0]

    def predict_batch(self, images: list[Image.Image]) -> np.ndarray:
        labels, scores = self._call(images)
        column = {name: i for i, name in enumerate(self.classes)}
        ordered = np.zeros((len(images), self.n_classes), dtype=np.float32)
        for row, (names, values) in enumerate(zip(labels, scores)):
            for name, value in zip(names, values):
                if name in column:
                    ordered[row, column[name]] = value
        return ordered
