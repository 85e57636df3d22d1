"""LP-FT: both trainers start fine-tuning from the linear probe's head, so they begin where the probe ends."""

import warnings

import numpy as np
import pytest
import torch

warnings.filterwarnings("ignore", category=FutureWarning)
pytestmark = pytest.mark.training  # trains models on tiny data: `make test-fast` leaves these out

from benchmarks.data.dataset import load_dataset  # noqa: E402
from benchmarks.data.images import open_rgb  # noqa: E402
from benchmarks.errors import BenchmarkError  # noqa: E402
from benchmarks.models.backbones import get_backbone  # noqa: E402
from benchmarks.models.baselines import (  # noqa: E402
    PROBE_C_GRID,
    LinearProbePredictor,
    _probabilities,
    fit_probe,
    probe_head,
    run_linear_probe,
)

SIZE = 64


@pytest.fixture(scope="module")
def probe(tiny_scenes, tmp_path_factory):
    """The probe baseline at the trainers' tiny image size, and the same fit as a head."""
    dataset = load_dataset(tiny_scenes)
    run = run_linear_probe(dataset, tmp_path_factory.mktemp("probe"), img_size=SIZE)
    fit, _ = probe_head(dataset, "lite0", SIZE)
    images = [open_rgb(p) for p in dataset.image_paths("test")]
    return dataset, LinearProbePredictor(run.path), fit, images


def test_linear_head_folds_the_scaler_into_the_weights(small_dataset):
    dataset = load_dataset(small_dataset)
    features = np.random.default_rng(0).normal(size=(len(dataset.items), 6)) * [1, 5, 0.1, 2, 3, 1] + 4
    fit = fit_probe(dataset, features)
    weight, bias = fit.linear_head()
    direct = 1 / (1 + np.exp(-(features @ weight.T + bias)))
    np.testing.assert_allclose(direct, _probabilities(fit.models, fit.scaler.transform(features)), atol=1e-5)


def test_fastai_head_from_the_probe_predicts_what_the_probe_predicts(probe, tmp_path):
    from fastai_model.config import make_config
    from fastai_model.data import make_dataloaders
    from fastai_model.learner import build_learner
    from fastai_model.serving import FastaiPredictor

    dataset, served_probe, fit, images = probe
    config = make_config(img_size=SIZE, bs=8, lr=1e-3)
    assert config.head_init == "probe"  # LP-FT is the default
    backbone = get_backbone("lite0")
    learn = build_learner(
        make_dataloaders(dataset, backbone, config), backbone, config, tmp_path, probe_head=fit.linear_head()
    )
    learn.model.eval()
    pixels = FastaiPredictor.network_input(type("Serving", (), {"img_size": SIZE, "backbone": backbone})(), images)
    with torch.inference_mode():
        before_fine_tuning = torch.sigmoid(learn.model(torch.from_numpy(pixels)).float()).numpy()
    np.testing.assert_allclose(before_fine_tuning, served_probe.predict(images), atol=1e-4)


def test_keras_head_from_the_probe_predicts_what_the_probe_predicts(probe):
    from keras_model.config import make_config
    from keras_model.model import build_classifier
    from keras_model.serving import KerasPredictor

    dataset, served_probe, fit, images = probe
    config = make_config(img_size=SIZE, bs=8, lr=1e-3)
    model = build_classifier(get_backbone("lite0"), dataset.labels, config)
    weight, bias = fit.linear_head()
    model.get_layer("scores").set_weights([weight.T, bias])
    pixels = KerasPredictor.preprocess(type("Serving", (), {"img_size": SIZE})(), images)
    before_fine_tuning = np.asarray(model(pixels, training=False))
    np.testing.assert_allclose(before_fine_tuning, served_probe.predict(images), atol=2e-3)  # ported body: ~1e-4


