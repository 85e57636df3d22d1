"""One way to open any saved model: the run's family (from the registry) names its predictor.

Predictors take PIL images and return scores (images × the run's labels). Frameworks are imported only when a
run of theirs is loaded, and PyTorch always before TensorFlow. ``SERVING_RUNTIME=openvino`` serves the network of
every family that can export it through OpenVINO instead (``serving_runtime``); the others stay native. Families
whose predictor separates its network from pre- and post-processing (fastai, Keras) are served batched, whatever
the runtime: concurrent callers share network runs (``BatchedPredictor``).
"""

from __future__ import annotations

import logging
from pathlib import Path

from benchmarks.errors import RunError
from benchmarks.evaluation.results import Run, load_run
from benchmarks.models.registry import Predictor, families, family_of, load_predictor_class

from .framework_thread import OnFrameworkThread, on_framework_thread
from .runtime import NATIVE, BatchedPredictor, openvino_predictor, serving_runtime


def can_predict(run: Run) -> bool:
    """A finished run whose family keeps a model for it (a post-hoc calibrated copy holds scores only)."""
    family = family_of(run.kind)
    calibrated = bool(run.params.get("calibrated_from"))
    return family is not None and run.status == "done" and not calibrated and family.keeps_model(run)


def why_no_model(run: Run) -> str:
    """One line for a run that cannot predict new images, for pages that list every run."""
    family = family_of(run.kind)
    if family is None:
        return f"unknown kind {run.kind!r} (known: {', '.join(families())})"
    if run.status != "done":
        return f"the run is {run.status}, not done"
    if run.params.get("calibrated_from"):
        return f"a post-hoc calibrated copy of {run.params['calibrated_from']}: scores only (serve that run)"
    return family.no_model_reason


def load_predictor(run: Run | Path | str, runtime: str | None = None) -> Predictor:
    """The run's model, served by ``runtime`` (default: ``SERVING_RUNTIME``, else native) where its family can
    export to it; ``runtime_of`` says which runtime a predictor really uses."""
    runtime = serving_runtime(runtime)
    run = run if isinstance(run, Run) else load_run(run)
    if not can_predict(run):
        raise RunError(f"{run.path}: cannot predict: {why_no_model(run)}")
    native = on_framework_thread(load_predictor_class(family_of(run.kind)), run.path)
    if not hasattr(native, "network_output"):
        return OnFrameworkThread(native)  # no network of its own to batch or export (TM's and AutoML's exports)
    if runtime == NATIVE or not hasattr(native, "export_openvino"):
        return BatchedPredictor(native, lambda batch: on_framework_thread(native.network_output, batch))
    return on_framework_thread(openvino_predictor, native, run.path)  # the parity check runs the native network


def runtime_of(predictor: Predictor) -> str:
    return getattr(predictor, "runtime", NATIVE)


def load_servable_predictor(run: Run | Path | str, runtime: str | None = None) -> Predictor:
    """``load_predictor`` as a server wants it: where ``runtime`` cannot serve this run's model (its export refused,
    as for a Keras model trained in mixed_bfloat16, or outside parity), the native runtime serves it — the model it
    was scored with — and one logged line says why; ``runtime_of`` tells which runtime a model got."""
    try:
        return load_predictor(run, runtime)
    except RunError as error:
        if serving_runtime(runtime) == NATIVE or not can_predict(run if isinstance(run, Run) else load_run(run)):
            raise
        logging.getLogger("imgbench.serving").warning("served natively: %s", error)
        return load_predictor(run, NATIVE)


def load_warm_predictor(run: Run | Path | str, runtime: str | None = None) -> Predictor:
    """For servers: load (``load_servable_predictor``), then predict once, so graph tracing and lazy allocation are
    not billed to the first user."""
    from PIL import Image

    predictor = load_servable_predictor(run, runtime)
    predictor.predict([Image.new("RGB", (64, 64))])
    return predictor
