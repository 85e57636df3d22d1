"""Two reference runs every model must beat: the label-frequency prior and a linear probe on frozen features."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.special import expit
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from benchmarks.atomic import atomic_write
from benchmarks.data.dataset import Dataset
from benchmarks.errors import DatasetError, RunError
from benchmarks.evaluation.metrics import macro_auc
from benchmarks.evaluation.results import EVAL_SPLITS, Run, Stopwatch, create_run, load_run, model_size_bytes, recording

from .backbones import DEFAULT_BACKBONE, backbone_input, get_backbone
from .compiled import export_torch
from .features import backbone_features

# C (inverse L2 strength) tried on valid. 1,280 pooled features over a few hundred to a few thousand images want
# strong regularisation (tuned probes on StampScenes and StampScenes-450 choose C near 1e-3; docs/results.md), and
# LP-FT's head is this fit, so the grid reaches well below 0.01. Small C converges in a few iterations, so the low end
# costs little; 0.1 and 1 stay for large datasets.
PROBE_C_GRID = (1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.1, 1.0)
PROBE_FILE = "linear_probe.npz"  # the scaler and per-label heads; the frozen backbone comes from the registry


def _write_eval_predictions(run: Run, dataset: Dataset, scores_for_rows) -> None:
    rows = dataset.rows(EVAL_SPLITS)
    run.write_predictions(list(rows["image"]), list(rows["split"]), scores_for_rows(rows.index.to_numpy()))


def run_prior(dataset: Dataset, results_dir: Path) -> Run:
    """Every image gets the training frequency of each label: a ranking-free floor (AUC 0.5)."""
    run = create_run(results_dir, kind="prior", dataset=dataset, params={})
    with recording(run):
        frequencies = dataset.targets("train").mean(axis=0)
        clock = Stopwatch()
        _write_eval_predictions(run, dataset, lambda index: np.tile(frequencies, (len(index), 1)))
        run.finish(
            timings={"train_s": 0.0, "predict_s": clock.seconds()},
            model={"frequencies": dict(zip(dataset.labels, frequencies.round(6).tolist()))},
        )
    return run


def run_linear_probe(
    dataset: Dataset,
    results_dir: Path,
    *,
    backbone_name: str = DEFAULT_BACKBONE,
    img_size: int | None = None,
    seed: int = 0,
    c_grid: tuple[float, ...] = PROBE_C_GRID,
) -> Run:
    """Logistic regression per label on pooled, frozen ImageNet features; C chosen from ``c_grid`` on valid macro
    AUC (one value: that C)."""
    backbone = get_backbone(backbone_name)
    img_size = img_size or backbone.input_size
    _require_train_positives(dataset)
    run = create_run(
        results_dir,
        kind="linear_probe",
        dataset=dataset,
        backbone=backbone.name,
        params={"img_size": img_size, "c_grid": list(c_grid), "seed": seed},
    )
    with recording(run):
        features, feature_seconds = backbone_features(dataset, backbone, img_size)
        clock = Stopwatch()
        fit = fit_probe(dataset, features, seed, c_grid)
        train_s = clock.seconds()
        scaler, models, chosen_c = fit.scaler, fit.models, fit.c
        x = scaler.transform(features)
        clock = Stopwatch()
        _write_eval_predictions(run, dataset, lambda index: _probabilities(models, x[index]))
        artifact = run.path / PROBE_FILE
        atomic_write(
            artifact,
            lambda tmp: np.savez(
                open(tmp, "wb"),
                coef=np.stack([m.coef_[0] for m in models]),
                intercept=np.array([m.intercept_[0] for m in models]),
                scaler_mean=scaler.mean_,
                scaler_scale=scaler.scale_,
                labels=np.array(dataset.labels),
            ),
        )
        run.update(params={**run.params, "chosen_c": chosen_c})
        run.finish(
            timings={
                "train_s": train_s,
                "feature_s_per_image": round(feature_seconds, 5),
                "predict_s": clock.seconds(),
            },
            model={
                "path": artifact.name,
                "size_bytes": model_size_bytes(artifact),
                "note": "head only; the frozen backbone comes from the registry",
            },
        )
    return run


@dataclass
class ProbeFit:
    """Standardised features → one logistic regression per label, C chosen on valid macro AUC."""

    scaler: StandardScaler
    models: list[LogisticRegression]
    c: float
    valid_macro_auc: float | None

    def linear_head(self) -> tuple[np.ndarray, np.ndarray]:
        """(weight [labels × features], bias) for a trainer's Dense / Linear layer: predicts what the probe does."""
        coef = np.stack([m.coef_[0] for m in self.models])
        intercept = np.array([m.intercept_[0] for m in self.models])
        weight, bias = fold_scaler(coef, intercept, self.scaler.mean_, self.scaler.scale_)
        return weight.astype(np.float32), bias.astype(np.float32)


