"""fastai trainer on the 48-image, 64-px StampScenes built in conftest (one frozen + one unfrozen epoch)."""

import json
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

warnings.filterwarnings("ignore", category=FutureWarning)

from benchmarks.data.dataset import load_dataset  # noqa: E402
from benchmarks.data.images import open_rgb  # noqa: E402
from benchmarks.errors import BenchmarkError, DatasetError  # noqa: E402
from benchmarks.evaluation.resampling import PairedGain  # noqa: E402
from benchmarks.evaluation.results import load_run  # noqa: E402
from benchmarks.models.backbones import backbone_input, get_backbone  # noqa: E402
from benchmarks.training import keep_best  # noqa: E402
from fastai_model import callbacks  # noqa: E402
from fastai_model import train as train_module  # noqa: E402
from fastai_model.config import make_config  # noqa: E402
from fastai_model.data import make_dataloaders  # noqa: E402
from fastai_model.learner import build_learner  # noqa: E402
from fastai_model.serving import FastaiPredictor  # noqa: E402
from tests.conftest import make_dataset  # noqa: E402

pytestmark = pytest.mark.training  # trains models on tiny data: `make test-fast` leaves these out

TINY = dict(img_size=64, epochs=1, freeze_epochs=1, lr=1e-3, bs=8)


@pytest.fixture(scope="module")
def trained(fastai_run):
    return fastai_run


def test_one_epoch_run_is_complete_and_scored(trained, tiny_scenes):
    info = json.loads((trained.path / "run.json").read_text())
    assert info["status"] == "done" and info["kind"] == "fastai" and info["backbone"] == "lite0"
    assert [row["phase"] for row in info["history"]] == ["frozen", "unfrozen"]
    assert {"train_loss", "valid_loss", "seconds"} <= set(info["history"][0])
    predictions = pd.read_csv(trained.path / "predictions.csv")
    assert sorted(predictions["split"].unique()) == ["test", "valid"] and len(predictions) == 16
    metrics = json.loads((trained.path / "metrics.json").read_text())
    assert metrics["thresholds_tuned_on"] == "valid"
    for name in ("model_state.pt", "serving.json", "export.pkl"):
        assert (trained.path / name).is_file()
    assert info["params"]["lr_used"] == 1e-3 and info["timings"]["predict_s"] > 0


def test_serving_artifact_predicts_what_the_learner_predicts(trained, tiny_scenes):
    from fastai.learner import load_learner

    image_path = load_dataset(tiny_scenes).image_paths("test")[0]
    learn = load_learner(trained.path / "export.pkl")
    dl = learn.dls.test_dl(pd.DataFrame({"image": [str(image_path)], "labels": [""]}))
    expected = learn.get_preds(dl=dl)[0].numpy()
    served = FastaiPredictor(trained.path).predict([open_rgb(image_path)])
    np.testing.assert_allclose(served, expected, atol=1e-4)


def test_every_run_checks_that_its_served_model_gives_the_scores_it_recorded(trained, tiny_scenes):
    from benchmarks.training.served_check import check_served_is_scored

    dataset = load_dataset(tiny_scenes)
    assert load_run(trained.path).info["served_check"]["max_abs_gap"] < 1e-3
    recorded = pd.read_csv(trained.path / "predictions.csv").iloc[:, 2:].to_numpy()
    with pytest.raises(BenchmarkError, match="the served model's scores are up to 0.3"):
        check_served_is_scored(load_run(trained.path), dataset, recorded + 0.3)


def test_frozen_phase_leaves_the_body_unchanged(tiny_scenes, tmp_path):
    dataset = load_dataset(tiny_scenes)
    config = make_config(**TINY)
    backbone = get_backbone("lite0")
    learn = build_learner(make_dataloaders(dataset, backbone, config), backbone, config, path=tmp_path)
    convs = {n: p.detach().clone() for n, p in learn.model[0].named_parameters() if p.ndim == 4}
    head = [p.detach().clone() for p in learn.model[1].parameters()]
    learn.fit_one_cycle(1, 1e-3)
    assert all(torch.equal(p, convs[n]) for n, p in learn.model[0].named_parameters() if p.ndim == 4)
    assert any(not torch.equal(a, b) for a, b in zip(head, learn.model[1].parameters()))


