"""Keras trainer on the 48-image, 64-px StampScenes built in conftest (one frozen + one unfrozen epoch)."""

import json
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import benchmarks.models.torch_first  # noqa: F401  (PyTorch before TensorFlow)
from benchmarks.data.dataset import load_dataset
from benchmarks.data.images import open_rgb
from benchmarks.errors import BenchmarkError, DatasetError
from benchmarks.evaluation.resampling import PairedGain
from benchmarks.evaluation.results import load_run
from benchmarks.models.backbones import get_backbone
from benchmarks.training import keep_best
from keras_model import callbacks as keras_callbacks
from keras_model import train as train_module
from keras_model.backbone import feature_extractor, keras
from keras_model.config import make_config
from keras_model.data import evaluation_data, traced_resize_square, training_data
from keras_model.model import BODY, build_classifier, compile_phase, set_body_trainable
from keras_model.serving import KerasPredictor
from tests.conftest import make_dataset

TINY = dict(img_size=64, epochs=1, freeze_epochs=1, lr=1e-3, bs=8, precision="fp32")
pytestmark = pytest.mark.training  # trains models on tiny data: `make test-fast` leaves these out


@pytest.fixture(scope="module")
def trained(keras_run):
    return keras_run


def batchnorm_state(model) -> dict:
    return {
        layer.name: [w.copy() for w in layer.get_weights()]
        for layer in model.get_layer(BODY).layers
        if "bn" in layer.name
    }


def test_one_epoch_run_is_complete_and_scored(trained):
    info = json.loads((trained.path / "run.json").read_text())
    assert info["status"] == "done" and info["kind"] == "keras" and info["backbone"] == "lite0"
    assert [row["phase"] for row in info["history"]] == ["frozen", "unfrozen"]
    # the losses under fastai's names (the dashboard's curves read them) and the evaluator's exact valid macro AUC,
    # from the epoch's one valid pass (keep-best's): no fit validation, no Keras AUC metric on training batches
    assert {"train_loss", "valid_loss", "val_macro_auc", "seconds"} <= set(info["history"][0])
    assert not {"loss", "val_loss", "auc", "val_auc"} & set(info["history"][0])
    kept = [e["valid_macro_auc"] for e in info["kept"]["epochs"]]  # rounded to 4 places there, 5 in the history
    assert [row["val_macro_auc"] for row in info["history"]] == pytest.approx(kept, abs=1e-4)
    predictions = pd.read_csv(trained.path / "predictions.csv")
    assert sorted(predictions["split"].unique()) == ["test", "valid"] and len(predictions) == 16
    metrics = json.loads((trained.path / "metrics.json").read_text())
    assert metrics["thresholds_tuned_on"] == "valid"
    assert (trained.path / "model.keras").is_file() and info["timings"]["predict_s"] > 0
    assert info["model"]["size_bytes"] < 20e6  # serving copy without optimizer state
    assert info["served_check"]["max_abs_gap"] < 1e-3  # the served model gives the scores the run recorded


def test_mixup_batches_stay_float32_under_a_mixed_bfloat16_model(tiny_scenes):
    """The input pipeline computes in float32 whatever the model's policy: under mixed_bfloat16 (``--precision auto``
    on AMX CPUs) MixUp used to get bf16 batches and fail on its float32 weights."""
    import keras

    keras.mixed_precision.set_dtype_policy("mixed_bfloat16")
    try:
        config = make_config(**{**TINY, "mixup": True, "precision": "bf16"})
        images, labels = next(iter(training_data(load_dataset(tiny_scenes), config)))
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    assert images.dtype.name == labels.dtype.name == "float32"
    assert images.shape[1:] == (64, 64, 3) and 0 <= float(labels.numpy().min()) <= float(labels.numpy().max()) <= 1


def test_training_and_evaluation_pipelines_run_without_tf_data_autotune(tiny_scenes):
    """With the autotuner on, a finished iterator's teardown stalled ~10 s in one epoch in three (docs/trainers.md)."""
    dataset, config = load_dataset(tiny_scenes), make_config(**TINY)
    for data in (training_data(dataset, config), evaluation_data(dataset, ["valid"], config)):
        assert data.options().autotune.enabled is False
    batches = list(evaluation_data(dataset, ["valid"], config))
    assert sum(len(labels) for _, labels in batches) == len(dataset.rows("valid"))


