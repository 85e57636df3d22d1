"""--recipe matched: fastai and Keras get one head, optimizer, LR schedule, augmentations and BatchNorm handling, so
their difference measures the framework alone."""

import warnings

import numpy as np
import pytest

warnings.filterwarnings("ignore", category=FutureWarning)

from benchmarks.data.dataset import load_dataset  # noqa: E402
from benchmarks.errors import BenchmarkError  # noqa: E402
from benchmarks.evaluation.groups import group_runs  # noqa: E402
from benchmarks.evaluation.results import PARAM_DEFAULTS_WHEN_MISSING, load_run  # noqa: E402
from benchmarks.models.backbones import get_backbone  # noqa: E402
from benchmarks.models.baselines import probe_head  # noqa: E402
from benchmarks.training.options import MATCHED, CommonConfig  # noqa: E402

pytestmark = pytest.mark.training  # trains models on tiny data: `make test-fast` leaves these out

SIZE = 64
TINY = {"img_size": SIZE, "bs": 8, "freeze_epochs": 1, "epochs": 1, "unfreeze": 2, "recipe": "matched"}


def test_the_unfrozen_phase_follows_one_lr_schedule_in_both_frameworks():
    from fastai_model.train import matched_schedule
    from keras_model.config import make_config
    from keras_model.model import fine_tune_learning_rate

    steps_per_epoch, epochs = 13, 3
    config = make_config(recipe="matched", epochs=epochs)
    keras_lr = fine_tune_learning_rate(config, steps_per_epoch)
    fastai_lr = matched_schedule(MATCHED.head_lr * MATCHED.fine_tune_lr_factor, steps_per_epoch * epochs)
    total = steps_per_epoch * epochs
    # fastai's ParamScheduler reads the schedule at train_iter / total before each step; Keras at its step count
    for step in range(total):
        assert float(fastai_lr(step / total)) == pytest.approx(float(keras_lr(step)), rel=1e-5, abs=1e-12)
    assert float(keras_lr(0)) == pytest.approx(1e-5) and float(keras_lr(4)) == pytest.approx(1e-4)


def test_both_frameworks_build_the_same_head_from_the_probe(tiny_scenes):
    import torch

    from fastai_model.config import make_config as fastai_config
    from fastai_model.data import make_dataloaders
    from fastai_model.learner import FrozenBatchNormParameters, build_learner
    from keras_model.config import make_config as keras_config
    from keras_model.model import build_classifier

    dataset = load_dataset(tiny_scenes)
    backbone = get_backbone("lite0")
    fit, _ = probe_head(dataset, "lite0", SIZE)
    weight, bias = fit.linear_head()

    config = fastai_config(**TINY)
    dls = make_dataloaders(dataset, backbone, config)
    learn = build_learner(dls, backbone, config, path=".", probe_head=(weight, bias))
    head = [m for m in learn.model[1].modules() if not list(m.children())]  # the layers, not their containers
    assert [type(m).__name__ for m in head] == ["AdaptiveAvgPool2d", "Flatten", "Dropout", "Linear"]
    assert head[2].p == MATCHED.dropout and head[3].in_features == 1280

    model = build_classifier(backbone, dataset.labels, keras_config(**TINY))
    model.get_layer("scores").set_weights([weight.T, bias])
    assert [layer.name for layer in model.layers[2:]] == ["pool", "dropout", "scores"]
    assert model.get_layer("dropout").rate == MATCHED.dropout
    kernel, keras_bias = model.get_layer("scores").get_weights()
    np.testing.assert_allclose(head[3].weight.detach().numpy(), kernel.T, atol=1e-7)
    np.testing.assert_allclose(head[3].bias.detach().numpy(), keras_bias, atol=1e-7)

    # BatchNorm frozen whole in fastai too: no trainable scale or shift once the body is unfrozen
    learn.unfreeze()
    next(cb for cb in learn.cbs if isinstance(cb, FrozenBatchNormParameters)).before_fit()
    norms = [m for m in learn.model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and not any(p.requires_grad for m in norms for p in m.parameters())
    assert learn.opt_func.keywords == {"mom": 0.9, "sqr_mom": 0.999, "eps": 1e-7}


def test_matched_recipe_fixes_the_options_that_would_break_the_match():
    from fastai_model.config import make_config as fastai_config
    from fastai_model.learner import precision_mode
    from keras_model.config import make_config as keras_config

    with pytest.raises(BenchmarkError, match="--schedule plateau: --recipe matched sets it to cosine"):
        keras_config(recipe="matched", schedule="plateau")
    with pytest.raises(BenchmarkError, match="--progressive True"):
        fastai_config(recipe="matched", progressive=True)
    with pytest.raises(BenchmarkError, match="--recipe 'same'"):
        keras_config(recipe="same")
    assert fastai_config(recipe="matched").train_bn is False
    assert precision_mode("auto", "matched") == "fp32"  # no GPU here; Keras' auto is float32 on this CPU too
    assert keras_config(schedule="plateau").recipe == "idiomatic"


def test_runs_that_predate_a_setting_group_with_runs_at_its_default(fastai_run, tmp_path):
    """Older runs do not record ``recipe`` (or ``loss``, or Keras' ``loader``); they are the idiomatic BCE tf.data runs
    they were."""
    from keras_model.config import make_config as make_keras_config

    keras_only = ("loader", "fine_tune_lr", "lr_mult")  # Keras' own settings (loader: tf.data beside TensorFlow)
    trainers_defaults = {k: getattr(CommonConfig(), k) for k in PARAM_DEFAULTS_WHEN_MISSING if k not in keras_only}
    trainers_defaults.update({k: getattr(make_keras_config(), k) for k in keras_only})
    assert PARAM_DEFAULTS_WHEN_MISSING == trainers_defaults  # the results format's defaults are the trainers' defaults
    new = load_run(fastai_run.path)
    old = load_run(fastai_run.path)
    old.info["params"] = {k: v for k, v in new.params.items() if k not in ("recipe", "loss")}
    matched = load_run(fastai_run.path)
    matched.info["params"] = {**new.params, "recipe": "matched"}
    groups = group_runs([new, old, matched])
    assert len(groups) == 2 and len(groups[0].runs) == 2
    assert "recipe=matched" in groups[1].name and "recipe=idiomatic" in groups[0].name


@pytest.mark.parametrize("family", ["fastai", "keras"])
def test_a_matched_run_trains_and_records_its_recipe(family, tiny_scenes, tmp_path):
    if family == "fastai":
        from fastai_model.config import make_config
        from fastai_model.train import train
    else:
        from keras_model.config import make_config
        from keras_model.train import train
    run = load_run(train(tiny_scenes, tmp_path, make_config(**TINY)).path)
    assert run.status == "done" and run.params["recipe"] == "matched"
    assert run.params["lr_used"] == MATCHED.head_lr  # no lr_find in the matched recipe
    assert not (run.path / "lr_find.png").exists()
    assert [row["phase"] for row in run.info["history"]] == ["frozen", "unfrozen"]
