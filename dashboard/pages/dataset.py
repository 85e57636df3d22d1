"""Dataset page: splits, label statistics, EDA checks with remedies, and a gallery."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

import benchmarks.models.torch_first  # noqa: F401, I001  (PyTorch before TensorFlow in one process)
from benchmarks.data.dataset import Dataset
from benchmarks.data.eda_report import image_figures, label_figures
from dashboard.caching import cached_image_facts
from dashboard.logic import datasets


def render(dataset: Dataset, results: Path) -> None:
    st.header(f"Dataset — {dataset.name}")
    st.caption(dataset.info.get("description", ""))
    report = datasets.eda_report(dataset)
    left, right = st.columns([1, 2])
    left.dataframe(datasets.split_counts(dataset))
    if report:
        figures = label_figures(dataset, report["statistics"])
        right.plotly_chart(figures["label_frequency"], width="stretch")
        left.plotly_chart(figures["labels_per_image"], width="stretch")
        right.plotly_chart(figures["cooccurrence"], width="stretch")
        modified = (dataset.root / "labels.csv").stat().st_mtime
        sizes = image_figures(cached_image_facts(str(dataset.root), modified))["image_sizes"]
        left.plotly_chart(sizes, width="stretch")
        st.subheader("Quality checks (EDA)")
        st.dataframe(
            [{k: c.get(k) for k in ("check", "verdict", "finding", "remedy")} for c in report["checks"]],
            width="stretch",
        )
    else:
        st.info(f"no EDA report yet: `python -m benchmarks eda {dataset.root}`")
    st.subheader("Gallery")
    a, b, c = st.columns(3)
    label = a.selectbox("label", ["(any)", *dataset.labels])
    split = b.selectbox("split", ["(any)", "train", "valid", "test"])
    only_flagged = c.checkbox("only images with an issue")
    rows = datasets.gallery(
        dataset,
        None if label == "(any)" else label,
        None if split == "(any)" else split,
        datasets.flagged_images(report) if only_flagged else None,
    )
    if rows.empty:
        st.write("no images match")
    columns = st.columns(6)
    for i, (rel, labels, split_name) in enumerate(zip(rows["image"], rows["labels"], rows["split"])):
        columns[i % 6].image(str(dataset.root / rel), caption=f"{split_name}: {' '.join(labels) or '(none)'}")