def test_saved_model_loads_safely_and_predicts_what_training_wrote(trained, tiny_scenes):
    dataset = load_dataset(tiny_scenes)
    predictor = KerasPredictor(trained.path)  # safe_mode=True load
    written = pd.read_csv(trained.path / "predictions.csv").set_index("image")
    for rel in dataset.rows("test")["image"][:3]:
        served = predictor.predict([open_rgb(tiny_scenes / rel)])[0]
        np.testing.assert_allclose(served, written.loc[rel, predictor.labels].to_numpy(float), atol=1e-4)


@pytest.mark.parametrize("size", [64, 224])
def test_the_resize_is_the_identity_on_an_image_already_at_the_served_size(size):
    """What lets KerasPredictor skip the resize for such images without serving other pixels than it scored."""
    rng = np.random.default_rng(size)
    for _ in range(5):
        pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        np.testing.assert_array_equal(traced_resize_square(size)(pixels).numpy(), pixels)


def test_batchnorm_keeps_imagenet_statistics_in_both_phases(trained):
    """training=False on the body: moving mean/variance never move, even after unfreezing."""
    imagenet = {
        layer.name: layer.get_weights()
        for layer in feature_extractor(get_backbone("lite0")).layers
        if "bn" in layer.name
    }
    model = KerasPredictor(trained.path).model
    for name, (_gamma, _beta, mean, var) in batchnorm_state(model).items():
        np.testing.assert_array_equal(mean, imagenet[name][2])
        np.testing.assert_array_equal(var, imagenet[name][3])


def test_the_same_seed_trains_the_same_model(trained, tiny_scenes, tmp_path):
    """Op determinism on: the augmentation map's random layers would otherwise race for their seed state in
    parallel tf.data calls, and one seed gave two different models (StampScenes-450: macro AUC 0.699 vs 0.705).
    At this tiny size the race rarely shows, so the setting itself is checked too."""
    from tensorflow.python.framework.config import is_op_determinism_enabled  # no public reader in TF 2.21

    again = train_module.train(tiny_scenes, tmp_path, make_config(**TINY))
    assert is_op_determinism_enabled()
    first = pd.read_csv(trained.path / "predictions.csv")
    second = pd.read_csv(again.path / "predictions.csv")
    pd.testing.assert_frame_equal(first, second)


def test_wise_ft_ends_halfway_between_the_start_and_the_trained_weights_and_serves_them(tiny_scenes, tmp_path):
    import keras

    run = train_module.train(tiny_scenes, tmp_path, make_config(**TINY, keep_best=False, wise_ft=0.5))
    model = keras.saving.load_model(run.path / keras_callbacks.CHECKPOINT)  # the last epoch, as trained
    trained = model.get_weights()
    model.load_weights(run.path / keras_callbacks.START_WEIGHTS)
    start = model.get_weights()
    served = keras.saving.load_model(run.path / "model.keras").get_weights()
    moved = [i for i, (s, t) in enumerate(zip(start, trained)) if not np.array_equal(s, t)]
    assert moved  # the unfrozen epoch changed the weights, so "halfway" is a real claim
    for i in moved:
        np.testing.assert_allclose(served[i], (start[i] + trained[i]) / 2, rtol=1e-5, atol=1e-6)
    assert load_run(run.path).params["wise_ft"] == 0.5


def test_under_wise_ft_keep_best_puts_the_start_back_when_the_blend_is_no_better(tiny_scenes, tmp_path, monkeypatch):
    """The blend loses to the start on valid (forced here): the served weights are the start's, and run.json
    says so."""
    import keras

    monkeypatch.setattr(keep_best, "paired_macro_auc_gain", lambda *args, **kwargs: PairedGain(-0.1, 0.0, 0.01))
    run = train_module.train(tiny_scenes, tmp_path, make_config(**TINY, wise_ft=0.5))
    model = keras.saving.load_model(run.path / "model.keras")
    served = model.get_weights()
    model.load_weights(run.path / keras_callbacks.START_WEIGHTS)
    for served_weight, start_weight in zip(served, model.get_weights()):
        np.testing.assert_array_equal(served_weight, start_weight)
    kept = load_run(run.path).info["kept"]
    assert keep_best.kept_the_start(kept) and kept["wise_ft_blend"]["share_ahead_of_start"] == 0.0


