"""Keras on each of its backends: the same port and recipe; every backend installed here trains one epoch from the
command line (PyTorch as on a machine without TensorFlow: through Keras' PyDataset), and its model is served (on
TensorFlow, in this process) as it was scored."""

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import benchmarks.models.torch_first  # noqa: F401  (PyTorch before TensorFlow)
from benchmarks.data.images import open_rgb
from benchmarks.errors import BenchmarkError
from benchmarks.models.backbones import get_backbone, normalise, prepare_image
from benchmarks.models.compiled import PARITY_TOLERANCE, probe_images
from keras_model.backends import BACKENDS, LOADERS, choose_from_argv, installed_backends

pytestmark = pytest.mark.training
OTHER_BACKENDS = [name for name in installed_backends() if name != "tensorflow"]
POOLED_FEATURES = """
import sys, numpy as np, keras
from benchmarks.models.backbones import get_backbone
from keras_model.backbone import imagenet_model
model = imagenet_model(get_backbone("lite0"))
pooled = keras.Model(model.input, model.get_layer("pool").output)
np.save(sys.argv[1], keras.ops.convert_to_numpy(pooled(np.load(sys.argv[2]).astype("float32"))))
print(keras.backend.backend())
"""
# Runs a module as on a machine where TensorFlow is not installed (the import system cannot find it).
WITHOUT_TENSORFLOW = """
import importlib.machinery, runpy, sys
class NoTensorFlow(importlib.machinery.PathFinder):
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "tf_keras", "tensorboard"):
            return None
        return importlib.machinery.PathFinder.find_spec(name, path, target)
sys.meta_path = [NoTensorFlow if f is importlib.machinery.PathFinder else f for f in sys.meta_path]
sys.argv = sys.argv[1:]
runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
"""


