"""Plotly figures shared by the dashboard and the HTML report: pure functions from tables to figures."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from benchmarks.evaluation.run_record import TRAIN_LOSS, VALID_LOSS


def leaderboard_bars(table: pd.DataFrame, metric: str = "macro_auc") -> go.Figure:
    ci = table[f"{metric}_ci"].map(lambda c: c if isinstance(c, (list, tuple)) and len(c) == 2 else [None, None])
    upper = [hi - v if hi is not None and v is not None else None for (lo, hi), v in zip(ci, table[metric])]
    lower = [v - lo if lo is not None and v is not None else None for (lo, hi), v in zip(ci, table[metric])]
    figure = go.Figure(
        go.Bar(
            y=table["name"],
            x=table[metric],
            customdata=table["run"],
            hovertemplate="%{y}<br>%{customdata}<br>%{x:.3f}<extra></extra>",
            orientation="h",
            error_x={"type": "data", "array": upper, "arrayminus": lower},
            marker_color="#4C78A8",
        )
    )
    figure.update_layout(
        title=f"Test {metric.replace('_', ' ')} with 95% bootstrap CI",
        xaxis_title=metric,
        height=120 + 40 * len(table),
        yaxis={"autorange": "reversed", "automargin": True},
        margin={"l": 10, "r": 10, "t": 50, "b": 40},
    )
    return figure


def quality_latency_size(table: pd.DataFrame) -> go.Figure:
    data = table.dropna(subset=["macro_auc"]).copy()
    latency = pd.to_numeric(data["latency_ms"], errors="coerce")
    data = data[latency > 0]  # no local model (the prior, ingested predictions) or not measured: no point
    data["marker"] = pd.to_numeric(data["model_mb"], errors="coerce").fillna(0).clip(lower=1).astype(float)
    return px.scatter(
        data,
        x="latency_ms",
        y="macro_auc",
        size="marker",
        color="kind",
        hover_name="name",
        hover_data={"run": True, "model_mb": True, "marker": False},
        color_discrete_sequence=px.colors.qualitative.D3,
        title="Quality vs latency (one protocol: served model, batch 1, median; marker size: model MB, at least 1)",
        labels={"latency_ms": "ms per image (batch 1, p50)", "macro_auc": "macro AUC"},
    )


def training_curves(histories: dict[str, list[dict]]) -> go.Figure:
    """Train and valid loss per epoch for each run (frozen and fine-tune phases numbered on), valid loss solid."""
    figure = go.Figure()
    colours = px.colors.qualitative.D3
    for i, (name, history) in enumerate(histories.items()):
        epochs = list(range(1, len(history) + 1))
        for key, dash in ((VALID_LOSS, "solid"), (TRAIN_LOSS, "dot")):
            values = [row.get(key) for row in history]
            if any(isinstance(v, int | float) for v in values):
                figure.add_scatter(
                    x=epochs,
                    y=values,
                    mode="lines+markers",
                    name=f"{name} — {key.replace('_', ' ')}",
                    line={"dash": dash, "color": colours[i % len(colours)]},
                )
    figure.update_layout(
        title="Loss per epoch (dotted: train, solid: valid)",
        xaxis_title="epoch",
        yaxis_title="loss",
        legend={"orientation": "h", "yanchor": "top", "y": -0.25, "x": 0},
        height=480,
    )
    return figure


LEGEND_BELOW = {"legend": {"orientation": "h", "yanchor": "top", "y": -0.25, "x": 0}, "height": 520}  # run ids are long


def roc_overlay(curves_by_run: dict[str, dict], label: str) -> go.Figure:
    figure = go.Figure()
    for run_id, curves in curves_by_run.items():
        if label in curves and curves[label].get("roc"):
            figure.add_scatter(x=curves[label]["roc"]["fpr"], y=curves[label]["roc"]["tpr"], mode="lines", name=run_id)
    return with_diagonal(figure, "chance", f"ROC — {label} (test)", "false positive rate", "true positive rate")


def with_diagonal(figure: go.Figure, name: str, title: str, x_title: str, y_title: str) -> go.Figure:
    """The y = x reference line (chance for ROC, perfect calibration for reliability) and the axes' titles."""
    figure.add_scatter(x=[0, 1], y=[0, 1], mode="lines", line={"dash": "dot", "color": "grey"}, name=name)
    figure.update_layout(title=title, xaxis_title=x_title, yaxis_title=y_title, **LEGEND_BELOW)
    return figure