def test_frozen_phase_leaves_the_body_unchanged(tiny_scenes):
    dataset = load_dataset(tiny_scenes)
    config = make_config(**TINY)
    model = build_classifier(get_backbone("lite0"), dataset.labels, config)
    set_body_trainable(model, None)
    compile_phase(model, config, "frozen", steps_per_epoch=4)
    body_before = [w.copy() for w in model.get_layer(BODY).get_weights()]
    head_before = model.get_layer("scores").get_weights()[0].copy()
    model.fit(training_data(dataset, config), epochs=1, verbose=0, shuffle=False)
    assert all(np.array_equal(a, b) for a, b in zip(body_before, model.get_layer(BODY).get_weights()))
    assert not np.array_equal(head_before, model.get_layer("scores").get_weights()[0])


def test_unfreeze_top_stages_only(tiny_scenes):
    dataset = load_dataset(tiny_scenes)
    model = build_classifier(get_backbone("lite0"), dataset.labels, make_config(**TINY))
    set_body_trainable(model, 2)
    trainable = {layer.name for layer in model.get_layer(BODY).layers if layer.trainable and layer.weights}
    assert "conv_head" in trainable and "blocks_6_0_conv_pw" in trainable and "blocks_5_0_conv_dw" in trainable
    assert "blocks_4_0_conv_pw" not in trainable and "conv_stem" not in trainable


def test_lr_mult_gives_fastais_three_groups_and_each_variable_its_share_of_the_step(tiny_scenes, tmp_path):
    from keras_model.model import discriminative_scales
    from keras_model.optimizer import DiscriminativeAdamW

    dataset = load_dataset(tiny_scenes)
    config = make_config(**TINY, unfreeze=0, lr_mult=100)
    model = build_classifier(get_backbone("lite0"), dataset.labels, config)
    set_body_trainable(model, config.unfreeze)
    scales = discriminative_scales(model, config)
    by_layer = {path.split("/")[-2]: scale for path, scale in scales.items()}
    assert by_layer["conv_stem"] == by_layer["blocks_3_0_conv_pw"] == pytest.approx(0.01)
    assert by_layer["blocks_4_0_conv_pw"] == by_layer["conv_head"] == pytest.approx(0.1)
    assert not any("scores" in path for path in scales)  # the head at the peak itself
    # one step with equal gradients moves each variable by its share of the rate; decoupled decay shrinks it by
    # its share too
    inputs = keras.Input((4,))
    early = keras.layers.Dense(3, name="early")(inputs)
    toy = keras.Model(inputs, keras.layers.Dense(2, name="head")(early))
    weights = {v.path: np.asarray(v.numpy()).copy() for v in toy.trainable_variables}
    optimizer = DiscriminativeAdamW({"early/kernel": 0.1}, learning_rate=1e-2, weight_decay=0.0)
    optimizer.apply([np.ones(v.shape, "float32") for v in toy.trainable_variables], toy.trainable_variables)
    moved = {v.path: np.abs(np.asarray(v.numpy()) - weights[v.path]).max() for v in toy.trainable_variables}
    assert moved["early/kernel"] == pytest.approx(1e-3, rel=1e-3) and moved["head/bias"] == pytest.approx(
        1e-2, rel=1e-3
    )
    weights = {v.path: np.asarray(v.numpy()).copy() for v in toy.trainable_variables}
    optimizer = DiscriminativeAdamW({"early/kernel": 0.1}, learning_rate=1e-2, weight_decay=0.5)
    optimizer.apply([np.zeros(v.shape, "float32") for v in toy.trainable_variables], toy.trainable_variables)
    after = {v.path: np.asarray(v.numpy()) for v in toy.trainable_variables}
    np.testing.assert_allclose(after["early/kernel"], weights["early/kernel"] * (1 - 0.5 * 1e-3), rtol=1e-6)
    np.testing.assert_allclose(after["head/kernel"], weights["head/kernel"] * (1 - 0.5 * 1e-2), rtol=1e-6)
    # a checkpoint keeps the optimizer and its groups (--resume recompiles nothing)
    toy.compile(optimizer=optimizer, loss="mse")
    toy.save(tmp_path / "toy.keras")
    loaded = keras.saving.load_model(tmp_path / "toy.keras", safe_mode=True).optimizer
    assert isinstance(loaded, DiscriminativeAdamW) and loaded.lr_scales == {"early/kernel": 0.1}
    assert loaded.decoupled_weight_decay == 0.5


