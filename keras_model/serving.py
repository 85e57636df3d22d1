"""The Keras serving artifact: ``model.keras`` (no optimizer, loads with ``safe_mode=True``) + serving.json."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.atomic import atomic_write, atomic_write_json
from benchmarks.errors import RunError
from benchmarks.evaluation.results import read_run_file

from .backbone import keras

MODEL_FILE = "model.keras"
CONFIG_FILE = "serving.json"


def save_serving_artifact(
    model: keras.Model, out_dir: Path, backbone: str, labels: list[str], img_size: int, backend: str = "tensorflow"
) -> Path:
    """An uncompiled copy of the trained model (a third of the size without AdamW's state). ``model.keras`` is
    backend-neutral: whichever backend trained it, the server runs it on TensorFlow (within 1e-4, tested)."""
    plain = keras.Model.from_config(model.get_config())  # clone_model would carry the compiled optimizer along
    plain.set_weights(model.get_weights())
    atomic_write(out_dir / MODEL_FILE, lambda tmp: plain.save(tmp), suffix=".keras")
    atomic_write_json(
        out_dir / CONFIG_FILE,
        {
            "framework": "keras",
            "trained_on_backend": backend,
            "backbone": backbone,
            "labels": labels,
            "img_size": img_size,
            "input": "RGB 0-255, shorter side resized and centre-cropped to img_size",
        },
    )
    return out_dir / MODEL_FILE


def square_pixels(image: Image.Image, size: int) -> np.ndarray:
    """The evaluation view training scored. An image already ``size`` square is used as it is: the antialiased
    resize is the identity there (tested), and skipping it saves 1-2 ms of TensorFlow per request."""
    pixels = np.asarray(image.convert("RGB"), dtype=np.uint8)
    if pixels.shape[:2] == (size, size):
        return pixels
    from .data import traced_resize_square  # TensorFlow serves; training on JAX or PyTorch may lack it

    return traced_resize_square(size)(pixels).numpy()


class KerasPredictor:
    """Sigmoid scores for PIL images from a run's ``model.keras``."""

    def __init__(self, run_dir: Path | str):
        run_dir = Path(run_dir)
        config_path, model_path = run_dir / CONFIG_FILE, run_dir / MODEL_FILE
        if not config_path.is_file() or not model_path.is_file():
            raise RunError(
                f"{run_dir}: no Keras serving artifact ({CONFIG_FILE} + {MODEL_FILE}); is this a finished Keras run?"
            )
        self.config = read_run_file(run_dir, CONFIG_FILE, ("labels", "img_size"))
        self.labels = list(self.config["labels"])
        self.img_size = int(self.config["img_size"])
        try:
            self.model = keras.saving.load_model(model_path, safe_mode=True, compile=False)
        except Exception as exc:
            raise RunError(
                f"{model_path}: cannot load the Keras model ({exc.__class__.__name__}); the file may be damaged"
            ) from None
        from benchmarks.serving.tf_runtime import traced_forward  # TensorFlow serves (see save_serving_artifact)

        self._forward = traced_forward(self.model, self.img_size)

    def preprocess(self, images: list[Image.Image]) -> np.ndarray:
        return np.stack([square_pixels(img, self.img_size) for img in images]).astype(np.float32)

    def predict(self, images: list[Image.Image]) -> np.ndarray:
        return self.network_output(self.preprocess(images))

    # What an optimised runtime needs (benchmarks.serving.runtime): the network alone, on numpy batches.
    def network_input(self, images: list[Image.Image]) -> np.ndarray:
        return self.preprocess(images)  # N, H, W, C; RGB 0-255 (normalisation is the model's first layer)

    def network_output(self, batch: np.ndarray) -> np.ndarray:
        return np.asarray(self._forward(batch), dtype=np.float32)

    def scores_from_output(self, scores: np.ndarray) -> np.ndarray:
        return scores  # the model ends in its sigmoid

    def export_openvino(self, xml_path: Path, example: np.ndarray) -> None:
        """Keras' own OpenVINO export. A model trained under a mixed policy (mixed_bfloat16 on CPUs with AMX) is
        refused in one line: OpenVINO cannot read its bf16 constants, and a float32 copy would not give the scores
        the run was scored with (the served model must be the scored one)."""
        mixed = sorted({layer.dtype_policy.name for layer in iter_layers(self.model)} - {"float32"})
        if mixed:
            raise ValueError(f"trained with the {', '.join(mixed)} policy, which the OpenVINO export cannot reproduce")
        self.model.export(str(xml_path), format="openvino", verbose=False)


def iter_layers(model):
    """Every layer, nested models' layers included."""
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from iter_layers(layer)