def pr_overlay(curves_by_run: dict[str, dict], label: str) -> go.Figure:
    figure = go.Figure()
    for run_id, curves in curves_by_run.items():
        if label in curves and curves[label].get("pr"):
            figure.add_scatter(
                x=curves[label]["pr"]["recall"], y=curves[label]["pr"]["precision"], mode="lines", name=run_id
            )
    figure.update_layout(
        title=f"Precision-recall — {label} (test)", xaxis_title="recall", yaxis_title="precision", **LEGEND_BELOW
    )
    return figure


def reliability_overlay(reliability_by_run: dict[str, dict], label: str) -> go.Figure:
    """Reliability diagram of one label: per equal-mass bin of test scores, the share of positives against the mean
    score (on the diagonal: the scores are probabilities); each run's ECE in its legend entry."""
    figure = go.Figure()
    for name, entry in reliability_by_run.items():
        curve = entry["curves"].get(label)
        if curve:
            figure.add_scatter(
                x=curve["predicted"],
                y=curve["observed"],
                mode="lines+markers",
                name=f"{name} (ECE {entry['ece'][label]:.3f})",
                customdata=curve["count"],
                hovertemplate="mean score %{x:.3f}<br>positives %{y:.3f}<br>%{customdata} images",
            )
    title = f"Reliability — {label} (test, equal-mass bins)"
    return with_diagonal(figure, "calibrated", title, "mean score in the bin", "share of positives in the bin")


def auc_heatmap(matrix: pd.DataFrame, title: str = "Test ROC-AUC per label and run") -> go.Figure:
    figure = px.imshow(
        matrix.astype(float),
        text_auto=".2f",
        color_continuous_scale="RdYlGn",
        zmin=0.5,
        zmax=1.0,
        aspect="auto",
        title=title,
    )
    figure.update_yaxes(dtick=1)  # every label named, not every other one
    return figure.update_layout(height=260 + 28 * len(matrix))


def score_bars(
    scores: dict[str, float], thresholds: dict[str, float], title: str = "", truth: set[str] | None = None
) -> go.Figure:
    """Green bars pass the label's threshold (the black tick), grey ones do not; each bar shows its score, and the
    image's true labels (when known) are marked ★ on the axis."""
    labels = list(scores)
    names = [f"★ {label}" if truth and label in truth else label for label in labels]
    figure = go.Figure(
        go.Bar(
            x=[scores[label] for label in labels],
            y=names,
            orientation="h",
            text=[f"{scores[label]:.2f}" for label in labels],
            textposition="outside",
            cliponaxis=False,
            marker_color=["#54A24B" if scores[label] >= thresholds.get(label, 0.5) else "#BAB0AC" for label in labels],
        )
    )
    figure.add_scatter(
        x=[thresholds.get(label, 0.5) for label in labels],
        y=names,
        mode="markers",
        marker={"symbol": "line-ns-open", "size": 14, "color": "black"},
        name="threshold",
    )
    figure.update_layout(
        title=title,
        xaxis={"range": [0, 1], "title": "score"},
        showlegend=False,
        height=90 + 26 * len(labels),
        margin={"l": 10, "r": 10, "t": 40 if title else 10, "b": 40},
        yaxis={"automargin": True, "autorange": "reversed"},
    )
    return figure


def label_confusion_heatmap(mixed: np.ndarray, labels: list[str], title: str) -> go.Figure:
    """``metrics.label_confusion`` as a heatmap: rows the true label, columns the label wrongly predicted
    (the diagonal, greyed: images of the label it missed)."""
    off_diagonal = mixed.astype(float)
    np.fill_diagonal(off_diagonal, np.nan)
    figure = go.Figure(
        go.Heatmap(
            z=off_diagonal,
            x=labels,
            y=labels,
            text=mixed,
            texttemplate="%{text}",
            colorscale="Reds",
            hovertemplate="images of %{y} predicted %{x}: %{text}<extra></extra>",
            colorbar={"title": "images"},
        )
    )
    figure.update_layout(
        title=title,
        xaxis_title="wrongly predicted label",
        yaxis_title="true label",
        height=140 + 34 * len(labels),
        yaxis={"autorange": "reversed"},
    )
    return figure


