"""``uvicorn api.app:app``: every saved model in the results folder behind one prediction endpoint.

Models are loaded once at start-up from their serving artifacts (plain state dicts, ``.keras`` files in
safe mode: nothing is unpickled). fastai and Keras networks are batched across concurrent requests (requests that
wait while the network runs share its next run); other kinds are called one request at a time per model.
Settings come from the environment: ``RESULTS_DIR`` (default ``results``), ``SERVE_RUNS`` (``best``, the default:
the best finished run of each kind per dataset; ``all``; or run ids, comma-separated or ``@FILE``), ``API_KEY``
(when set, the ``X-API-Key`` header must match), ``MAX_UPLOAD_MB`` (default 10), ``SERVING_RUNTIME`` (``native``,
the default, or ``openvino``: fastai and Keras networks through their OpenVINO export, parity-checked on first load),
``MAX_QUEUED_PER_MODEL`` (default 16: more waiting requests for a model are refused with 503 and Retry-After) and
``REQUEST_TIMEOUT_S`` (default 30: a request still waiting for an unbatched model then gets 503). ``GET /metrics``
is for Prometheus.
"""

from __future__ import annotations

import io
import logging
import os
import secrets
import sys
import threading
import time
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

from fastapi import Depends, FastAPI, File, Form, Header, HTTPException, Request, Response, UploadFile
from pydantic import BaseModel

import benchmarks.models.torch_first  # noqa: F401, I001  (PyTorch before TensorFlow in one process)
from benchmarks.data.images import ImageTooLarge, open_rgb
from benchmarks.errors import BenchmarkError, first_line
from benchmarks.evaluation.results import load_run, read_metrics
from benchmarks.serving.batching import DynamicBatcher
from benchmarks.serving.framework_thread import on_framework_thread
from benchmarks.serving.predictors import can_predict, load_warm_predictor, runtime_of
from benchmarks.serving.runtime import serving_runtime
from benchmarks.serving.scoring import Thresholds, score, thresholds_of

from .admission import ModelQueue
from .instruments import Instruments
from .selection import served_folders

log = logging.getLogger("imgbench.api")

IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM", b"RIFF", b"II*\x00", b"MM\x00*")


class ModelInfo(BaseModel):
    id: str
    kind: str
    backbone: str | None
    dataset: str
    labels: list[str]
    thresholds: dict[str, float]
    macro_auc: float | None
    map: float | None
    runtime: str  # what runs the network: native (its framework) or openvino


class ModelPrediction(BaseModel):
    model: str
    kind: str
    scores: dict[str, float]
    thresholds: dict[str, float]
    labels: list[str]
    latency_ms: float


class Prediction(BaseModel):
    filename: str
    width: int
    height: int
    predictions: list[ModelPrediction]


class BatchPrediction(BaseModel):
    results: list[Prediction]


class SkippedRun(BaseModel):
    run: str
    reason: str


class Health(BaseModel):
    status: str
    models: int
    runtime: str  # SERVING_RUNTIME as asked; each model's own runtime is in /models
    skipped: list[SkippedRun]


@dataclass
class LoadedModel:
    info: ModelInfo
    predictor: object
    thresholds: Thresholds
    lock: threading.Lock | None  # held around predict unless the predictor is thread-safe itself (batched)
    queue: ModelQueue


def load_models(
    results_dir: Path, runtime: str = "native", serve: str | None = None
) -> tuple[dict[str, LoadedModel], list[SkippedRun]]:
    """The runs ``serve`` selects (``SERVE_RUNS``) that keep a model. Each run is loaded on its own: a damaged file
    (or anything else that goes wrong in one run) skips that run with one logged line, and every other model is
    still served."""
    models, skipped = {}, []
    for folder in served_folders(results_dir, serve):
        try:
            run = load_run(folder)
            if not can_predict(run):
                continue
            thresholds = thresholds_of(run)
            predictor = load_warm_predictor(run, runtime)
            metrics = read_metrics(run) or {}
        except Exception as exc:  # noqa: BLE001  (per-run isolation: one damaged run never takes the API down)
            reason = first_line(exc, limit=None)  # one line, whatever the message
            if not isinstance(exc, BenchmarkError):
                reason = f"{exc.__class__.__name__}: {reason}"
            log.warning("skipping %s: %s", folder, reason)
            skipped.append(SkippedRun(run=folder.name, reason=reason))
            continue
        overall = metrics.get("overall", {})
        info = ModelInfo(
            id=run.run_id,
            kind=run.kind,
            backbone=run.backbone,
            dataset=run.dataset_name,
            labels=run.labels,
            thresholds=thresholds.values,
            macro_auc=overall.get("macro_roc_auc"),
            map=overall.get("map"),
            runtime=runtime_of(predictor),
        )
        lock = None if getattr(predictor, "thread_safe", False) else threading.Lock()
        models[run.run_id] = LoadedModel(info, predictor, thresholds, lock, ModelQueue(max_queued()))
    return models, skipped


