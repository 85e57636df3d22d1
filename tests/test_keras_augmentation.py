"""The Keras trainer's one-warp affine augmentation: a single resampling with the matrix it draws, whose
rotation, zoom and shift stay in the declared ranges and are drawn independently."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import benchmarks.models.torch_first  # noqa: F401  (PyTorch before TensorFlow)
from keras_model.augmentation import RandomAffine, augmentation
from keras_model.backbone import keras
from keras_model.config import make_config

SIZE, DEGREES, ZOOM, SHIFT = 64, 15.0, 0.1, 0.05
REPO = Path(__file__).resolve().parents[1]


def coordinate_images(n: int) -> np.ndarray:
    """Channel 0 holds each pixel's column, channel 1 its row: a bilinear warp of a linear image is exact."""
    rows, cols = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    image = np.stack([cols, rows, np.zeros_like(rows)], axis=-1)
    return np.repeat(image[None], n, axis=0)


def matrices(layer, images, seed=7) -> np.ndarray:
    change = layer.get_random_transformation(images, seed=seed)
    return keras.ops.convert_to_numpy(change["rotation_matrix"])


def test_one_warp_with_the_drawn_matrix():
    layer = RandomAffine(DEGREES, ZOOM, SHIFT)
    images = coordinate_images(4)
    change = layer.get_random_transformation(images, seed=3)
    warped = keras.ops.convert_to_numpy(layer.transform_images(images, change))
    matrix = keras.ops.convert_to_numpy(change["rotation_matrix"])
    rows, cols = np.mgrid[24:40, 24:40]  # well inside: no sample point reaches the reflected border
    for image, (a0, a1, a2, b0, b1, b2, _, _) in zip(warped, matrix, strict=True):
        np.testing.assert_allclose(image[rows, cols, 0], a0 * cols + a1 * rows + a2, atol=1e-3)
        np.testing.assert_allclose(image[rows, cols, 1], b0 * cols + b1 * rows + b2, atol=1e-3)


def test_rotation_zoom_and_shift_stay_in_range_and_are_drawn_independently():
    matrix = matrices(RandomAffine(DEGREES, ZOOM, SHIFT), coordinate_images(2000))
    a0, a1, a2, b0, b1, b2 = matrix[:, :6].T
    angle, scale = np.degrees(np.arctan2(b0, a0)), np.hypot(a0, b0)
    centre = (SIZE - 1) / 2
    shift_x, shift_y = a2 - centre + centre * a0 + centre * a1, b2 - centre + centre * b0 + centre * b1
    assert np.abs(angle).max() <= DEGREES + 1e-3 and np.abs(angle).max() > 0.95 * DEGREES
    assert scale.min() >= 1 - ZOOM - 1e-5 and scale.max() <= 1 + 1e-5 and scale.min() < 1 - 0.95 * ZOOM
    assert np.abs(shift_x).max() <= SHIFT * SIZE + 1e-3 and np.abs(shift_y).max() > 0.95 * SHIFT * SIZE
    np.testing.assert_allclose(a0, b1, atol=1e-5)  # a rotation and an even zoom: no shear, no stretch
    correlations = np.corrcoef([angle, scale, shift_x, shift_y])[np.triu_indices(4, 1)]
    assert np.abs(correlations).max() < 0.1  # a fixed integer seed does not tie them together


def test_no_shift_in_the_matched_recipe_and_none_at_inference():
    matrix = matrices(RandomAffine(DEGREES, ZOOM, shift=0.0), coordinate_images(200))
    centre = (SIZE - 1) / 2
    a0, a1, a2 = matrix[:, 0], matrix[:, 1], matrix[:, 2]
    np.testing.assert_allclose(a2, centre - centre * a0 - centre * a1, atol=1e-3)
    images = coordinate_images(2)
    unchanged = RandomAffine(DEGREES, ZOOM)(images, training=False)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(unchanged), images)
    matched = augmentation(make_config(recipe="matched", seed=0)).layers
    assert [layer.shift for layer in matched if isinstance(layer, RandomAffine)] == [0.0]


def test_the_same_seed_gives_the_same_warp_and_the_config_round_trips():
    layer = RandomAffine(DEGREES, ZOOM, SHIFT, seed=1)
    np.testing.assert_array_equal(matrices(layer, coordinate_images(3)), matrices(layer, coordinate_images(3)))
    copy = RandomAffine.from_config(layer.get_config())
    assert (copy.degrees, copy.zoom, copy.shift, copy.seed) == (DEGREES, ZOOM, SHIFT, 1)
    with pytest.raises(NotImplementedError, match="bounding boxes"):
        layer.transform_bounding_boxes({}, None)


TORCH_PARITY = """
import numpy as np, keras
from keras_model.augmentation import RandomAffine
layer = RandomAffine(15.0, 0.1, 0.05)
rng = np.random.default_rng(0)
cases = [("channels_last", (6, 48, 40, 3)), ("channels_last", (48, 40, 3)), ("channels_first", (6, 3, 48, 40))]
for fmt, shape in cases:
    layer.data_format = fmt
    x = keras.ops.convert_to_tensor(rng.uniform(0, 255, shape).astype("float32"))
    change = layer.get_random_transformation(x, seed=3)
    fast = keras.ops.convert_to_numpy(layer.transform_images(x, change))
    own = keras.ops.convert_to_numpy(keras.layers.RandomRotation.transform_images(layer, x, change))
    print(fmt, len(shape), float(np.abs(fast - own).max()))
"""


def test_on_pytorch_the_batch_warp_matches_keras_own_image_by_image_warp():
    """PyTorch's grid_sample over the batch against Keras' per-image map_coordinates, same matrices, same reflection
    at the edges (batched, unbatched, channels first): equal up to float rounding on a 0-255 scale."""
    env = {**os.environ, "KERAS_BACKEND": "torch"}
    command = [sys.executable, "-c", TORCH_PARITY]
    out = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    gaps = [float(line.split()[-1]) for line in out.stdout.strip().splitlines()]
    assert len(gaps) == 3 and max(gaps) < 0.01
