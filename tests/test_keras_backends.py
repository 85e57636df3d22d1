"""Keras on each of its backends: the same port, recipe and tf.data input; every backend installed here trains one
epoch from the command line, and its model is served (on TensorFlow, in this process) as it was scored."""

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
from keras_model.backends import BACKENDS, choose_from_argv, installed_backends

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
    from benchmarks.serving.predictors import load_predictor

    argv = ["--dataset", str(tiny_scenes), "--results", str(tmp_path), "--backend", backend]
    tiny = ["--img-size", "64", "--epochs", "1", "--freeze-epochs", "0", "--bs", "8", "--lr", "1e-3"]
    done = subprocess.run(
        [sys.executable, "-m", "keras_model.train", *argv, *tiny], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    info = json.loads((run_dir / "run.json").read_text())
    assert info["status"] == "done" and info["params"]["backend"] == backend
    assert info["params"]["precision"] == "auto" and info["timings"]["train_s"] > 0
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