def max_queued() -> int:
    return int(os.environ.get("MAX_QUEUED_PER_MODEL", "16"))


def request_timeout_s() -> float:
    return float(os.environ.get("REQUEST_TIMEOUT_S", "30"))


def instrument(models: dict[str, LoadedModel], instruments: Instruments) -> None:
    """Batched networks report each run's image count (how many requests shared it)."""
    for name, loaded in models.items():
        batcher = getattr(loaded.predictor, "network", None)
        if isinstance(batcher, DynamicBatcher):
            batcher.listeners.append(instruments.batch_images.labels(name).observe)


def refuse_to_start(message: str) -> None:
    """A bad setting at start-up is one line and exit code 2 (uvicorn would print a raised SystemExit with its
    traceback); nothing is being served yet, so nothing is cut off."""
    print(f"error: {message}", file=sys.stderr, flush=True)
    os._exit(2)


@asynccontextmanager
async def lifespan(app: FastAPI):
    threads = os.cpu_count() or 1
    import torch

    on_framework_thread(torch.set_num_threads, threads)  # OpenMP's setting is per thread: where the models run
    try:
        app.state.runtime = serving_runtime()
        app.state.models, app.state.skipped = load_models(
            Path(os.environ.get("RESULTS_DIR", "results")), app.state.runtime, os.environ.get("SERVE_RUNS")
        )
    except BenchmarkError as exc:
        refuse_to_start(str(exc))
    app.state.instruments = Instruments()
    instrument(app.state.models, app.state.instruments)
    served = ", ".join(f"{name} ({runtime_of(m.predictor)})" for name, m in app.state.models.items())
    print(f"serving {len(app.state.models)} model(s): {served or 'none (train one: make demo)'}")
    for skipped in app.state.skipped:
        print(f"skipped {skipped.run}: {skipped.reason}")
    yield


app = FastAPI(
    title="imgbench prediction API",
    version="1.0",
    lifespan=lifespan,
    description="Multi-label scores from every model trained or evaluated by the benchmark, with the thresholds tuned "
    "on valid.",
)


@app.middleware("http")
async def count_requests(request: Request, call_next):
    """Every prediction request counted by endpoint and status, refusals and errors included."""
    response = await call_next(request)
    if request.url.path.startswith("/predict") and hasattr(app.state, "instruments"):
        app.state.instruments.requests.labels(request.url.path, str(response.status_code)).inc()
    return response


def check_api_key(x_api_key: str | None = Header(default=None)) -> None:
    expected = os.environ.get("API_KEY")
    if expected and not (x_api_key and secrets.compare_digest(x_api_key, expected)):
        raise HTTPException(status_code=401, detail="missing or wrong X-API-Key header")


def max_upload_bytes() -> int:
    return int(float(os.environ.get("MAX_UPLOAD_MB", "10")) * 1024 * 1024)


def read_image(upload: UploadFile):
    """Size cap, content type, magic bytes, then a guarded decode (EXIF rotation, any mode → RGB)."""
    name = upload.filename or "upload"
    if upload.content_type and not (
        upload.content_type.startswith("image/") or upload.content_type == "application/octet-stream"
    ):
        raise HTTPException(status_code=415, detail=f"{name}: content type {upload.content_type} is not an image")
    data = upload.file.read(max_upload_bytes() + 1)
    if len(data) > max_upload_bytes():
        raise HTTPException(status_code=413, detail=f"{name}: larger than {max_upload_bytes() // (1024 * 1024)} MB")
    if not data:
        raise HTTPException(status_code=400, detail=f"{name}: empty file")
    if not data.startswith(IMAGE_MAGIC) or (data.startswith(b"RIFF") and data[8:12] != b"WEBP"):
        raise HTTPException(status_code=415, detail=f"{name}: not a JPEG, PNG, GIF, BMP, WebP or TIFF image")
    try:
        return open_rgb(io.BytesIO(data), name=name)
    except ImageTooLarge as exc:
        raise HTTPException(status_code=413, detail=str(exc)) from None
    except BenchmarkError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None


def chosen_models(model: str) -> list[LoadedModel]:
    models = app.state.models
    if model == "all":
        if not models:
            raise HTTPException(status_code=503, detail="no models loaded; train one (make demo) and restart the API")
        return list(models.values())
    if model not in models:
        raise HTTPException(status_code=404, detail=f"unknown model {model!r}; GET /models lists them")
    return [models[model]]


