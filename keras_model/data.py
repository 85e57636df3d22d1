"""tf.data input pipelines from a dataset in our format: parallel decode, cache, shuffle, augment, prefetch.

Images are decoded once, resized (shorter side, centre crop — the evaluation view every trainer uses)
and cached as uint8; augmentation with Keras preprocessing layers runs per batch on the cached pixels.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import tensorflow as tf  # noqa: E402  (after keras: one TensorFlow import path)

from benchmarks.data.dataset import Dataset
from benchmarks.data.images import open_rgb
from benchmarks.training.options import MATCHED

from .backbone import keras
from .config import TrainConfig

AUTOTUNE = tf.data.AUTOTUNE
TF_DECODABLE = {".jpg", ".jpeg", ".png", ".gif", ".bmp"}  # what tf.io.decode_image reads; others go through PIL


def resize_square(pixels, size: int):
    """Shorter side to ``size``, centre crop, uint8 out: the same view for training, evaluation and serving. Keras'
    ``Resizing`` layer, which runs TensorFlow's ops inside tf.data whatever Keras' backend (``keras.ops`` would
    hand a symbolic tensor to the torch or JAX backend)."""
    resized = _resizer(size)(pixels)
    return tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)


@functools.cache
def _resizer(size: int) -> keras.layers.Resizing:
    return keras.layers.Resizing(size, size, crop_to_aspect_ratio=True, antialias=True, dtype="float32")


@functools.cache
def traced_resize_square(size: int):
    """``resize_square`` as one traced graph for any RGB uint8 image: the same pixels, a third of the eager time
    per served image (2.4 vs 7.0 ms at 224 px on 2 cores)."""
    return tf.function(
        lambda pixels: resize_square(pixels, size), input_signature=[tf.TensorSpec([None, None, 3], tf.uint8)]
    )


def _decode_tf(path):
    """TensorFlow's decoders; JPEG with the accurate integer DCT, which gives PIL's pixels exactly
    (TF's default fast DCT differs by a few levels, enough to move scores between training and serving)."""
    raw = tf.io.read_file(path)
    pixels = tf.cond(
        tf.io.is_jpeg(raw),
        lambda: tf.io.decode_jpeg(raw, channels=3, dct_method="INTEGER_ACCURATE"),
        lambda: tf.io.decode_image(raw, channels=3, expand_animations=False),
    )
    pixels.set_shape([None, None, 3])
    return pixels


def _decode_pil(path):
    """PIL for formats TensorFlow cannot read (WebP, TIFF, ...), and EXIF rotation, as everywhere else."""
    pixels = tf.numpy_function(lambda p: np.asarray(open_rgb(p.decode())), [path], tf.uint8, stateful=False)
    pixels.set_shape([None, None, 3])
    return pixels


def decoded_images(paths: list[Path], size: int) -> tf.data.Dataset:
    """uint8 (size, size, 3) images, decoded in parallel and cached in memory."""
    decode = _decode_tf if all(p.suffix.lower() in TF_DECODABLE for p in paths) else _decode_pil
    files = tf.data.Dataset.from_tensor_slices([str(p) for p in paths])
    return files.map(lambda p: resize_square(decode(p), size), num_parallel_calls=AUTOTUNE, deterministic=True).cache()


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


def training_data(dataset: Dataset, config: TrainConfig) -> tf.data.Dataset:
    images = decoded_images(dataset.image_paths("train"), config.img_size)
    targets = tf.data.Dataset.from_tensor_slices(dataset.targets("train").astype(np.float32))
    augment = augmentation(config)
    data = tf.data.Dataset.zip(images, targets).shuffle(
        len(dataset.rows("train")), seed=config.seed, reshuffle_each_iteration=True
    )
    data = data.batch(config.bs).map(
        lambda x, y: (augment(tf.cast(x, tf.float32), training=True), y), num_parallel_calls=AUTOTUNE
    )
    if config.mixup:
        mixup = keras.layers.MixUp(alpha=config.mixup_alpha, seed=config.seed, dtype=PIPELINE_DTYPE)

        def mix(x, y):
            mixed = mixup({"images": x, "labels": y})
            return mixed["images"], mixed["labels"]

        data = data.map(mix, num_parallel_calls=AUTOTUNE)
    return data.prefetch(AUTOTUNE)


def evaluation_data(
    dataset: Dataset, splits: list[str], config: TrainConfig, with_targets: bool = True
) -> tf.data.Dataset:
    """Unaugmented batches in dataset order (valid for monitoring; valid + test for the final scores)."""
    images = decoded_images(dataset.image_paths(splits), config.img_size).map(lambda x: tf.cast(x, tf.float32))
    if with_targets:
        targets = tf.data.Dataset.from_tensor_slices(dataset.targets(splits).astype(np.float32))
        images = tf.data.Dataset.zip(images, targets)
    return images.batch(config.bs).prefetch(AUTOTUNE)
