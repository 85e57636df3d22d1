"""The Keras classifier and its two training phases, as the Keras transfer-learning guide teaches them.

Phase 1: the ported body frozen and called with ``training=False`` (BatchNorm in inference mode) while
the new head trains. Phase 2: the body (or its top stages) unfrozen, recompiled with a much lower
learning rate; BatchNorm layers stay frozen (inference mode) so their ImageNet statistics are not wrecked
by small batches.
"""

from __future__ import annotations

from benchmarks.models.backbones import Backbone
from benchmarks.training.hardware import cpu_has_amx
from benchmarks.training.options import ASL_CLIP, ASL_GAMMA_NEG, ASL_GAMMA_POS, FOCAL_GAMMA, MATCHED, warmup_steps

from .backbone import feature_extractor, keras
from .backends import has_gpu
from .config import TrainConfig, fine_tune_peak_lr, head_lr
from .optimizer import DiscriminativeAdamW

BODY = "body"
STEM_OR_HEAD = {
    "pixels": -1,
    "normalise": -1,
    "conv_stem": -1,
    "bn1": -1,
    "stem_act": -1,
}  # before stage 0; the rest is the head conv


POLICIES = {"fp32": "float32", "bf16": "mixed_bfloat16", "fp16": "mixed_float16"}  # --precision -> Keras' words


def precision_policy(requested: str = "auto", recipe: str = "idiomatic", backend: str = "tensorflow") -> str:
    """The Keras dtype policy for ``--precision``. ``auto``: mixed_float16 on a GPU, mixed_bfloat16 on CPUs with
    AMX, else float32 (the matched recipe: float32 on every CPU, as fastai's matched recipe). On the JAX and PyTorch
    backends ``auto`` is float32 on a CPU: mixed precision was measured for TensorFlow only.

    Not on every CPU with bf16 instructions: on an AVX512-BF16 CPU without AMX (AMD EPYC, 2 cores),
    ``keras_model.throughput`` measured mixed_bfloat16 at 33 img/s against float32's 53 img/s."""
    if requested != "auto":
        return POLICIES.get(requested, requested)  # runs recorded before the shared vocabulary name the policy
    if has_gpu(backend):
        return "mixed_float16"
    return "mixed_bfloat16" if backend == "tensorflow" and recipe != "matched" and cpu_has_amx() else "float32"


def with_policy(model: keras.Model, policy: str) -> keras.Model:
    """A copy of ``model`` whose layers compute in ``policy`` (the cached port is saved in float32)."""
    if policy == "float32":
        return model
    clone = keras.models.clone_model(
        model, clone_function=lambda layer: layer.__class__.from_config({**layer.get_config(), "dtype": policy})
    )
    clone.set_weights(model.get_weights())
    return clone


def build_classifier(
    backbone: Backbone, labels: list[str], config: TrainConfig, policy: str = "float32"
) -> keras.Model:
    body = with_policy(feature_extractor(backbone), policy)
    body = keras.Model(body.input, body.output, name=BODY)
    inputs = keras.Input(
        (config.img_size, config.img_size, 3), name="pixels"
    )  # RGB 0-255; normalisation is inside the body
    x = body(inputs, training=False)  # as the guide writes it; see set_body_trainable for what enforces it
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    x = keras.layers.Dropout(config.dropout, name="dropout")(x)
    outputs = keras.layers.Dense(len(labels), activation="sigmoid", dtype="float32", name="scores")(
        x
    )  # float32 scores under mixed precision
    return keras.Model(inputs, outputs, name=f"{backbone.name}_multilabel")


def set_body_trainable(model: keras.Model, unfreeze_stages: int | None) -> None:
    """``None``: body frozen. ``0``: all of it trainable. ``N``: only the last N of its 7 stages and the head conv."""
    body = model.get_layer(BODY)
    if unfreeze_stages is None:
        body.trainable = False
        return
    body.trainable = True
    if unfreeze_stages:
        first_stage = 7 - unfreeze_stages
        for layer in body.layers:
            layer.trainable = stage_of(layer.name) >= first_stage
    for layer in body.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            # Keras 3's fit() calls the model with training=True, which overrides the training=False given
            # at construction (keras-team/keras#20285); a non-trainable BatchNormalization always runs in
            # inference mode, so this is what actually keeps the ImageNet statistics.
            layer.trainable = False


def stage_of(layer_name: str) -> int:
    """The body layer's EfficientNet stage: -1 for the stem, 0-6 for the blocks, 7 for the head conv."""
    return int(layer_name.split("_")[1]) if layer_name.startswith("blocks_") else STEM_OR_HEAD.get(layer_name, 7)


