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

from .augmentation import augmentation, mixup_layer
from .config import TrainConfig
from .view import resizer

AUTOTUNE = tf.data.AUTOTUNE
TF_DECODABLE = {".jpg", ".jpeg", ".png", ".gif", ".bmp"}  # what tf.io.decode_image reads; others go through PIL


def without_autotune(data: tf.data.Dataset) -> tf.data.Dataset:
    """tf.data's autotuner off. With it on, destroying a finished iterator (one per Keras epoch, one per valid pass)
    sometimes stalled for ~10 s with both cores idle: on a 2-core EPYC one epoch in three ran at 39 instead of
    75 img/s. Off, parallel maps run at TensorFlow's default parallelism and prefetch grows its buffer by itself,
    as fast as the autotuned epochs here (docs/trainers.md, "Keras' slow epochs")."""
    options = tf.data.Options()
    options.autotune.enabled = False
    return data.with_options(options)


def resize_square(pixels, size: int):
    """Shorter side to ``size``, centre crop, uint8 out: the same view for training, evaluation and serving. Keras'
    ``Resizing`` layer, which runs TensorFlow's ops inside tf.data whatever Keras' backend (``keras.ops`` would
    hand a symbolic tensor to the torch or JAX backend)."""
    resized = resizer(size)(pixels)
    return tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)


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
        mixup = mixup_layer(config)

        def mix(x, y):
            mixed = mixup({"images": x, "labels": y})
            return mixed["images"], mixed["labels"]

        data = data.map(mix, num_parallel_calls=AUTOTUNE)
    return without_autotune(data.prefetch(AUTOTUNE))


def evaluation_data(
    dataset: Dataset, splits: list[str], config: TrainConfig, with_targets: bool = True
) -> tf.data.Dataset:
    """Unaugmented batches in dataset order (valid for monitoring; valid + test for the final scores)."""
    images = decoded_images(dataset.image_paths(splits), config.img_size).map(lambda x: tf.cast(x, tf.float32))
    if with_targets:
        targets = tf.data.Dataset.from_tensor_slices(dataset.targets(splits).astype(np.float32))
        images = tf.data.Dataset.zip(images, targets)
    return without_autotune(images.batch(config.bs).prefetch(AUTOTUNE))
