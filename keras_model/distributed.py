"""Training on several GPUs through TensorFlow's ``MirroredStrategy``: one process, the model mirrored on every GPU,
``--bs`` the global batch split across them. On one device every function here is a no-op. The JAX and PyTorch
backends train on one device here (Keras' own ``keras.distribution`` API is JAX-only: not wired in)."""

from __future__ import annotations

import contextlib


class OneDevice:
    """What the trainer asks of a strategy, for backends without TensorFlow's."""

    num_replicas_in_sync = 1

    def scope(self):
        return contextlib.nullcontext()


def strategy(backend: str = "tensorflow"):
    """MirroredStrategy over several GPUs (TensorFlow backend), else one device."""
    if backend != "tensorflow":
        return OneDevice()
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    return tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()


def run_fields(strategy, batch_size: int) -> dict:
    """What run.json records under ``distributed`` when several replicas train (``--bs`` is the global batch,
    split across them); nothing for one device."""
    if strategy.num_replicas_in_sync == 1:
        return {}
    replicas = {"replicas": strategy.num_replicas_in_sync, "strategy": type(strategy).__name__}
    return {"distributed": {**replicas, "global_batch_size": batch_size}}