def test_random_resized_crop_trains_on_crops_but_scores_valid_and_test_as_the_served_model_sees_them(tiny_scenes):
    """fastai's RandomResizedCrop centre-crops valid images; the served model resizes the whole frame. With
    ``--item-tfm rrc`` valid and test must still be the served model's input, so the scores that choose the epoch,
    tune the thresholds and fill the leaderboard are the served model's."""
    dataset, backbone = load_dataset(tiny_scenes), get_backbone("lite0")
    loaders = {tfm: make_dataloaders(dataset, backbone, make_config(**TINY, item_tfm=tfm)) for tfm in ("resize", "rrc")}
    resized, cropped = (loaders[tfm].valid.one_batch()[0] for tfm in ("resize", "rrc"))
    assert torch.equal(cropped, resized)
    frame = pd.DataFrame({"image": [str(p) for p in dataset.image_paths("test")[:4]], "labels": ""})
    tests = [loaders[tfm].test_dl(frame).one_batch()[0] for tfm in ("resize", "rrc")]
    assert torch.equal(*tests)
    served = backbone_input([open_rgb(p) for p in dataset.image_paths("test")[:4]], backbone, 64)
    torch.testing.assert_close(tests[0].float().cpu(), torch.from_numpy(served), atol=2e-2, rtol=0)


def test_same_seed_same_predictions(trained, tiny_scenes, tmp_path):
    again = train_module.train(tiny_scenes, tmp_path, make_config(**TINY))
    first = pd.read_csv(trained.path / "predictions.csv")
    second = pd.read_csv(again.path / "predictions.csv")
    np.testing.assert_allclose(first.iloc[:, 2:].to_numpy(), second.iloc[:, 2:].to_numpy(), atol=1e-5)


def test_ctrl_c_marks_run_interrupted_and_resume_finishes_it(tiny_scenes, tmp_path, monkeypatch):
    original = callbacks.RunRecorder.after_epoch

    def interrupt_after_frozen_epoch(self):
        original(self)
        if self.phase == "frozen":
            raise KeyboardInterrupt

    monkeypatch.setattr(callbacks.RunRecorder, "after_epoch", interrupt_after_frozen_epoch)
    with pytest.raises(KeyboardInterrupt):
        train_module.train(tiny_scenes, tmp_path, make_config(**TINY))
    run_dir = next(tmp_path.iterdir())
    info = load_run(run_dir).info
    assert info["status"] == "interrupted" and info["progress"] == {"phase": "frozen", "epoch": 0}
    assert (run_dir / "checkpoints" / "last.pth").is_file()
    monkeypatch.setattr(callbacks.RunRecorder, "after_epoch", original)
    resumed = train_module.train(None, tmp_path, make_config(), resume=run_dir)
    info = load_run(resumed.path).info
    assert info["status"] == "done" and [r["phase"] for r in info["history"]] == ["frozen", "unfrozen"]


