"""Keras 3's backend for a run: TensorFlow, JAX or PyTorch, the same model code, weights, recipe and tf.data input.

Keras reads its backend once, when it is first imported (``KERAS_BACKEND``), so the choice is made before that:
``python -m keras_model.train --backend jax`` sets it from the command line; in a process where Keras is already
loaded (a test, the dashboard) a run may only ask for the backend loaded there.
"""

from __future__ import annotations

import importlib.util
import os

from benchmarks.errors import BenchmarkError

BACKENDS = ("tensorflow", "jax", "torch")  # Keras' own names
DEFAULT = "tensorflow"


def installed_backends() -> tuple[str, ...]:
    """The backends whose framework is installed here (TensorFlow always is: tf.data feeds every backend)."""
    return tuple(name for name in BACKENDS if importlib.util.find_spec(name) is not None)


def choose_from_argv(argv: list[str]) -> None:
    """``--backend NAME`` (or ``--backend=NAME``) into ``KERAS_BACKEND``, before Keras is imported. Only the
    command line's own process calls this; a wrong name is left for argparse to refuse with the choices."""
    for i, word in enumerate(argv):
        value = argv[i + 1] if word == "--backend" and i + 1 < len(argv) else word.partition("=")[2]
        if (word == "--backend" or word.startswith("--backend=")) and value in BACKENDS:
            os.environ["KERAS_BACKEND"] = value


def loaded(requested: str | None) -> str:
    """The backend Keras runs on in this process, which must be the one a run asks for."""
    import keras

    backend = keras.backend.backend()
    if requested and requested != backend:
        raise BenchmarkError(
            f"--backend {requested}: Keras is already loaded with the {backend} backend in this process; run "
            f"`python -m keras_model.train --backend {requested} ...` (or set KERAS_BACKEND={requested} first)"
        )
    if backend not in installed_backends():
        raise BenchmarkError(f"Keras backend {backend!r} is not installed; pip install {backend}")
    return backend


def has_gpu(backend: str) -> bool:
    """Whether the backend's own framework sees a GPU (each asks its own runtime)."""
    if backend == "torch":
        import torch

        return torch.cuda.is_available()
    if backend == "jax":
        import jax

        return jax.default_backend() == "gpu"
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))
