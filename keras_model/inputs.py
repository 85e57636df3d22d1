"""The Keras trainer's input by ``--loader``: ``tf.data`` (TensorFlow's pipeline: parallel decode and augmentation,
the default wherever TensorFlow is installed) or ``pydataset`` (Keras' backend-neutral ``PyDataset``: JAX or
PyTorch without TensorFlow). Each is imported only when chosen, so a machine without TensorFlow never loads it."""

from __future__ import annotations

from benchmarks.data.dataset import Dataset

from .config import TrainConfig


def training_input(dataset: Dataset, config: TrainConfig):
    if config.loader == "tf.data":
        from .data import training_data

        return training_data(dataset, config)
    from .loader import training_batches

    return training_batches(dataset, config)


def evaluation_input(dataset: Dataset, splits: list[str], config: TrainConfig, with_targets: bool = True):
    """Unaugmented batches in dataset order."""
    if config.loader == "tf.data":
        from .data import evaluation_data

        return evaluation_data(dataset, splits, config, with_targets)
    from .loader import evaluation_batches

    return evaluation_batches(dataset, splits, config, with_targets)
