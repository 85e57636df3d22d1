"""Training throughput of the Keras trainer against a plain ``model.fit`` on the same model and data.

Both train the whole body (phase-2 settings) with the same backbone, image size, batch size and
precision policy, from the same decoded, cached images, through the same input path (``--loader``), on the
same backend (``--backend``); the trainer adds its augmentation layers, callbacks and LR schedule, which is
exactly the overhead being measured. Also times the trainer's input alone (one epoch of augmented batches, the
cache filled, no model): the share of an epoch the augmentation takes on cores the training step also needs. Prints
one JSON object (used by ``python -m tools.bench``).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time

from benchmarks.data.dataset import load_dataset
from benchmarks.evaluation.results import create_run
from benchmarks.models.backbones import get_backbone
from benchmarks.training.options import throughput_parser

from . import backends

if __name__ == "__main__":  # the command line's --backend, before Keras is first imported
    backends.choose_from_argv(sys.argv[1:])

from .backbone import keras  # noqa: E402
from .callbacks import training_callbacks  # noqa: E402
from .config import make_config  # noqa: E402
from .inputs import evaluation_input, training_input  # noqa: E402
from .model import build_classifier, compile_phase, precision_policy, set_body_trainable  # noqa: E402


class EpochClock(keras.callbacks.Callback):
    """Wall time of each epoch, callbacks included (they are part of the trainer's cost)."""

    def __init__(self):
        super().__init__()
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.started)


def measure(model, data, n_images: int, callbacks: list, epochs: int) -> list[float]:
    """Images per second of each of ``epochs`` timed epochs, after a first that decodes and fills the cache: the
    median counts, and the list is printed, so an epoch that stalls (as tf.data's autotuner made one in three do on
    2 cores, docs/trainers.md) shows instead of hiding in a mean."""
    clock = EpochClock()
    model.fit(data, epochs=1 + epochs, callbacks=[*callbacks, clock], verbose=0, shuffle=False)
    return [n_images / seconds for seconds in clock.seconds[1:]]


def input_seconds(data) -> float:
    """Wall seconds to draw one epoch of batches from ``data`` (a tf.data pipeline or a ``PyDataset``), nothing
    trained: what the input path itself costs."""
    started = time.perf_counter()
    if isinstance(data, keras.utils.PyDataset):
        for index in range(len(data)):
            data[index]
        data.on_epoch_end()
    else:
        for _ in data:
            pass
    return time.perf_counter() - started


def _timed_epochs(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of epochs of 1 or more")
    return int(text)


def main(argv: list[str] | None = None) -> None:
    parser = throughput_parser("python -m keras_model.throughput", __doc__.splitlines()[0])
    parser.add_argument(
        "--epochs",
        type=_timed_epochs,
        default=3,
        help="timed epochs per loop after an untimed first; the median counts (default 3)",
    )
    parser.add_argument("--backend", choices=backends.BACKENDS, help="Keras' backend (default: as the trainer's)")
    parser.add_argument("--loader", choices=backends.LOADERS, help="input path (default: as the trainer's)")
    args = parser.parse_args(argv)
    dataset = load_dataset(args.dataset)
    backbone = get_backbone("lite0")
    config = make_config(
        img_size=args.img_size, bs=args.bs, epochs=1, precision=args.precision, backend=args.backend, loader=args.loader
    )
    config.backend = backends.loaded(config.backend)
    policy = precision_policy(config.precision, config.recipe, config.backend)
    keras.mixed_precision.set_dtype_policy(policy)
    keras.utils.set_random_seed(0)
    n_train = len(dataset.rows("train"))
    steps = math.ceil(n_train / config.bs)
    rates = {}
    for name in ("plain", "trainer"):
        model = build_classifier(backbone, dataset.labels, config, policy)
        set_body_trainable(model, config.unfreeze)
        if name == "plain":
            model.compile(optimizer=keras.optimizers.AdamW(1e-4), loss="binary_crossentropy")
            plain = evaluation_input(dataset, ["train"], config)  # decoded, cached, batched: no augmentation
            rates[name] = measure(model, plain, n_train, [], args.epochs)
        else:
            compile_phase(model, config, "unfrozen", steps)
            with tempfile.TemporaryDirectory() as tmp:
                run = create_run(tmp, kind="keras", dataset=dataset, params=config.to_dict(), backbone=backbone.name)
                data = training_input(dataset, config)
                rates[name] = measure(model, data, n_train, training_callbacks(run, config, "unfrozen"), args.epochs)
                augmenting = statistics.median(input_seconds(data) for _ in range(3))
    print(
        json.dumps(
            {
                "img_size": args.img_size,
                "backend": config.backend,
                "loader": config.loader,
                "bs": args.bs,
                "precision": policy,
                "images_per_epoch": n_train,
                "timed_epochs": args.epochs,
                "keras_img_per_s": round(statistics.median(rates["trainer"]), 2),
                "plain_fit_img_per_s": round(statistics.median(rates["plain"]), 2),
                "ratio": round(statistics.median(rates["trainer"]) / statistics.median(rates["plain"]), 3),
                "keras_epochs_img_per_s": [round(rate, 1) for rate in rates["trainer"]],
                "plain_fit_epochs_img_per_s": [round(rate, 1) for rate in rates["plain"]],
                "input_s_per_epoch": round(augmenting, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
