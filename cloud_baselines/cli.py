"""``python -m cloud_baselines``: export our dataset to cloud services; bring their models and predictions back."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from benchmarks.data.dataset import load_dataset
from benchmarks.errors import run_cli


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m cloud_baselines",
        description="Teachable Machine, Vertex AI AutoML and Cloud Vision results on the same valid/test images, "
        "scored by the shared evaluator. See README 'Compare with Teachable Machine / Vertex AI / Vision API'.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_eval_options(p):
        p.add_argument("dataset", type=Path, help="dataset folder (its valid and test images are scored)")
        p.add_argument("--results", type=Path, default=Path("results"), help="results folder (default results/)")
        p.add_argument(
            "--mapping",
            type=Path,
            default=None,
            help='JSON {"service class": "dataset label" or null}; default: match names ignoring case, spaces, _ and -',
        )

    p = commands.add_parser(
        "tm-export", help="one folder + zip per label (+ none) of the train images, for TM's image project"
    )
    p.add_argument("dataset", type=Path)
    p.add_argument("out", type=Path, help="new folder")
    p.set_defaults(handler=cmd_tm_export)

    p = commands.add_parser(
        "tm-eval",
        help="score a TM export: keras_model.h5 / converted_keras.zip / TF.js model.json (standard or tiny "
        "grayscale) / .tflite",
    )
    p.add_argument("export", type=Path, help="the export folder, zip or model file")
    p.add_argument(
        "--trained-on",
        choices=["train", "train+valid"],
        default="train",
        help="what the TM project was trained on: train (what tm-export uploads; default) or train+valid (uploads "
        "made before tm-export left valid out): the run is then flagged, its thresholds being tuned on its own images",
    )
    with_eval_options(p)
    p.set_defaults(handler=cmd_tm_eval)

    p = commands.add_parser(
        "vertex-export", help="Vertex AI multi-label import files (CSV and JSONL) with our splits as ML_USE"
    )
    p.add_argument("dataset", type=Path)
    p.add_argument("out", type=Path, help="folder for import.csv, import.jsonl, label_mapping.json")
    p.add_argument(
        "--gcs-prefix", required=True, help="gs:// folder the dataset folder is uploaded to (images/ below it)"
    )
    p.set_defaults(handler=cmd_vertex_export)

    p = commands.add_parser("vertex-ingest", help="batch-prediction JSONL (file or folder) into a run")
    p.add_argument("predictions", type=Path)
    with_eval_options(p)
    p.set_defaults(handler=cmd_vertex_ingest)

    p = commands.add_parser(
        "vertex-eval",
        help="score an AutoML Edge export locally: TFLite (model.tflite + dict.txt), TF.js (model.json + dict.txt) or "
        "Container (the SavedModel folder)",
    )
    p.add_argument("export", type=Path)
    with_eval_options(p)
    p.set_defaults(handler=cmd_vertex_eval)

    p = commands.add_parser(
        "vertex-train", help="upload, train AutoML (multi-label), batch-predict valid+test and ingest, on Google Cloud"
    )
    p.add_argument("dataset", type=Path)
    p.add_argument("--results", type=Path, default=Path("results"))
    p.add_argument(
        "--project",
        default=os.environ.get("GOOGLE_CLOUD_PROJECT"),
        help="Google Cloud project (default $GOOGLE_CLOUD_PROJECT)",
    )
    p.add_argument("--location", default="us-central1")
    p.add_argument(
        "--bucket", required=True, help="gs://bucket[/folder] in that location, for images, import file and predictions"
    )
    p.add_argument(
        "--name", default=None, help="display name for the dataset, job and model (default: the dataset name)"
    )
    p.add_argument(
        "--budget", type=int, default=8000, help="training budget in milli node hours (default 8000 = 8 node hours)"
    )
    p.add_argument(
        "--model-type", choices=["cloud", "mobile"], default="cloud", help="cloud, or mobile (exportable Edge model)"
    )
    p.add_argument("--dry-run", action="store_true", help="print what would be created and spent; create nothing")
    p.set_defaults(handler=cmd_vertex_train)

    p = commands.add_parser(
        "vision-ingest", help="Cloud Vision label-detection responses (JSON file or folder) into a run"
    )
    p.add_argument("responses", type=Path)
    with_eval_options(p)
    p.set_defaults(handler=cmd_vision_ingest)

    p = commands.add_parser(
        "vision-annotate", help="label detection through the Vision REST API (cached by image hash) into a run"
    )
    with_eval_options(p)
    p.add_argument(
        "--api-key",
        default=os.environ.get("GOOGLE_API_KEY"),
        help="API key (default $GOOGLE_API_KEY; else Application Default Credentials)",
    )
    p.add_argument("--endpoint", default="https://vision.googleapis.com/v1/images:annotate")
    p.add_argument("--max-results", type=int, default=20, help="labels per image (default 20)")
    p.set_defaults(handler=cmd_vision_annotate)

    p = commands.add_parser(
        "roboflow-export", help="Roboflow multi-label classification CSV: train/valid/test folders with _classes.csv"
    )
    p.add_argument("dataset", type=Path)
    p.add_argument("out", type=Path)
    p.set_defaults(handler=cmd_roboflow_export)

    p = commands.add_parser(
        "roboflow-ingest", help="saved Roboflow responses (JSONL or folder of <image>.json) into a run"
    )
    p.add_argument("responses", type=Path)
    with_eval_options(p)
    p.set_defaults(handler=cmd_roboflow_ingest)

    p = commands.add_parser(
        "roboflow-predict", help="a hosted Roboflow classification model on our valid/test images (cached) into a run"
    )
    with_eval_options(p)
    p.add_argument("--model", required=True, help="PROJECT/VERSION of the hosted model")
    p.add_argument("--api-key", default=os.environ.get("ROBOFLOW_API_KEY"), help="default $ROBOFLOW_API_KEY")
    p.add_argument("--endpoint", default="https://classify.roboflow.com")
    p.set_defaults(handler=cmd_roboflow_predict)
    return parser


def cmd_tm_export(args) -> None:
    from .teachable_machine import export_for_tm

    counts = export_for_tm(load_dataset(args.dataset), args.out)
    print(
        f"{args.out}: {len(counts)} classes for Teachable Machine "
        f"({', '.join(f'{c} {n}' for c, n in counts.items())}); upload each <class>.zip as one class"
    )


def cmd_tm_eval(args) -> None:
    from .teachable_machine import evaluate_tm_export

    trained_on = args.trained_on.split("+")
    evaluate_tm_export(args.export, load_dataset(args.dataset), args.results, args.mapping, trained_on)


def cmd_vertex_export(args) -> None:
    from .vertex_automl import export_import_files

    for kind, path in export_import_files(load_dataset(args.dataset), args.out, args.gcs_prefix).items():
        print(f"{kind}: {path}")


def cmd_vertex_ingest(args) -> None:
    from .vertex_automl import ingest_batch_predictions

    ingest_batch_predictions(args.predictions, load_dataset(args.dataset), args.results, args.mapping)


def cmd_vertex_eval(args) -> None:
    from .vertex_automl import evaluate_edge_export

    evaluate_edge_export(args.export, load_dataset(args.dataset), args.results, args.mapping)


def cmd_vertex_train(args) -> None:
    from .vertex_online import VertexPlan, run_vertex

    dataset = load_dataset(args.dataset)
    name = args.name or dataset.name.lower().replace(" ", "-")
    plan = VertexPlan(args.project or "", args.location, args.bucket, name, args.budget, args.model_type)
    run_vertex(dataset, plan, args.results, dry_run=args.dry_run)


def cmd_vision_ingest(args) -> None:
    from .vision_api import ingest_vision_responses

    ingest_vision_responses(args.responses, load_dataset(args.dataset), args.results, args.mapping)


def cmd_vision_annotate(args) -> None:
    from .vision_api import annotate_dataset

    annotate_dataset(
        load_dataset(args.dataset), args.results, args.api_key, args.mapping, args.endpoint, args.max_results
    )


def cmd_roboflow_export(args) -> None:
    from .roboflow import export_for_roboflow

    counts = export_for_roboflow(load_dataset(args.dataset), args.out)
    print(
        f"{args.out}: {', '.join(f'{s} {n}' for s, n in counts.items())} images; upload the folder to a Roboflow "
        "multi-label classification project"
    )


def cmd_roboflow_ingest(args) -> None:
    from .roboflow import ingest_saved

    ingest_saved(args.responses, load_dataset(args.dataset), args.results, args.mapping)


def cmd_roboflow_predict(args) -> None:
    from .roboflow import classify_dataset

    classify_dataset(load_dataset(args.dataset), args.results, args.model, args.api_key, args.mapping, args.endpoint)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_cli(lambda: args.handler(args))