def confusion_grids(per_label: dict[str, dict], title: str, columns: int = 4) -> go.Figure:
    """One 2×2 confusion matrix per label (rows: truth no/yes, columns: predicted no/yes), from the evaluator's
    counts."""
    from plotly.subplots import make_subplots

    labels = list(per_label)
    rows = -(-len(labels) // columns)
    figure = make_subplots(
        rows=rows, cols=columns, subplot_titles=labels, horizontal_spacing=0.06, vertical_spacing=0.5 / max(rows, 1)
    )
    for i, label in enumerate(labels):
        entry = per_label[label]
        counts = [[entry.get("tn", 0), entry.get("fp", 0)], [entry.get("fn", 0), entry.get("tp", 0)]]
        figure.add_heatmap(
            z=[[0, 1], [1, 0]],
            x=["pred. no", "pred. yes"],
            y=["true no", "true yes"],
            text=counts,
            texttemplate="%{text}",
            colorscale=[[0, "#E8F1E4"], [1, "#F4D6D2"]],
            showscale=False,
            hoverinfo="skip",
            row=i // columns + 1,
            col=i % columns + 1,
        )
    figure.update_yaxes(autorange="reversed")
    figure.update_layout(title=title, height=60 + 170 * rows, margin={"t": 80, "l": 10, "r": 10, "b": 10})
    return figure


def expected_max_overlay(curves_by_name: dict[str, dict]) -> go.Figure:
    """Expected best macro AUC vs number of trials per family (``benchmarks tune``): valid solid with its band
    shaded, the test score of the trial valid picks dotted."""
    figure = go.Figure()
    colours = px.colors.qualitative.D3
    for i, (name, curves) in enumerate(curves_by_name.items()):
        colour = colours[i % len(colours)]
        k = curves["k"]
        figure.add_scatter(
            x=k + k[::-1],
            y=curves["valid_high"] + curves["valid_low"][::-1],
            fill="toself",
            line={"width": 0, "color": colour},
            opacity=0.2,
            hoverinfo="skip",
            showlegend=False,
        )
        figure.add_scatter(x=k, y=curves["valid"], mode="lines+markers", name=f"{name} — valid", line={"color": colour})
        if curves.get("test"):
            test_k = k[: len(curves["test"])]
            figure.add_scatter(
                x=test_k, y=curves["test"], mode="lines", name=f"{name} — test", line={"color": colour, "dash": "dot"}
            )
    figure.update_layout(
        title="Expected best macro AUC with k trials (band: 95% bootstrap over trials; dotted: test of valid's pick)",
        xaxis_title="trials (k)",
        yaxis_title="macro ROC-AUC",
        **LEGEND_BELOW,
    )
    return figure


def learning_curves_chart(curves_by_model: dict[str, dict]) -> go.Figure:
    """Test macro AUC against training images per label (log axis), one line per model, its range over draws and
    seeds shaded."""
    figure = go.Figure()
    colours = px.colors.qualitative.D3
    for i, (name, curve) in enumerate(curves_by_model.items()):
        colour = colours[i % len(colours)]
        x = curve["x"]
        figure.add_scatter(x=x + x[::-1], y=curve["high"] + curve["low"][::-1], fill="toself", opacity=0.2,
                           line={"width": 0, "color": colour}, hoverinfo="skip", showlegend=False)  # fmt: skip
        figure.add_scatter(x=x, y=curve["mean"], mode="lines+markers", name=name, line={"color": colour})
    figure.update_layout(
        title="Test macro AUC against training images per label (band: range over draws and seeds)",
        xaxis_title="training images per label",
        yaxis_title="macro ROC-AUC",
        xaxis_type="log",
        **LEGEND_BELOW,
    )
    sizes = sorted({x for curve in curves_by_model.values() for x in curve["x"]})
    return figure.update_xaxes(tickvals=sizes, ticktext=[str(x) for x in sizes])  # the sizes measured, not 2, 3, 4…
