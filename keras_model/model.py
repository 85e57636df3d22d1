"""The Keras classifier and its two training phases, as the Keras transfer-learning guide teaches them.

Phase 1: the ported body frozen and called with ``training=False`` (BatchNorm in inference mode) while
the new head trains. Phase 2: the body (or its top stages) unfrozen, recompiled with a much lower
learning rate; BatchNorm layers stay frozen (inference mode) so their ImageNet statistics are not wrecked
by small batches.
"""

from __future__ import annotations

import math

from benchmarks.models.backbones import Backbone
from benchmarks.models.hardware import cpu_has_amx

from .backbone import feature_extractor, keras
from .config import TrainConfig, head_lr

BODY = "body"
STEM_OR_HEAD = {
    "pixels": -1,
    "normalise": -1,
    "conv_stem": -1,
    "bn1": -1,
    "stem_act": -1,
}  # before stage 0; the rest is the head conv


def precision_policy(requested: str = "auto") -> str:
    """``auto``: mixed_float16 on a GPU, mixed_bfloat16 on CPUs with AMX, else float32.

    Not on every CPU with bf16 instructions: on an AVX512-BF16 CPU without AMX (AMD EPYC, 2 cores),
    ``keras_model.throughput`` measured mixed_bfloat16 at 33 img/s against float32's 53 img/s."""
    if requested != "auto":
        return requested
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        return "mixed_float16"
    return "mixed_bfloat16" if cpu_has_amx() else "float32"


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
            stage = (
                int(layer.name.split("_")[1]) if layer.name.startswith("blocks_") else STEM_OR_HEAD.get(layer.name, 7)
            )
            layer.trainable = stage >= first_stage
    for layer in body.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            # Keras 3's fit() calls the model with training=True, which overrides the training=False given
            # at construction (keras-team/keras#20285); a non-trainable BatchNormalization always runs in
            # inference mode, so this is what actually keeps the ImageNet statistics.
            layer.trainable = False


def loss_function(config: TrainConfig) -> keras.losses.Loss:
    if config.focal:
        return keras.losses.BinaryFocalCrossentropy(label_smoothing=config.label_smoothing)
    return keras.losses.BinaryCrossentropy(label_smoothing=config.label_smoothing)


def compile_phase(model: keras.Model, config: TrainConfig, n_labels: int, phase: str, steps_per_epoch: int) -> None:
    """Phase 1: AdamW at the head LR. Phase 2: warm-up + cosine decay (or a constant LR for ReduceLROnPlateau)
    peaking at ``lr x fine_tune_lr_factor``."""
    lr = head_lr(config)
    if phase == "unfrozen":
        peak = lr * config.fine_tune_lr_factor
        if config.schedule == "cosine":
            total = max(1, steps_per_epoch * config.epochs)
            warmup = math.ceil(total * config.warmup)
            lr = keras.optimizers.schedules.CosineDecay(
                peak / 10 if warmup else peak,
                decay_steps=total - warmup,
                warmup_target=peak if warmup else None,
                warmup_steps=warmup,
            )
        else:
            lr = peak
    model.compile(
        optimizer=keras.optimizers.AdamW(learning_rate=lr, weight_decay=config.wd),
        loss=loss_function(config),
        metrics=[keras.metrics.AUC(multi_label=True, num_labels=n_labels, name="auc")],  # monitoring only
    )