def discriminative_scales(model: keras.Model, config: TrainConfig) -> dict[str, float]:
    """Phase 2's learning rate per body variable as a share of the head's, in fastai's three groups
    (``fastai_model/learner.py: stage_splitter``, ``fit_one_cycle(slice(lr / lr_mult, lr))``): the body's early
    stages at 1/lr_mult, its last ``unfreeze`` stages (3 for the whole body) and head conv at 1/sqrt(lr_mult)."""
    first_late = 7 - (config.unfreeze or 3)
    return {
        variable.path: 1 / config.lr_mult if stage_of(layer.name) < first_late else config.lr_mult**-0.5
        for layer in model.get_layer(BODY).layers
        for variable in layer.trainable_weights
    }


def loss_function(config: TrainConfig) -> keras.losses.Loss:
    """The shared loss choice (``benchmarks.training.options.LOSSES``) on the model's sigmoid outputs."""
    if config.loss == "focal":
        return keras.losses.BinaryFocalCrossentropy(
            gamma=FOCAL_GAMMA, apply_class_balancing=False, label_smoothing=config.label_smoothing
        )
    if config.loss == "asl":
        return AsymmetricLoss(label_smoothing=config.label_smoothing)
    return keras.losses.BinaryCrossentropy(label_smoothing=config.label_smoothing)


@keras.saving.register_keras_serializable(package="imgbench")
class AsymmetricLoss(keras.losses.Loss):
    """The asymmetric loss (Ridnik et al., ICCV 2021) on probabilities, written as timm's
    ``AsymmetricLossMultiLabel`` computes it (no Keras library has it; tests check the two agree): negatives'
    probability shifted down by ``clip``, focusing γ- on negatives and γ+ on positives, mean over labels."""

    def __init__(
        self,
        gamma_neg: float = ASL_GAMMA_NEG,
        gamma_pos: float = ASL_GAMMA_POS,
        clip: float = ASL_CLIP,
        label_smoothing: float = 0.0,
        name: str = "asymmetric_loss",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        self.gamma_neg, self.gamma_pos, self.clip, self.label_smoothing = gamma_neg, gamma_pos, clip, label_smoothing

    def call(self, y_true, y_pred):
        p = keras.ops.cast(y_pred, "float32")
        y = keras.ops.cast(y_true, "float32")
        if self.label_smoothing:
            y = y * (1 - self.label_smoothing) + 0.5 * self.label_smoothing
        negative = keras.ops.minimum(1 - p + self.clip, 1.0)
        tiny = 1e-8  # timm's eps
        loss = y * keras.ops.log(keras.ops.maximum(p, tiny)) + (1 - y) * keras.ops.log(
            keras.ops.maximum(negative, tiny)
        )
        p_t = p * y + negative * (1 - y)
        gamma = self.gamma_pos * y + self.gamma_neg * (1 - y)
        return -keras.ops.mean(loss * keras.ops.power(1 - p_t, gamma), axis=-1)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "gamma_neg": self.gamma_neg,
            "gamma_pos": self.gamma_pos,
            "clip": self.clip,
            "label_smoothing": self.label_smoothing,
        }


def fine_tune_learning_rate(config: TrainConfig, steps_per_epoch: int):
    """Phase 2's LR: warm-up + cosine decay peaking at ``lr x fine_tune_lr_factor``, or that peak constant for
    ReduceLROnPlateau."""
    peak = fine_tune_peak_lr(config)
    if config.schedule != "cosine":
        return peak
    total = max(1, steps_per_epoch * config.epochs)
    warmup = warmup_steps(total, config.warmup)
    return keras.optimizers.schedules.CosineDecay(
        peak / 10 if warmup else peak,
        decay_steps=total - warmup,
        warmup_target=peak if warmup else None,
        warmup_steps=warmup,
    )


def compile_phase(model: keras.Model, config: TrainConfig, phase: str, steps_per_epoch: int) -> None:
    """Phase 1: AdamW at the head LR. Phase 2: warm-up + cosine decay (or a constant LR for ReduceLROnPlateau)
    peaking at ``lr x fine_tune_lr_factor``; with ``--lr-mult`` above 1 the body's groups at lower shares of it."""
    lr = fine_tune_learning_rate(config, steps_per_epoch) if phase == "unfrozen" else head_lr(config)
    adam = {"beta_1": MATCHED.beta_1, "beta_2": MATCHED.beta_2, "epsilon": MATCHED.epsilon}  # Keras' own defaults
    if phase == "unfrozen" and config.lr_mult != 1:
        scales = discriminative_scales(model, config)
        optimizer = DiscriminativeAdamW(scales, learning_rate=lr, weight_decay=config.wd, **adam)
    else:
        optimizer = keras.optimizers.AdamW(learning_rate=lr, weight_decay=config.wd, **adam)
    model.compile(
        optimizer=optimizer,
        loss=loss_function(config),  # no metrics: the epoch's valid pass (callbacks.ValidPass) scores valid
    )
