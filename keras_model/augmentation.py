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
        return {"rotation_matrix": matrix, "angle": draw[:, 0] * self.degrees}

    def transform_bounding_boxes(self, bounding_boxes, transformation, training=True):
        raise NotImplementedError("RandomAffine transforms images and labels only, not bounding boxes")

    def get_config(self):
        config = super().get_config()
        config.pop("factor")
        return {**config, "degrees": self.degrees, "zoom": self.zoom, "shift": self.shift}


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