def test_trained_runs_say_where_their_head_came_from(fastai_run, keras_run):
    for run in (fastai_run, keras_run):
        head = run.info["head_init"]
        assert "linear probe" in head["from"] and head["c"] in PROBE_C_GRID


def test_random_head_keeps_fastais_own_head_and_bad_values_are_refused():
    from fastai_model.learner import head_kwargs
    from keras_model.config import make_config

    assert head_kwargs("random") == {} and head_kwargs("probe")["lin_ftrs"] == []
    with pytest.raises(BenchmarkError, match="--head-init 'probe2'"):
        make_config(head_init="probe2")


def test_quick_presets_fine_tune_at_once_from_the_probes_head_and_give_a_random_head_its_own_epochs():
    from benchmarks.training.options import RANDOM_HEAD_FREEZE_EPOCHS
    from fastai_model.config import make_config as fastai_config
    from keras_model.config import make_config as keras_config

    for make in (fastai_config, keras_config):
        assert make("quick").freeze_epochs == 0  # LP-FT: the head is fitted before training starts
        assert make("quick", head_init="random").freeze_epochs == RANDOM_HEAD_FREEZE_EPOCHS == 2
        assert make("quick", head_init="random", freeze_epochs=0).freeze_epochs == 0  # the user's word wins
        assert make("quick", freeze_epochs=1).freeze_epochs == 1


def test_the_quick_presets_lr_holds_for_lp_ft_only_and_the_users_lr_wins():
    """The presets' LR was tuned for LP-FT's idiomatic recipe (benchmarks/grids/quick-lr.toml); the matched recipe
    fixes its own LR in both frameworks and a random head gets the framework's own choice (fastai: lr_find)."""
    from fastai_model.config import PRESETS as FASTAI_PRESETS
    from fastai_model.config import make_config as fastai_config
    from keras_model.config import PRESETS as KERAS_PRESETS
    from keras_model.config import make_config as keras_config

    for make, presets in ((fastai_config, FASTAI_PRESETS), (keras_config, KERAS_PRESETS)):
        assert make("quick").lr == presets["quick"]["lr"] > 1e-3
        assert make("quick", recipe="matched").lr == "auto"
        assert make("quick", head_init="random").lr == "auto"
        assert make("quick", lr="5e-4").lr == 5e-4
        assert make("quick", recipe="matched", lr="5e-4").lr == 5e-4
        assert make("full").lr == presets["quick"]["lr"] and make("full", head_init="random").lr == "auto"


def test_the_small_preset_blends_with_the_probes_head_and_a_random_head_drops_the_blend():
    """ "small" ends on a WiSE-FT blend of the LP-FT start and the last epoch (chosen on small development draws):
    a random head has no start worth blending with, so the preset's blend is dropped, and only a user's own
    --wise-ft with a random head is refused."""
    from fastai_model.config import make_config as fastai_config
    from keras_model.config import make_config as keras_config

    for make in (fastai_config, keras_config):
        small = make("small")
        assert small.preset == "small" and small.wise_ft < 1 and small.head_init == "probe"
        assert 0.5 < small.keep_best_confidence < make("quick").keep_best_confidence  # guarded, chosen on dev draws
        assert small.epochs > make("quick").epochs  # small data takes more, gentler epochs
        assert make("small", head_init="random").wise_ft == 1.0
        assert make("small", wise_ft=1.0).wise_ft == 1.0
        with pytest.raises(BenchmarkError, match="--wise-ft 0.5 with --head-init random"):
            make("small", head_init="random", wise_ft=0.5)
    assert fastai_config("small").lr_mult == 10  # the unfrozen stages move at this gentle LR (dev draws)
    assert fastai_config("small", recipe="matched").lr_mult == 100  # the matched recipe fixes it, as for quick
    with pytest.raises(BenchmarkError, match="--lr-mult 10: --recipe matched"):
        fastai_config("small", recipe="matched", lr_mult=10)  # given by the user: refused, not ignored