def test_ctrl_c_marks_run_interrupted_and_resume_finishes_it(tiny_scenes, tmp_path, monkeypatch):
    original = keras_callbacks.RunRecorder.on_epoch_end

    def interrupt_after_frozen_epoch(self, epoch, logs=None):
        original(self, epoch, logs)
        if self.phase == "frozen":
            raise KeyboardInterrupt

    monkeypatch.setattr(keras_callbacks.RunRecorder, "on_epoch_end", interrupt_after_frozen_epoch)
    with pytest.raises(KeyboardInterrupt):
        train_module.train(tiny_scenes, tmp_path, make_config(**TINY))
    run_dir = next(tmp_path.iterdir())
    info = load_run(run_dir).info
    assert info["status"] == "interrupted" and info["progress"] == {"phase": "frozen", "epoch": 0}
    assert (run_dir / "checkpoints" / "last.keras").is_file()
    monkeypatch.setattr(keras_callbacks.RunRecorder, "on_epoch_end", original)
    resumed = train_module.train(None, tmp_path, make_config(), resume=run_dir)
    info = load_run(resumed.path).info
    assert info["status"] == "done" and [r["phase"] for r in info["history"]] == ["frozen", "unfrozen"]
    # resumed, so no keep-best: the plain valid pass still gives the epoch its valid loss and macro AUC
    assert all({"valid_loss", "val_macro_auc"} <= set(row) for row in info["history"])


def test_label_without_training_positives_is_refused(tmp_path):
    rows = [(f"images/{s}{i}.png", "cat", s) for s in ("train", "valid", "test") for i in range(4)]
    rows += [("images/v_dog.png", "dog", "valid")]
    root = make_dataset(tmp_path / "ds", rows, ["cat", "dog"])
    with pytest.raises(DatasetError, match="label 'dog'"):
        train_module.train(root, tmp_path / "r", make_config(**TINY))


def test_fine_tune_lr_sets_phase_2s_peak_whatever_the_heads_lr():
    from keras_model.model import fine_tune_learning_rate

    assert fine_tune_learning_rate(make_config("quick", schedule="plateau"), 10) == pytest.approx(1e-3)
    assert fine_tune_learning_rate(make_config("quick", schedule="plateau", fine_tune_lr=3e-4), 10) == 3e-4
    cosine = fine_tune_learning_rate(make_config("quick", fine_tune_lr=3e-4), 10)
    assert float(cosine(10**6)) < 3e-4 and cosine.get_config()["warmup_target"] == pytest.approx(3e-4)


def test_bad_options_are_one_line_errors(capsys):
    with pytest.raises(BenchmarkError, match="--schedule 'linear'"):
        make_config(schedule="linear")
    with pytest.raises(BenchmarkError, match="--unfreeze 9"):
        make_config(unfreeze=9)
    with pytest.raises(BenchmarkError, match="--wise-ft 1.5"):
        make_config(wise_ft=1.5)
    with pytest.raises(BenchmarkError, match="--fine-tune-lr 2.0"):
        make_config(fine_tune_lr=2.0)
    with pytest.raises(BenchmarkError, match="give one"):
        make_config(fine_tune_lr=1e-3, fine_tune_lr_factor=0.5)
    with pytest.raises(BenchmarkError, match="--lr-mult 0.5"):
        make_config(lr_mult=0.5)
    with pytest.raises(BenchmarkError, match="--lr-mult 10"):
        make_config(recipe="matched", lr_mult=10)
    assert train_module.main(["--dataset", "/no/such/place"]) == 2
    assert "dataset folder not found" in capsys.readouterr().err
    assert train_module.main([]) == 2


def test_predict_cli_prints_scores_and_labels(trained, tiny_scenes, tmp_path, capsys):
    from tools.predict import main

    image = load_dataset(tiny_scenes).image_paths("test")[0]
    assert main([str(trained.path), str(image)]) == 0
    out = capsys.readouterr().out
    assert "labels:" in out and out.count("threshold") == len(load_dataset(tiny_scenes).labels)
    (tmp_path / "notes.png").write_text("not an image")
    assert main([str(trained.path), str(tmp_path / "notes.png")]) == 2
    assert "cannot read image" in capsys.readouterr().err


MIRRORED_RUN = """
import sys
import benchmarks.models.torch_first  # noqa: F401
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from keras_model import distributed, train
from keras_model.config import make_config

distributed.strategy = lambda backend="tensorflow": tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
train.train(sys.argv[1], sys.argv[2], make_config(img_size=64, epochs=1, freeze_epochs=1, lr=1e-3, bs=8))
"""


