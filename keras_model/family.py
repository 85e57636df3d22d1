"""The Keras family, declared for the model registry (no framework is imported here)."""

from benchmarks.models.backbones import BACKBONES
from benchmarks.models.registry import Command, DemoStep, GridSupport, ModelFamily
from benchmarks.models.search_space import WISE_FT, Knob, choice, int_range, log_range

# What `benchmarks tune` varies, as the Keras transfer-learning guide names it: the head's learning rate and the
# fine-tuning one (its own knob), epochs of each phase, AdamW's weight_decay, MixUp, label smoothing, the head's
# Dropout rate and the phase-2 schedule; plus fastai's discriminative LRs (--lr-mult, keras_model/optimizer.py).
# With one LR for all (lr-mult 1) every StampScenes trial whose fine-tuning peak reached 2.2e-3 or more collapsed
# or stood still (docs/results.md); with the body at peak / lr-mult the head may go higher, as fastai's does. The
# same ranges as fastai's where the knob is shared (small data wants lower LRs and more epochs than the quick preset).
SEARCH_SPACE = (
    log_range("lr", 1e-4, 1e-1, "the head's learning_rate (phase 1)"),
    log_range("fine-tune-lr", 1e-5, 1e-2, "phase-2 peak learning_rate (the head's; the body's is lower by lr-mult)"),
    choice("lr-mult", 1, 10, 100, why="phase 2's discriminative LRs: the body's early stages at the peak / lr-mult"),
    int_range("epochs", 1, 8, "fine-tuning epochs"),
    int_range("freeze-epochs", 0, 2, "head-only epochs first"),
    choice("unfreeze", 0, 3, 5, why="0: the whole body; N: its last N of 7 stages"),
    log_range("wd", 1e-4, 1e-1, "AdamW weight_decay"),
    choice("mixup", False, True),
    choice("label-smoothing", 0.0, 0.1),
    Knob("dropout", "float", 0.0, 0.5, why="Dropout rate before the sigmoid layer"),
    choice("schedule", "cosine", "plateau", why="CosineDecay with warm-up, or ReduceLROnPlateau"),
    choice("head-init", "probe", "random", why="probe: LP-FT"),
    WISE_FT,
)

FAMILIES = (
    ModelFamily(
        kind="keras",
        title="Keras",
        description="Keras 3 fine-tuning of the same ImageNet EfficientNet-Lite, ported from PyTorch (TensorFlow "
        "backend; --backend jax or torch runs the same model and recipe on the others)",
        runtime="tensorflow",
        predictor="keras_model.serving:KerasPredictor",
        command=Command("keras_model.train"),
        trainer=True,
        grid=GridSupport(),
        backbones=tuple(BACKBONES),
        throughput="keras_model.throughput",
        throughput_probes={"tf.data": ()},
        search_space=SEARCH_SPACE,
        epoch_metric="val_macro_auc",  # the valid pass's scikit-learn macro AUC, in each epoch's logs (callbacks.py)
        cross_validated_options={"no-keep-best": True},
        souper="keras_model.soup",
        exporter="keras_model.export",
        presets_from="keras_model.config:PRESETS",
        unreachable_formats={
            "tfjs": "tensorflowjs 4.22 (the latest) requires tensorflow 2.19 and numpy < 2.2 through "
            "tensorflow-decision-forests and tf_keras: installing it would replace the pinned tensorflow-cpu 2.21 "
            "and numpy 2.4; export tflite (what TF.js apps can also load) or savedmodel"
        },
        demo=(DemoStep("Keras, --preset quick (4-10 minutes on 2 CPU cores)", ("--preset", "quick")),),
    ),
)