def test_resume_mid_phase_and_before_any_epoch_and_from_a_damaged_checkpoint(tiny_scenes, tmp_path, monkeypatch):
    original = callbacks.RunRecorder.after_epoch
    config = make_config(**{**TINY, "freeze_epochs": 2})

    def interrupt_after_first_epoch(self):
        original(self)
        raise KeyboardInterrupt

    monkeypatch.setattr(callbacks.RunRecorder, "after_epoch", interrupt_after_first_epoch)
    with pytest.raises(KeyboardInterrupt):
        train_module.train(tiny_scenes, tmp_path / "mid", config)
    run_dir = next((tmp_path / "mid").iterdir())
    assert load_run(run_dir).info["progress"] == {"phase": "frozen", "epoch": 0}  # inside the 2-epoch frozen phase
    checkpoint = run_dir / "checkpoints" / "last.pth"
    assert checkpoint.is_file() and not list(checkpoint.parent.glob("*.partial*"))  # written whole, then renamed
    monkeypatch.setattr(callbacks.RunRecorder, "after_epoch", original)
    good = checkpoint.read_bytes()
    checkpoint.write_bytes(good[: len(good) // 3])
    with pytest.raises(BenchmarkError, match="cannot resume from it"):
        train_module.train(None, tmp_path, make_config(), resume=run_dir)
    checkpoint.write_bytes(good)
    resumed = train_module.train(None, tmp_path, make_config(), resume=run_dir)
    info = load_run(resumed.path).info
    assert info["status"] == "done" and [r["phase"] for r in info["history"]] == ["frozen", "frozen", "unfrozen"]

    # killed before its first epoch ended: no progress, no lr recorded -> the run starts again in its own folder
    info = load_run(resumed.path).info
    for key in ("progress", "history"):
        info.pop(key)
    info["params"].pop("lr_used")
    (resumed.path / "run.json").write_text(json.dumps({**info, "status": "running"}))
    again = train_module.train(None, tmp_path, make_config(), resume=resumed.path)
    assert load_run(again.path).status == "done" and again.path == resumed.path


def test_label_without_training_positives_is_refused(tmp_path):
    rows = [
        (f"images/{s}{i}.png", "cat" if s != "train" or i else "cat", s)
        for s in ("train", "valid", "test")
        for i in range(4)
    ]
    rows += [("images/v_dog.png", "dog", "valid")]
    root = make_dataset(tmp_path / "ds", rows, ["cat", "dog"])
    with pytest.raises(DatasetError, match="label 'dog' appears in valid but never in train"):
        train_module.train(root, tmp_path / "r", make_config(**TINY))


def test_bad_options_are_one_line_errors():
    with pytest.raises(BenchmarkError, match="--lr 'fast'"):
        make_config(lr="fast")
    with pytest.raises(BenchmarkError, match="unknown preset"):
        make_config("turbo")
    with pytest.raises(BenchmarkError, match="--wise-ft 0.0"):
        make_config(wise_ft=0.0)
    with pytest.raises(BenchmarkError, match="--wise-ft 0.5 with --head-init random"):
        make_config(wise_ft=0.5, head_init="random")
    assert train_module.main(["--dataset", "/no/such/place"]) == 2


def test_auto_lr_is_lr_find_for_a_random_head_and_fine_tunes_default_for_the_probes_head():
    from benchmarks.training.options import MATCHED

    assert not train_module.runs_lr_find(make_config())  # LP-FT: lr_find's loss is flat from a fitted head
    assert train_module.chosen_lr(make_config()) == train_module.FINE_TUNE["base_lr"] == 2e-3
    assert train_module.runs_lr_find(make_config(head_init="random"))
    assert train_module.runs_lr_find(make_config(lr="find"))  # asked for, whatever the head
    assert not train_module.runs_lr_find(make_config(recipe="matched", head_init="random"))
    assert train_module.chosen_lr(make_config(recipe="matched")) == MATCHED.head_lr
    assert train_module.chosen_lr(make_config(lr="5e-4")) == 5e-4
    with pytest.raises(BenchmarkError, match="Keras has no lr_find"):
        make_config(lr="find", recipe="matched")


def test_wise_ft_ends_halfway_between_the_start_and_the_trained_weights_and_serves_them(tiny_scenes, tmp_path):
    run = train_module.train(tiny_scenes, tmp_path, make_config(**TINY, keep_best=False, wise_ft=0.5))
    checkpoints = run.path / "checkpoints"
    start = torch.load(checkpoints / "start.pth", weights_only=True)
    # the last epoch, as trained (fastai pickles its optimizer state with fastcore types: a full load, of our own file)
    trained = torch.load(checkpoints / "last.pth", weights_only=False)["model"]
    served = torch.load(run.path / "model_state.pt", weights_only=True)
    moved = [name for name, value in start.items() if value.is_floating_point() and not value.equal(trained[name])]
    assert moved  # the unfrozen epoch changed the weights, so "halfway" is a real claim
    for name in moved:
        torch.testing.assert_close(served[name], (start[name] + trained[name]) / 2, rtol=1e-5, atol=1e-6)
    assert load_run(run.path).params["wise_ft"] == 0.5


def test_under_wise_ft_keep_best_puts_the_start_back_when_the_blend_is_no_better(tiny_scenes, tmp_path, monkeypatch):
    """The blend loses to the start on valid (forced here): the served weights are the start's, and run.json
    says so."""
    monkeypatch.setattr(keep_best, "paired_macro_auc_gain", lambda *args, **kwargs: PairedGain(-0.1, 0.0, 0.01))
    run = train_module.train(tiny_scenes, tmp_path, make_config(**TINY, wise_ft=0.5))
    start = torch.load(run.path / "checkpoints" / "start.pth", weights_only=True)
    served = torch.load(run.path / "model_state.pt", weights_only=True)
    for name, value in start.items():
        if value.is_floating_point():
            torch.testing.assert_close(served[name], value)
    kept = load_run(run.path).info["kept"]
    assert keep_best.kept_the_start(kept) and kept["wise_ft_blend"]["share_ahead_of_start"] == 0.0


def test_partial_unfreeze_with_frozen_batchnorm_trains_only_the_top_stages(tiny_scenes, tmp_path):
    dataset = load_dataset(tiny_scenes)
    config = make_config(**{**TINY, "unfreeze": 2, "train_bn": False})
    backbone = get_backbone("lite0")
    learn = build_learner(make_dataloaders(dataset, backbone, config), backbone, config, path=tmp_path)
    body = learn.model[0].model
    early = {n: t.detach().clone() for n, t in body.blocks[:5].state_dict().items()}
    late = {n: t.detach().clone() for n, t in body.blocks[5:].state_dict().items()}
    learn.fit_one_cycle(1, 1e-3)  # frozen phase: BnFreeze keeps even the running statistics
    assert all(torch.equal(t, late[n]) for n, t in body.blocks[5:].state_dict().items())
    learn.freeze_to(-2)
    learn.fit_one_cycle(1, 1e-3)
    assert all(torch.equal(t, early[n]) for n, t in body.blocks[:5].state_dict().items())
    assert any(not torch.equal(t, late[n]) for n, t in body.blocks[5:].state_dict().items() if t.is_floating_point())


def test_predict_cli_prints_scores_and_labels(trained, tiny_scenes, tmp_path, capsys):
    from tools.predict import main

    image = load_dataset(tiny_scenes).image_paths("test")[0]
    assert main([str(trained.path), str(image)]) == 0
    out = capsys.readouterr().out
    assert "labels:" in out and out.count("threshold") == len(load_dataset(tiny_scenes).labels)
    (tmp_path / "notes.png").write_text("not an image")
    assert main([str(trained.path), str(tmp_path / "notes.png")]) == 2
    assert "cannot read image" in capsys.readouterr().err


def test_tta_is_refused_so_the_served_model_is_the_scored_model():
    with pytest.raises(BenchmarkError, match="--tta: not offered"):
        make_config(tta=True)
    assert make_config(preset="full").tta is False


def test_the_run_recorder_and_keep_best_see_the_epoch_that_stops_training_early():
    """fastai's EarlyStoppingCallback cancels the fit in its after_epoch: callbacks ordered after it never see that
    epoch (a full-preset run once kept epoch 10's weights while run.json named epoch 8 and had no row for 10)."""
    from fastai.callback.tracker import EarlyStoppingCallback

    from fastai_model.callbacks import KeepBestCallback, RunRecorder

    assert RunRecorder.order < KeepBestCallback.order < EarlyStoppingCallback.order


def test_early_stopping_watches_valid_auc_as_keep_best_does_and_loss_only_where_auc_is_undefined():
    """On valid loss, a MixUp run stopped while valid AUC still rose (the full preset, docs/results.md)."""
    from fastai.callback.tracker import EarlyStoppingCallback

    from fastai_model.callbacks import training_callbacks

    config = make_config(patience=3)
    (on_auc,) = [cb for cb in training_callbacks(config, monitor_auc=True) if isinstance(cb, EarlyStoppingCallback)]
    (on_loss,) = [cb for cb in training_callbacks(config, monitor_auc=False) if isinstance(cb, EarlyStoppingCallback)]
    assert (on_auc.monitor, on_auc.comp, on_auc.patience) == ("roc_auc_score", np.greater, 3)  # higher is better
    assert (on_loss.monitor, on_loss.comp) == ("valid_loss", np.less)
    assert not [cb for cb in training_callbacks(make_config()) if isinstance(cb, EarlyStoppingCallback)]


def test_loading_a_fastai_model_prints_no_deprecation_warning():
    """fastai's import calls torch.jit.script; a user measuring latency should not see PyTorch's deprecation."""
    done = subprocess.run(
        [sys.executable, "-W", "error::FutureWarning", "-c", "import fastai_model.serving"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-500:]
