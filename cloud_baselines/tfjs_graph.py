"""A TensorFlow.js *graph* model (AutoML Vision Edge's TF.js export) run by TensorFlow itself.

Why this way: a graph model's ``modelTopology`` is a TensorFlow ``GraphDef`` written as JSON with the constant
tensors moved to the weight files. So TensorFlow's own protobufs rebuild it (``json_format.ParseDict``), the
weights go back into their ``Const`` nodes, and ``import_graph_def`` runs it — no op is re-implemented here. The
one op TF.js invented, ``FusedDepthwiseConv2dNative`` (its converter fuses depthwise + bias + activation), is
split back into the TensorFlow ops it came from. The ``tensorflowjs`` package would do the same but does not
install beside the pinned TensorFlow (it pins tensorflow-decision-forests and jax).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.errors import BenchmarkError
from benchmarks.exports.image_prep import automl_tfjs_fit, to_minus_one_one
from benchmarks.exports.tfjs_weights import read_manifest_weights, read_model_json

FUSED_DEPTHWISE = "FusedDepthwiseConv2dNative"
ACTIVATIONS = {"Relu": "Relu", "Relu6": "Relu6", "Elu": "Elu", "Sigmoid": "Sigmoid", "Tanh": "Tanh"}


def load_graph_def(model_json: Path):
    """(GraphDef with its weights in place, the model.json dict)."""
    spec = read_model_json(model_json)
    if "node" not in spec["modelTopology"]:
        raise BenchmarkError(f"{model_json}: not a TensorFlow.js graph model (no nodes in modelTopology)")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf
    from google.protobuf import json_format
    from tensorflow.core.framework import graph_pb2

    try:
        graph_def = json_format.ParseDict(spec["modelTopology"], graph_pb2.GraphDef(), ignore_unknown_fields=True)
    except json_format.ParseError as exc:
        raise BenchmarkError(f"{model_json}: modelTopology is not a TensorFlow graph ({str(exc)[:140]})") from None
    weights = read_manifest_weights(model_json, spec)
    nodes = {node.name: node for node in graph_def.node}
    for name, array in weights.items():
        if name not in nodes or nodes[name].op != "Const":
            raise BenchmarkError(f"{model_json}: weight {name} names no constant node of the graph")
        nodes[name].attr["value"].tensor.CopyFrom(tf.make_tensor_proto(array))
        nodes[name].attr["dtype"].type = nodes[name].attr["value"].tensor.dtype
    _split_fused_depthwise(graph_def)
    return graph_def, spec


def _split_fused_depthwise(graph_def) -> None:
    """TF.js's FusedDepthwiseConv2dNative(x, filter, bias…) → DepthwiseConv2dNative → BiasAdd → activation."""
    from tensorflow.core.framework import node_def_pb2

    rewritten = []
    for node in graph_def.node:
        if node.op != FUSED_DEPTHWISE:
            rewritten.append(node)
            continue
        fused = [op.decode() for op in node.attr["fused_ops"].list.s]
        unknown = [op for op in fused if op != "BiasAdd" and op not in ACTIVATIONS]
        if unknown or len(node.input) < 2 + ("BiasAdd" in fused):
            raise BenchmarkError(f"graph node {node.name}: fused ops {fused} are not ones this reader can split")
        conv = node_def_pb2.NodeDef(name=f"{node.name}/depthwise", op="DepthwiseConv2dNative")
        conv.input.extend(node.input[:2])
        for key in ("T", "strides", "padding", "dilations", "data_format", "explicit_paddings"):
            if key in node.attr:
                conv.attr[key].CopyFrom(node.attr[key])
        last = conv
        rewritten.append(conv)
        for op in fused:
            step = node_def_pb2.NodeDef(name=f"{node.name}/{op}", op=ACTIVATIONS.get(op, op))
            step.input.append(last.name)
            if op == "BiasAdd":
                step.input.append(node.input[2])
            step.attr["T"].CopyFrom(node.attr["T"])
            rewritten.append(step)
            last = step
        last.name = node.name  # whatever consumed the fused node now reads its last step
    del graph_def.node[:]
    graph_def.node.extend(rewritten)


def _endpoints(graph_def, spec: dict, model_json: Path) -> tuple[str, str]:
    """The input placeholder and the output node: the signature's if there is one, else AutoML's ``scores``."""
    placeholders = [node.name for node in graph_def.node if node.op == "Placeholder"]
    if len(placeholders) != 1:
        raise BenchmarkError(f"{model_json}: {len(placeholders)} input placeholders; an image classifier has one")
    outputs = (spec.get("signature") or {}).get("outputs") or {}
    names = {node.name for node in graph_def.node}
    if "scores" in names:
        return placeholders[0], "scores"
    if len(outputs) == 1:
        return placeholders[0], next(iter(outputs.values()))["name"].split(":")[0]
    raise BenchmarkError(f"{model_json}: no output node named scores and no single signature output")


class GraphModelClassifier:
    """AutoML's TF.js preprocessing (tfjs-automl: centre square, bilinear, ``x/127.5 - 1`` for float input)."""

    def __init__(self, model_json: Path):
        import tensorflow as tf

        self.path = Path(model_json)
        graph_def, spec = load_graph_def(self.path)
        input_name, output_name = _endpoints(graph_def, spec, self.path)
        placeholder = next(node for node in graph_def.node if node.name == input_name)
        dims = [d.size for d in placeholder.attr["shape"].shape.dim]
        if len(dims) != 4 or dims[-1] != 3 or dims[1] != dims[2] or dims[1] <= 0:
            raise BenchmarkError(f"{self.path}: input {input_name} has shape {dims}, not a square RGB image batch")
        self.size, self.batch = int(dims[1]), int(dims[0])
        self.input_dtype = tf.dtypes.as_dtype(placeholder.attr["dtype"].type)

        def imported():
            tf.compat.v1.import_graph_def(graph_def, name="")

        try:
            wrapped = tf.compat.v1.wrap_function(imported, [])
            self._run = wrapped.prune(
                feeds=[wrapped.graph.get_tensor_by_name(f"{input_name}:0")],
                fetches=[wrapped.graph.get_tensor_by_name(f"{output_name}:0")],
            )
        except (ValueError, KeyError, tf.errors.OpError) as exc:
            raise BenchmarkError(
                f"{self.path}: TensorFlow cannot run this graph ({str(exc).splitlines()[0][:140]})"
            ) from None
        self.n_classes = int(self._run.outputs[0].shape[-1])
        self._size_bytes = sum(p.stat().st_size for p in self.path.parent.glob("*.bin"))

    def describe(self) -> dict:
        return {
            "format": "tfjs-graph",
            "file": self.path.name,
            "size_bytes": self._size_bytes,
            "input_size": self.size,
            "input_dtype": self.input_dtype.name,
        }

    def predict(self, image: Image.Image) -> np.ndarray:
        return self.predict_batch([image])[0]

    def predict_batch(self, images: list[Image.Image]) -> np.ndarray:
        """AutoML's graphs are exported for batch 1: one call per image then; a free batch dimension takes all."""
        pixels = np.stack([automl_tfjs_fit(image, self.size) for image in images])
        x = (
            to_minus_one_one(pixels)
            if self.input_dtype.is_floating
            else pixels.round().astype(self.input_dtype.as_numpy_dtype)
        )
        if self.batch == -1:
            return self._call(x)
        return np.concatenate([self._call(x[i : i + 1]) for i in range(len(x))])

    def _call(self, x: np.ndarray) -> np.ndarray:
        import tensorflow as tf

        (scores,) = self._run(tf.constant(x))
        return scores.numpy().astype(np.float32)
