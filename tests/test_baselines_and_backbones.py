import numpy as np
import pytest
import torch

from benchmarks.data.dataset import load_dataset
from benchmarks.data.images import open_rgb
from benchmarks.errors import BenchmarkError
from benchmarks.evaluation.evaluate import evaluate_run
from benchmarks.models import features
from benchmarks.models.backbones import BACKBONES, get_backbone, normalise, prepare_image
from benchmarks.models.baselines import run_linear_probe, run_prior

DUCK = "/usr/share/tuxpaint/stamps/animals/birds/duck.png"
IMAGENET_DRAKE = 97


def test_lite0_weights_are_imagenet_pretrained_duck_is_a_drake():
    backbone = get_backbone("lite0")
    image = prepare_image(open_rgb(DUCK), backbone.input_size)  # the stamp on white
    model = backbone.create_torch_model()
    with torch.inference_mode():
        logits = model(torch.from_numpy(normalise(np.asarray(image)[None], backbone)))
    assert IMAGENET_DRAKE in logits.topk(5).indices[0].tolist()


@pytest.mark.parametrize("name", ["lite1", "lite2"])
def test_every_registered_backbone_loads_its_weights(name):
    model = get_backbone(name).create_torch_model(num_classes=0)
    with torch.inference_mode():
        assert model(torch.zeros(1, 3, 64, 64)).shape == (1, 1280)


def test_unknown_backbone_lists_the_choices():
    with pytest.raises(BenchmarkError, match="choose one of: lite0, lite1, lite2"):
        get_backbone("resnet50")
    assert set(BACKBONES) == {"lite0", "lite1", "lite2"}


def test_prior_scores_training_frequencies_and_gets_auc_one_half(tmp_path, tiny_scenes):
    dataset = load_dataset(tiny_scenes)
    run = run_prior(dataset, tmp_path / "results")
    metrics = evaluate_run(run.path)
    assert metrics["overall"]["macro_roc_auc"] == 0.5
    assert run.info["model"]["frequencies"]["bird"] == pytest.approx(dataset.targets("train")[:, 0].mean(), abs=1e-6)


def test_linear_probe_writes_a_scored_run_and_caches_features(tmp_path, tiny_scenes, monkeypatch):
    dataset = load_dataset(tiny_scenes)
    run = run_linear_probe(dataset, tmp_path / "results", img_size=64)
    metrics = evaluate_run(run.path)
    assert run.info["status"] == "done" and (run.path / "linear_probe.npz").is_file()
    assert metrics["overall"]["macro_roc_auc"] is not None
    assert run.info["timings"]["predict_s"] > 0

    def no_recompute(*args, **kwargs):
        raise AssertionError("features should come from the cache")

    monkeypatch.setattr(features, "extract", no_recompute)
    again = run_linear_probe(dataset, tmp_path / "results", img_size=64)
    assert again.info["status"] == "done"


@pytest.mark.parametrize("runtime", ["native", "openvino"])
def test_the_served_linear_probe_reproduces_its_scored_predictions(tmp_path, tiny_scenes, runtime):
    """Scored from features the OpenVINO feature network computed; served batched by PyTorch or by its own OpenVINO
    export (backbone + folded head): the same scores either way."""
    import pandas as pd

    from benchmarks.data.images import open_rgb
    from benchmarks.serving.predictors import load_predictor, runtime_of

    dataset = load_dataset(tiny_scenes)
    run = run_linear_probe(dataset, tmp_path / "results", img_size=64)
    table = pd.read_csv(run.path / "predictions.csv").set_index("image")
    rels = list(dataset.rows("test")["image"])
    predictor = load_predictor(run.path, runtime)
    served = predictor.predict([open_rgb(dataset.root / rel) for rel in rels])
    assert runtime_of(predictor) == runtime and getattr(predictor, "thread_safe", False)
    np.testing.assert_allclose(served, table.loc[rels, dataset.labels].to_numpy(float), atol=1e-4)


def test_frozen_features_come_from_openvino_within_parity_of_pytorch(tiny_scenes):
    from benchmarks.data.images import open_rgb
    from benchmarks.models.compiled import PARITY_TOLERANCE
    from benchmarks.models.features import FeatureNetwork

    network = FeatureNetwork(get_backbone("lite0"), 64)
    assert network.runtime == "openvino"
    images = [open_rgb(p) for p in load_dataset(tiny_scenes).image_paths()[:8]]
    batch = network.network_input(images)
    np.testing.assert_allclose(network.features(images), network.native(batch), atol=PARITY_TOLERANCE)
