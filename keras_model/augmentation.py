"""The Keras trainer's augmentation, shared by both input paths (tf.data and the backend-neutral PyDataset): Keras'
own preprocessing layers, seeded from the run's seed."""

from __future__ import annotations

from benchmarks.training.options import MATCHED

from .backbone import keras
from .config import TrainConfig

# Input-pipeline layers compute in float32 whatever the model's dtype policy: under mixed_bfloat16 they would hand
# bf16 batches to MixUp, whose float32 mixing weights then refuse them (found by `benchmarks tune` on an AMX CPU).
PIPELINE_DTYPE = "float32"


def augmentation(config: TrainConfig) -> keras.layers.Pipeline:
    """Keras preprocessing layers: flips, small rotations, zoom-in, shifts and lighting (labels stay valid), in the
    ranges both frameworks use; the matched recipe has no shifts (fastai's has none). A ``Pipeline``, not a
    ``Sequential``: it stays TensorFlow inside tf.data whatever Keras' backend."""
    seed, f32 = config.seed, {"dtype": PIPELINE_DTYPE}
    shift = keras.layers.RandomTranslation(0.05, 0.05, fill_mode="reflect", seed=seed + 3, **f32)
    shifts = [] if config.recipe == "matched" else [shift]
    return keras.layers.Pipeline(
        [
            keras.layers.RandomFlip("horizontal", seed=seed, **f32),
            keras.layers.RandomRotation(MATCHED.rotate_degrees / 360, fill_mode="reflect", seed=seed + 1, **f32),
            keras.layers.RandomZoom((-MATCHED.zoom, 0.0), fill_mode="reflect", seed=seed + 2, **f32),
            *shifts,
            keras.layers.RandomContrast(MATCHED.lighting, seed=seed + 4, **f32),
            keras.layers.RandomBrightness(MATCHED.lighting, value_range=(0, 255), seed=seed + 5, **f32),
        ],
        name="augmentation",
    )


def mixup_layer(config: TrainConfig) -> keras.layers.MixUp:
    return keras.layers.MixUp(alpha=config.mixup_alpha, seed=config.seed, dtype=PIPELINE_DTYPE)