def test_the_trainer_runs_under_mirrored_strategy(tiny_scenes, tmp_path):
    """What several GPUs get (``MirroredStrategy``), on two logical CPU devices: the model is built, compiled,
    fitted, kept-best and scored under one strategy (evaluating outside its scope used to crash keep-best)."""
    results = tmp_path / "results"
    done = subprocess.run(
        [sys.executable, "-c", MIRRORED_RUN, str(tiny_scenes), str(results)],
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (run_dir,) = [path for path in results.iterdir() if path.is_dir()]
    info = json.loads((run_dir / "run.json").read_text())
    assert info["status"] == "done" and "kept" in info
    assert info["distributed"] == {"replicas": 2, "strategy": "MirroredStrategy", "global_batch_size": 8}
    assert (run_dir / "metrics.json").is_file()


def test_early_stopping_ends_a_phase_when_valid_auc_stops_rising_though_the_loss_still_falls():
    """What keep-best ranks epochs by; on valid loss, a MixUp run stopped while valid AUC still rose."""
    import keras

    run = None  # only the run recorder holds it, and it is not called here
    callbacks = keras_callbacks.training_callbacks(run, make_config(patience=1), "unfrozen", monitor_auc=True)
    (stopper,) = [cb for cb in callbacks if isinstance(cb, keras.callbacks.EarlyStopping)]
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    stopper.set_model(model)
    stopper.on_train_begin()
    stopper.on_epoch_end(0, {keras_callbacks.VALID_MACRO_AUC: 0.80, "val_loss": 0.40})
    assert not getattr(model, "stop_training", False)
    stopper.on_epoch_end(1, {keras_callbacks.VALID_MACRO_AUC: 0.78, "val_loss": 0.35})  # loss better, AUC worse
    assert model.stop_training
    fallback = keras_callbacks.training_callbacks(run, make_config(patience=1), "unfrozen", monitor_auc=False)
    assert [cb.monitor for cb in fallback if isinstance(cb, keras.callbacks.EarlyStopping)] == ["val_loss"]


def test_the_valid_pass_logs_valid_loss_and_macro_auc_and_only_the_loss_where_a_label_is_unrankable():
    import keras

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2, activation="sigmoid")])
    model.compile(loss="binary_crossentropy")
    images = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0]], dtype=np.float32)
    for targets, rankable in ((images.astype(int), True), (np.array([[1, 0], [1, 1], [1, 0], [1, 1]]), False)):
        valid_pass = keras_callbacks.ValidPass(images, targets)
        valid_pass.set_model(model)
        logs = {}
        valid_pass.on_epoch_end(0, logs)
        assert logs["val_loss"] == pytest.approx(model.evaluate(images, targets, verbose=0), rel=1e-5)
        assert (keras_callbacks.VALID_MACRO_AUC in logs) is rankable


def test_with_keep_best_early_stopping_watches_its_exact_valid_macro_auc(tmp_path):
    """Keras' AUC metric (200 fixed thresholds) read 0.830 where scikit-learn read 0.847 for an overconfident
    model; the keeper runs first and puts its figure into the logs the later callbacks get."""
    import keras

    class Keeper(keras_callbacks.KeepBestCallback):
        def __init__(self):  # the rule alone: valid scores are handed in, not predicted
            keras.callbacks.Callback.__init__(self)
            targets = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
            self.valid_targets, self.scores = targets, targets * 0.5 + 0.2
            self.rule = keras_callbacks.KeepBest(targets, np.full(targets.shape, 0.5), 0.0, "the start")

        def score(self, model):
            return self.scores

    keeper = Keeper()
    keeper.run = SimpleNamespace(path=tmp_path)  # where it saves the weights it keeps
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    model.compile(loss=keras.losses.BinaryCrossentropy(label_smoothing=0.1))
    keeper.set_model(model)
    callbacks = keras_callbacks.training_callbacks(None, make_config(patience=2), "unfrozen", keeper)
    (stopper,) = [cb for cb in callbacks if isinstance(cb, keras.callbacks.EarlyStopping)]
    assert callbacks[0] is keeper and stopper.monitor == keras_callbacks.VALID_MACRO_AUC
    logs = {}  # fit has no validation_data where keep-best runs: the keeper's one valid pass gives the loss too
    keeper.on_epoch_end(0, logs)
    assert logs[keras_callbacks.VALID_MACRO_AUC] == pytest.approx(1.0)  # the scores rank every label perfectly
    smoothed, p = keeper.valid_targets * 0.9 + 0.05, keeper.scores
    assert logs["val_loss"] == pytest.approx(-np.mean(smoothed * np.log(p) + (1 - smoothed) * np.log(1 - p)), rel=1e-5)
