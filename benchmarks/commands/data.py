"""Dataset commands: build StampScenes, import another layout, EDA with remedies."""

from __future__ import annotations

from pathlib import Path

DEFAULT_DATASET = Path("data/stampscenes")


def add_commands(commands) -> None:
    p = commands.add_parser("build-default", help="compose the StampScenes dataset from Tux Paint stamps (offline)")
    p.add_argument("out", type=Path, help="folder to create")
    p.add_argument(
        "--size", type=int, default=3000, help="number of images (2/3 train, 1/6 valid, 1/6 test; default 3000)"
    )
    p.add_argument("--img-size", type=int, default=224, help="image side in pixels (default 224)")
    p.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same dataset")
    p.add_argument("--stamps", type=Path, default=None, help="stamp folder (default /usr/share/tuxpaint/stamps)")
    p.set_defaults(handler=cmd_build_default)
    p = commands.add_parser("import", help="import a dataset from another layout into the dataset format")
    p.add_argument(
        "format",
        choices=["folder", "fastai-csv", "voc", "coco"],
        help="folder: SRC/<label>/*.jpg; fastai-csv: CSV fname,labels[,is_valid]; voc: VOC root; coco: instances JSON",
    )
    p.add_argument("src", type=Path, help="source folder, CSV or JSON")
    p.add_argument("dest", type=Path, help="new dataset folder")
    p.add_argument(
        "--images", type=Path, default=None, help="image folder for fastai-csv and coco (default: beside the file)"
    )
    p.add_argument("--name", default=None, help="dataset name (default: the destination folder name)")
    p.add_argument("--seed", type=int, default=0, help="seed for the stratified split when the source has none")
    p.set_defaults(handler=cmd_import)
    p = commands.add_parser("eda", help="EDA and quality report (DATASET/eda/); remedies write a cleaned copy")
    p.add_argument("dataset", type=Path)
    p.add_argument("--drop-corrupt", action="store_true", help="remedy: leave out unreadable or zero-byte images")
    p.add_argument("--dedupe", action="store_true", help="remedy: keep one image of each exact/near-duplicate group")
    p.add_argument(
        "--resplit", action="store_true", help="remedy: re-split with stratification, duplicates kept together"
    )
    p.add_argument(
        "--out", type=Path, default=None, help="where remedies write the cleaned dataset (default DATASET-clean)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(handler=cmd_eda)
    p = commands.add_parser(
        "subset",
        help="a copy of a dataset with train cut to N images per label (nested, label-stratified); for learning curves",
        description="Writes OUT: DATASET's valid and test whole, and the shortest prefix of one seeded, label-"
        "stratified ordering of its train images that holds N positives of every label (or all a label has). "
        "Subsets of one --draw are nested: 10 per label lies inside 25 per label. Images are hard-linked where "
        "the file system allows. Benchmark grids make these themselves (subsets = {...} in a [[datasets]] entry).",
    )
    p.add_argument("dataset", type=Path)
    p.add_argument("out", type=Path, help="new folder")
    p.add_argument("--per-label", type=int, required=True, help="training images per label (positives)")
    p.add_argument("--draw", type=int, default=0, help="which seeded ordering (default 0)")
    p.set_defaults(handler=cmd_subset)


def cmd_build_default(args) -> None:
    from benchmarks.data.stampscenes import build_stampscenes

    dataset = build_stampscenes(
        args.out, size=args.size, img_size=args.img_size, seed=args.seed, stamps_dir=args.stamps
    )
    print(
        f"built {dataset.name} in {dataset.root}: {len(dataset.items)} images, {len(dataset.labels)} labels, "
        f"fingerprint {dataset.fingerprint}"
    )
    print(dataset.counts().to_string())


def cmd_import(args) -> None:
    from benchmarks.data import importers

    readers = {
        "folder": lambda: importers.read_folder(args.src),
        "fastai-csv": lambda: importers.read_fastai_csv(args.src, args.images),
        "voc": lambda: importers.read_voc(args.src),
        "coco": lambda: importers.read_coco(args.src, args.images),
    }
    records = readers[args.format]()
    dataset = importers.materialize(
        records, args.dest, name=args.name or args.dest.name, source=f"{args.format}: {args.src}", seed=args.seed
    )
    print(f"imported {len(dataset.items)} images with {len(dataset.labels)} labels into {dataset.root}")
    print(dataset.counts().to_string())


def cmd_eda(args) -> None:
    from benchmarks.data.cleaning import clean_dataset
    from benchmarks.data.dataset import load_dataset
    from benchmarks.data.eda import scan_images
    from benchmarks.data.eda_report import run_eda

    dataset = load_dataset(args.dataset, require_train_positives=False)
    report = run_eda(dataset)
    print(f"EDA of {dataset.name}: {dataset.root / 'eda' / 'report.json'} and report.html")
    for check in report["checks"]:
        print(
            f"  [{check['verdict']:>4}] {check['check']}: {check['finding']}"
            + (f" -> {check['remedy']}" if check["remedy"] else "")
        )
    if args.drop_corrupt or args.dedupe or args.resplit:
        out = args.out or dataset.root.with_name(dataset.root.name + "-clean")
        cleaned = clean_dataset(
            dataset,
            scan_images(dataset, processes=True),
            out,
            drop_corrupt=args.drop_corrupt,
            dedupe=args.dedupe,
            resplit=args.resplit,
            seed=args.seed,
        )
        print(
            f"cleaned dataset written to {cleaned.root} ({len(cleaned.items)} images): "
            f"{'; '.join(cleaned.info['derived_from']['remedies'])}"
        )


def cmd_subset(args) -> None:
    from benchmarks.data.dataset import load_dataset
    from benchmarks.data.subsets import SUBSET_KEY, write_subset

    subset = write_subset(load_dataset(args.dataset), args.out, args.per_label, args.draw)
    print(f"{args.out}: {subset.info[SUBSET_KEY]['train_images']} train images ({args.per_label} per label, draw "
          f"{args.draw}), valid and test as in {args.dataset}; fingerprint {subset.fingerprint}")  # fmt: skip