def fold_scaler(coef: np.ndarray, intercept: np.ndarray, mean: np.ndarray, scale: np.ndarray):
    """The standard scaler folded into the logistic regressions: (weight, bias) acting on *raw* pooled features."""
    weight = coef / scale
    return weight, intercept - weight @ mean


def fit_probe(
    dataset: Dataset, features: np.ndarray, seed: int = 0, c_grid: tuple[float, ...] = PROBE_C_GRID
) -> ProbeFit:
    """The linear probe's fit on pooled features of every image (dataset order): trained on train only."""
    splits = dataset.items["split"].to_numpy()
    scaler = StandardScaler().fit(features[splits == "train"])
    x = scaler.transform(features)
    y_train, y_valid = dataset.targets("train"), dataset.targets("valid")
    best = None
    for c in c_grid:
        models = [
            LogisticRegression(C=c, max_iter=2000, random_state=seed).fit(x[splits == "train"], y_train[:, j])
            for j in range(len(dataset.labels))
        ]
        valid_auc = macro_auc(y_valid, _probabilities(models, x[splits == "valid"]))
        if best is None or (valid_auc or 0) > (best.valid_macro_auc or 0):
            best = ProbeFit(scaler, models, c, valid_auc)
    return best


def probe_head(dataset: Dataset, backbone_name: str, img_size: int, seed: int = 0) -> tuple[ProbeFit, float]:
    """LP-FT's first step for a trainer: the probe fitted on the (cached) frozen features at the trainer's image
    size, and the seconds it took. Checks the training split can teach every label first."""
    _require_train_positives(dataset)
    clock = Stopwatch()
    features, _ = backbone_features(dataset, get_backbone(backbone_name), img_size)
    return fit_probe(dataset, features, seed), clock.seconds()


def _probabilities(models: list[LogisticRegression], x: np.ndarray) -> np.ndarray:
    return np.stack([m.predict_proba(x)[:, 1] for m in models], axis=1)


def _require_train_positives(dataset: Dataset) -> None:
    counts = dataset.targets("train").sum(axis=0)
    for label, count in zip(dataset.labels, counts):
        if count == 0 or count == (dataset.items["split"] == "train").sum():
            kind = "positive" if count == 0 else "negative"
            raise DatasetError(
                f"{dataset.root}: label '{label}' has no {kind} training images; a classifier cannot learn it"
            )


class LinearProbePredictor:
    """The probe as a served model: the registry's frozen backbone, then the saved scaler and per-label heads folded
    into one linear layer. Network and pre/post-processing are apart, so the server batches it and can run it
    through OpenVINO like the trainers' networks."""

    def __init__(self, run_dir: Path | str):
        import torch

        run = load_run(run_dir)
        artifact = run.path / PROBE_FILE
        try:
            with np.load(artifact, allow_pickle=False) as saved:
                weight, bias = fold_scaler(
                    saved["coef"], saved["intercept"], saved["scaler_mean"], saved["scaler_scale"]
                )
                self.labels = [str(label) for label in saved["labels"]]
        except (OSError, KeyError, ValueError) as exc:
            raise RunError(
                f"{artifact}: cannot read the probe ({exc.__class__.__name__}); run the linear probe again"
            ) from None
        self.backbone = get_backbone(run.backbone or DEFAULT_BACKBONE)
        self.img_size = int(run.params.get("img_size") or self.backbone.input_size)
        head = torch.nn.Linear(weight.shape[1], weight.shape[0])
        with torch.no_grad():
            head.weight.copy_(torch.from_numpy(weight))
            head.bias.copy_(torch.from_numpy(bias))
        backbone = self.backbone.create_torch_model(num_classes=0)
        self.model = torch.nn.Sequential(backbone, head).eval().to(memory_format=torch.channels_last)

    def predict(self, images) -> np.ndarray:
        return self.scores_from_output(self.network_output(self.network_input(images)))

    def network_input(self, images) -> np.ndarray:
        return backbone_input(images, self.backbone, self.img_size)

    def network_output(self, batch: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            return self.model(torch.from_numpy(batch).contiguous(memory_format=torch.channels_last)).numpy()

    def scores_from_output(self, logits: np.ndarray) -> np.ndarray:
        return expit(logits.astype(np.float64)).astype(np.float32)

    def export_openvino(self, xml_path: Path, example: np.ndarray) -> None:
        export_torch(self.model, xml_path, example)
