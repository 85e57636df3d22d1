"""The Keras trainer's augmentation, shared by both input paths (tf.data and the backend-neutral PyDataset): Keras'
own preprocessing layers, seeded from the run's seed, with rotation, zoom and shift as one warp."""

from __future__ import annotations

from benchmarks.training.options import MATCHED

from .backbone import keras
from .config import TrainConfig

# Input-pipeline layers compute in float32 whatever the model's dtype policy: under mixed_bfloat16 they would hand
# bf16 batches to MixUp, whose float32 mixing weights then refuse them (found by `benchmarks tune` on an AMX CPU).
PIPELINE_DTYPE = "float32"
SHIFT = 0.05  # largest shift, as a fraction of the side (the default recipe's; the matched recipe has none)


class RandomAffine(keras.layers.RandomRotation):
    """Rotation, zoom-in and shift drawn per image and applied as ONE affine warp (one bilinear resampling), as
    fastai's ``aug_transforms`` composes its affine augmentations. Keras' ``RandomRotation``, ``RandomZoom`` and
    ``RandomTranslation`` each resample the whole batch: three warps cost ~1.4 s of a ~10.7 s epoch on 2 cores
    (docs/results.md) and blur each image three times. The matrix is Keras' own (``_compute_affine_matrix``:
    rotate and scale about the centre, then shift); the ranges are those of the three layers. One uniform draw
    of four numbers per image, so a fixed integer seed (the PyDataset path) does not tie angle, zoom and shift
    together. Images and labels only: bounding boxes are refused."""

    def __init__(self, degrees: float, zoom: float, shift: float = 0.0, seed=None, **kwargs):
        kwargs.pop("factor", None)  # from_config hands back the parent's field; degrees define it
        kwargs.setdefault("fill_mode", "reflect")
        super().__init__(factor=degrees / 360, seed=seed, **kwargs)
        self.degrees, self.zoom, self.shift = degrees, zoom, shift

    def get_random_transformation(self, data, training=True, seed=None):
        if not training:
            return None
        ops = self.backend
        images = data["images"] if isinstance(data, dict) else data
        shape = ops.core.shape(images)
        batch = shape[0] if len(shape) == 4 else 1
        height, width = (shape[-3], shape[-2]) if self.data_format == "channels_last" else (shape[-2], shape[-1])
        if seed is None:
            seed = self._get_seed_generator(ops._backend)
        draw = ops.random.uniform(shape=(batch, 4), minval=-1.0, maxval=1.0, seed=seed)
        zeros = ops.numpy.zeros((batch,))
        matrix = self._compute_affine_matrix(
            center_x=0.5,
            center_y=0.5,
            angle=draw[:, 0] * self.degrees,
            translate_x=draw[:, 1] * self.shift * ops.cast(width, "float32"),
            translate_y=draw[:, 2] * self.shift * ops.cast(height, "float32"),
            scale=1.0 - self.zoom * (draw[:, 3] + 1.0) / 2.0,  # in (1 - zoom, 1]: a smaller square sampled, a zoom in
            shear_x=zeros,
            shear_y=zeros,
            height=height,
            width=width,
        )
        if len(shape) == 3:
            matrix = ops.numpy.squeeze(matrix, axis=0)
        return {"rotation_matrix": matrix}  # Keras' "angle" only serves bounding boxes, which this layer refuses

    def transform_images(self, images, transformation, training=True):
        if training and transformation is not None and self.backend.name == "torch":
            return torch_warp(images, transformation["rotation_matrix"], self.data_format)
        return super().transform_images(images, transformation, training)

    def transform_bounding_boxes(self, bounding_boxes, transformation, training=True):
        raise NotImplementedError("RandomAffine transforms images and labels only, not bounding boxes")

    def get_config(self):
        config = super().get_config()
        config.pop("factor")
        return {**config, "degrees": self.degrees, "zoom": self.zoom, "shift": self.shift}


def torch_warp(images, matrix, data_format: str):
    """Keras' affine matrices (output pixel to input pixel) applied by PyTorch's ``grid_sample`` to the whole batch,
    bilinear, reflecting about the image's edges as Keras' "reflect" does. Keras' PyTorch backend warps image by image
    (a Python loop of ``map_coordinates``): 10.2 s of augmentation per 800 images at 160 px on 2 cores with three
    warps, 5.9 s with one (docs/results.md). Only for the PyTorch backend; TensorFlow and JAX warp batches natively."""
    import torch

    batched = images.ndim == 4
    pixels = images if batched else images[None]
    matrix = matrix if matrix.ndim == 2 else matrix[None]
    if data_format == "channels_last":
        pixels = pixels.permute(0, 3, 1, 2)
    n, _, height, width = pixels.shape
    # pixel coordinates to grid_sample's [-1, 1] with align_corners=False: the edges at +-1, so "reflection" mirrors
    # about the edges (d c b a | a b c d), Keras' "reflect"
    options = {"dtype": matrix.dtype, "device": matrix.device}
    to_unit = torch.tensor([[2 / width, 0, 1 / width - 1], [0, 2 / height, 1 / height - 1], [0, 0, 1]], **options)
    last_row = torch.tensor([0.0, 0.0, 1.0], **options).expand(n, 1, 3)
    affine = torch.cat([matrix[:, :6].reshape(n, 2, 3), last_row], dim=1)
    theta = (to_unit @ affine @ torch.linalg.inv(to_unit))[:, :2]
    grid = torch.nn.functional.affine_grid(theta, list(pixels.shape), align_corners=False)
    warped = torch.nn.functional.grid_sample(
        pixels, grid.to(pixels.dtype), mode="bilinear", padding_mode="reflection", align_corners=False
    )
    if data_format == "channels_last":
        warped = warped.permute(0, 2, 3, 1)
    return warped if batched else warped[0]


def augmentation(config: TrainConfig) -> keras.layers.Pipeline:
    """Keras preprocessing layers: flips, small rotations, zoom-in, shifts (one warp) and lighting (labels stay
    valid), in the ranges both frameworks use; the matched recipe has no shifts (fastai's has none). A
    ``Pipeline``, not a ``Sequential``: it stays TensorFlow inside tf.data whatever Keras' backend."""
    seed, f32 = config.seed, {"dtype": PIPELINE_DTYPE}
    shift = 0.0 if config.recipe == "matched" else SHIFT
    return keras.layers.Pipeline(
        [
            keras.layers.RandomFlip("horizontal", seed=seed, **f32),
            RandomAffine(MATCHED.rotate_degrees, MATCHED.zoom, shift, seed=seed + 1, **f32),
            keras.layers.RandomContrast(MATCHED.lighting, seed=seed + 4, **f32),
            keras.layers.RandomBrightness(MATCHED.lighting, value_range=(0, 255), seed=seed + 5, **f32),
        ],
        name="augmentation",
    )


def mixup_layer(config: TrainConfig) -> keras.layers.MixUp:
    return keras.layers.MixUp(alpha=config.mixup_alpha, seed=config.seed, dtype=PIPELINE_DTYPE)
