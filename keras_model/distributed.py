"""Training on several GPUs through TensorFlow's ``MirroredStrategy``: one process, the model mirrored on every GPU,
``--bs`` the global batch split across them. On one device every function here is a no-op."""

from __future__ import annotations


def strategy():
    """MirroredStrategy over several GPUs, else the default (one device)."""
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