def overloaded(loaded: LoadedModel, reason: str, why: str) -> HTTPException:
    """503 with Retry-After (seconds until the model's queue has likely drained), counted under ``reason``."""
    app.state.instruments.rejected.labels(loaded.info.id, reason).inc()
    wait = loaded.queue.retry_after()
    return HTTPException(
        status_code=503, detail=f"model {loaded.info.id} {why}; retry in {wait} s", headers={"Retry-After": str(wait)}
    )


@contextmanager
def admitted(models: list[LoadedModel]):
    """A place in each chosen model's queue for the whole request, or 503 with Retry-After at once."""
    entered: list[LoadedModel] = []
    try:
        for loaded in models:
            if not loaded.queue.try_enter():
                raise overloaded(loaded, "queue full", f"has {loaded.queue.limit} requests waiting")
            entered.append(loaded)
            app.state.instruments.queued.labels(loaded.info.id).inc()
        yield
    finally:
        for loaded in entered:
            loaded.queue.leave()
            app.state.instruments.queued.labels(loaded.info.id).dec()


def predict_all(images: list, names: list[str], models: list[LoadedModel], deadline: float) -> list[Prediction]:
    """Every chosen model on the decoded images (the caller holds their places in the queues: ``admitted``)."""
    per_image = [[] for _ in images]
    for loaded in models:
        started = time.monotonic()
        prediction = _score(loaded, images, deadline)
        seconds = time.monotonic() - started
        loaded.queue.record(seconds)
        app.state.instruments.model_seconds.labels(loaded.info.id).observe(seconds)
        for i in range(len(images)):
            per_image[i].append(
                ModelPrediction(
                    model=loaded.info.id,
                    kind=loaded.info.kind,
                    scores={label: round(value, 6) for label, value in prediction.label_scores(i).items()},
                    thresholds=loaded.thresholds.values,
                    labels=prediction.predicted(i),
                    latency_ms=round(prediction.latency_ms, 2),
                )
            )
    return [
        Prediction(filename=name, width=img.width, height=img.height, predictions=preds)
        for img, name, preds in zip(images, names, per_image)
    ]


def _score(loaded: LoadedModel, images: list, deadline: float):
    """The model's scores; an unbatched model is waited for until the request's deadline, then 503."""
    if loaded.lock is None:  # batched: its queue bounds the wait
        return score(loaded.predictor, images, loaded.thresholds)
    if not loaded.lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
        raise overloaded(loaded, "timed out", f"is still busy after {request_timeout_s():g} s")
    try:
        app.state.instruments.batch_images.labels(loaded.info.id).observe(len(images))
        return score(loaded.predictor, images, loaded.thresholds)
    finally:
        loaded.lock.release()


@app.get("/health", response_model=Health)
def health() -> Health:
    return Health(status="ok", models=len(app.state.models), runtime=app.state.runtime, skipped=app.state.skipped)


@app.get("/metrics", include_in_schema=False)
def metrics() -> Response:
    """Prometheus' text format: requests, per-model time and batch sizes, queues, refusals."""
    content, media_type = app.state.instruments.exposition()
    return Response(content=content, media_type=media_type)


@app.get("/models", response_model=list[ModelInfo], dependencies=[Depends(check_api_key)])
def models() -> list[ModelInfo]:
    return [loaded.info for loaded in app.state.models.values()]


@app.post("/predict", response_model=Prediction, dependencies=[Depends(check_api_key)])
def predict(
    image: UploadFile = File(..., description="an image file"),
    model: str = Form("all", description="a model id from /models, or all"),
) -> Prediction:
    chosen = chosen_models(model)
    deadline = time.monotonic() + request_timeout_s()
    with admitted(chosen):  # before decoding: a request that will be refused costs no decode
        return predict_all([read_image(image)], [image.filename or "upload"], chosen, deadline)[0]


@app.post("/predict/batch", response_model=BatchPrediction, dependencies=[Depends(check_api_key)])
def predict_batch(
    images: list[UploadFile] = File(..., description="image files"), model: str = Form("all")
) -> BatchPrediction:
    if len(images) > 64:
        raise HTTPException(status_code=413, detail=f"{len(images)} images in one request; send at most 64")
    chosen = chosen_models(model)
    deadline = time.monotonic() + request_timeout_s()
    with admitted(chosen):
        decoded = [read_image(upload) for upload in images]
        return BatchPrediction(results=predict_all(decoded, [u.filename or "upload" for u in images], chosen, deadline))