def test_jax_and_torch_are_installed_beside_tensorflow():
    assert installed_backends() == BACKENDS


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_port_gives_pytorchs_features_on_every_backend(backend, tmp_path):
    import torch

    model = get_backbone("lite0").create_torch_model().eval()
    pixels = np.stack([np.asarray(prepare_image(image, 224)) for image in probe_images(4)])
    with torch.inference_mode():
        x = torch.from_numpy(normalise(pixels, get_backbone("lite0")))
        want = model.forward_head(model.forward_features(x), pre_logits=True).numpy()
    np.save(tmp_path / "pixels.npy", pixels)
    env = {**os.environ, "KERAS_BACKEND": backend}
    done = subprocess.run(
        [sys.executable, "-c", POOLED_FEATURES, str(tmp_path / "got.npy"), str(tmp_path / "pixels.npy")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0 and done.stdout.strip().splitlines()[-1] == backend, done.stderr[-2000:]
    assert np.abs(np.load(tmp_path / "got.npy") - want).max() <= PARITY_TOLERANCE


@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_each_backend_trains_from_the_command_line_and_is_served_as_scored(backend, tiny_scenes, tmp_path):
    """JAX through tf.data beside TensorFlow; PyTorch with no TensorFlow at all (no --backend: the trainer picks the
    installed one), through the PyDataset, as on a GPU machine with PyTorch alone."""
    from benchmarks.serving.predictors import load_predictor

    argv = ["--dataset", str(tiny_scenes), "--results", str(tmp_path)]
    tiny = ["--img-size", "64", "--epochs", "1", "--freeze-epochs", "0", "--bs", "8", "--lr", "1e-3", "--lr-mult", "10"]
    if backend == "torch":
        command = [sys.executable, "-c", WITHOUT_TENSORFLOW, "keras_model.train", *argv, *tiny]
    else:
        command = [sys.executable, "-m", "keras_model.train", *argv, "--backend", backend, *tiny]
    env = {key: value for key, value in os.environ.items() if key != "KERAS_BACKEND"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    info = json.loads((run_dir / "run.json").read_text())
    assert info["status"] == "done" and info["params"]["backend"] == backend and info["params"]["lr_mult"] == 10
    assert info["params"]["loader"] == ("pydataset" if backend == "torch" else "tf.data")
    assert info["params"]["precision"] == "auto" and info["timings"]["train_s"] > 0
    assert "served on TensorFlow" in info["served_check"]["skipped"]  # this test checks it instead, below
    scored = pd.read_csv(run_dir / "predictions.csv").query("split == 'test'").set_index("image")
    served = load_predictor(run_dir, "native").predict([open_rgb(tiny_scenes / rel) for rel in scored.index])
    np.testing.assert_allclose(served, scored[info["labels"]].to_numpy(float), atol=1e-4)


def test_a_backend_other_than_the_loaded_one_is_one_clear_line(tiny_scenes, tmp_path):
    from keras_model.config import make_config
    from keras_model.train import train

    with pytest.raises(BenchmarkError, match=r"--backend jax: Keras is already loaded with the tensorflow backend"):
        train(tiny_scenes, tmp_path, make_config(img_size=64, epochs=1, freeze_epochs=0, backend="jax"))
    assert not list(tmp_path.iterdir())  # refused before a run folder is made


def test_the_command_line_sets_keras_backend_before_keras_is_imported(monkeypatch):
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    choose_from_argv(["--dataset", "d", "--backend=jax"])
    assert os.environ["KERAS_BACKEND"] == "jax"
    choose_from_argv(["--backend", "torch", "--epochs", "1"])
    assert os.environ["KERAS_BACKEND"] == "torch"
    choose_from_argv(["--backend", "theano"])  # not a backend: argparse refuses it with the choices
    assert os.environ["KERAS_BACKEND"] == "torch"


def test_without_tensorflow_asking_for_it_is_one_clear_line(tiny_scenes, tmp_path):
    argv = ["keras_model.train", "--dataset", str(tiny_scenes), "--results", str(tmp_path), "--backend", "tensorflow"]
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_TENSORFLOW, *argv], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip() == (
        "error: Keras backend 'tensorflow' is not installed here; pip install tensorflow, or choose --backend jax "
        "or torch"
    )
    assert not list(tmp_path.iterdir())


def test_the_pydataset_sees_what_tf_data_sees_and_reshuffles_each_epoch(tiny_scenes):
    """Evaluation: the same pixels as tf.data (the shared view, resized here: 64-px images at 48), within one grey
    level on rounding ties. Training: every image once per epoch, a new order each epoch, a seed repeats itself
    whatever order its batches are made in."""
    from benchmarks.data.dataset import load_dataset
    from keras_model.config import make_config
    from keras_model.inputs import evaluation_input, training_input

    dataset = load_dataset(tiny_scenes)
    config = {loader: make_config(img_size=48, bs=8, epochs=1, loader=loader) for loader in LOADERS}
    via_tf_data = np.concatenate(
        [np.asarray(x) for x, _ in evaluation_input(dataset, ["valid", "test"], config["tf.data"])]
    )
    batches = evaluation_input(dataset, ["valid", "test"], config["pydataset"])
    via_pydataset = np.concatenate([batches[i][0] for i in range(len(batches))])
    assert via_pydataset.shape == via_tf_data.shape == (16, 48, 48, 3)
    differ = np.abs(via_pydataset - via_tf_data)
    assert differ.max() <= 1 and (differ > 0).mean() < 1e-3

    def epoch(batches) -> tuple[np.ndarray, np.ndarray]:
        pixels, targets = zip(*(batches[i] for i in range(len(batches))), strict=True)
        batches.on_epoch_end()
        return np.concatenate(pixels), np.concatenate(targets)

    train = training_input(dataset, config["pydataset"])
    first, second = epoch(train), epoch(train)
    sorted_rows = lambda targets: targets[np.lexsort(targets.T)]  # noqa: E731
    for pixels, targets in (first, second):
        assert pixels.shape == (32, 48, 48, 3) and pixels.dtype == np.float32
        np.testing.assert_array_equal(sorted_rows(targets), sorted_rows(dataset.targets("train").astype(np.float32)))
    assert not np.array_equal(first[0], second[0])
    np.testing.assert_array_equal(epoch(training_input(dataset, config["pydataset"]))[0], first[0])
    # each batch draws from its own seed: made in any order (worker threads), an epoch is the same
    backwards = training_input(dataset, config["pydataset"])
    reversed_batches = [backwards[i][0] for i in reversed(range(len(backwards)))]
    np.testing.assert_array_equal(np.concatenate(reversed_batches[::-1]), first[0])
    mixing = make_config(img_size=48, bs=8, epochs=1, loader="pydataset", mixup=True)
    pixels, targets = training_input(dataset, mixing)[0]
    assert pixels.shape == (8, 48, 48, 3) and ((targets > 0) & (targets < 1)).any()  # MixUp's soft targets
