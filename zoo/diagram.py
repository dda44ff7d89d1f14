"""Pictures of architectures (`zoo plot`): the spec's graph in Graphviz's DOT language, drawn
by the `dot` program.

Block level by default: a top-level block instance (a ResNet stage) is one box with its
block type, how many blocks it repeats, its output shape and its parameters; layers outside
blocks (a stem, a head) are boxes of their own. Expanding a block instance draws what is
inside it, in a frame named after it; expanding everything draws every layer.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import subprocess
from collections import Counter

import keras

from zoo.graph import Graph
from zoo.macs import format_macs, model_macs
from zoo.source import SpecError
from zoo.spec import Spec
from zoo.summary import count_params, parameter_counts

FORMATS = ("png", "svg", "pdf", "dot")
INSTALL_HINT = ("Graphviz's `dot` program draws the pictures and is not installed; install "
                "it with `sudo apt-get install graphviz` (Debian, Ubuntu), `brew install "
                "graphviz` (macOS) or `conda install graphviz`, or write --output net.dot")
COLORS = {"input": "#e8e8e8", "layer": "#fde9c9", "block": "#cfe2f3"}


def _quote(text: str) -> str:
    """A DOT string; line breaks become DOT's centred line breaks."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _shape(tensor) -> str:
    return "(" + ", ".join("?" if d is None else str(d) for d in tensor.shape[1:]) + ")"


class _Drawing:
    """Which box each layer of the graph is drawn in, and the boxes' labels."""

    def __init__(self, graph: Graph, model: keras.Model, expanded: set, expand_all: bool):
        self.graph, self.model = graph, model
        self.expanded = lambda name: expand_all or any(fnmatch.fnmatchcase(name, pattern)
                                                       for pattern in expanded)
        self.box_of = {node.name: node.name for node in graph.inputs}
        self.frames_of = {}  # box -> the expanded block instances around it, outermost first
        self.members = {}  # box -> its layers, in graph order
        for node in graph.layers:
            frames = []
            box = node.name
            for instance in node.blocks:
                if not self.expanded(instance):
                    box = instance
                    break
                frames.append(instance)
            self.box_of[node.name] = box
            self.frames_of.setdefault(box, tuple(frames))
            self.members.setdefault(box, []).append(node)

    def edges(self) -> list[tuple[str, str]]:
        edges = []
        for node in self.graph.layers:
            for source in node.inputs:
                edge = (self.box_of[source], self.box_of[node.name])
                if edge[0] != edge[1] and edge not in edges:
                    edges.append(edge)
        return edges

    def output_layer(self, box: str) -> str:
        """The member whose result leaves the box (the last one if none is used outside)."""
        members = self.members[box]
        inside = {node.name for node in members}
        used_outside = {source for node in self.graph.layers if node.name not in inside
                        for source in node.inputs}
        leaving = [node.name for node in members
                   if node.name in used_outside or node.name in self.graph.outputs]
        return (leaving or [members[-1].name])[-1]

    def label(self, box: str) -> tuple[str, str]:
        """(text, kind) of a box: name, type, output shape, parameters."""
        if box not in self.members:  # a model input
            return f"{box}\ninput {_shape(self.model.get_layer(box).output)}", "input"
        params = sum(count_params(self.model.get_layer(node.name).weights)
                     for node in self.members[box])
        shape = _shape(self.model.get_layer(self.output_layer(box)).output)
        lines = [box]
        if box in self.graph.block_kinds:
            lines.append(self._block_contents(box))
            kind = "block"
        else:
            lines.append(self.members[box][0].layer_class.__name__)
            kind = "layer"
        lines.append(shape)
        if params:
            lines.append(f"{params:,} params")
        return "\n".join(lines), kind

    def _block_contents(self, box: str) -> str:
        """'stage: 8 × bottleneck' for a block made of blocks, else its block type."""
        depth = len(self.frames_of[box]) + 1
        children = {node.blocks[depth] for node in self.members[box] if len(node.blocks) > depth}
        kinds = Counter(self.graph.block_kinds[child] for child in children)
        contents = ", ".join(f"{count} × {kind}" for kind, count in kinds.items())
        return self.graph.block_kinds[box] + (f": {contents}" if contents else "")


def architecture_dot(spec: Spec, graph: Graph, model: keras.Model, expanded: set = frozenset(),
                     expand_all: bool = False) -> str:
    """The DOT text of the spec's architecture; top to bottom, one box per layer or block."""
    drawing = _Drawing(graph, model, expanded, expand_all)
    counts = parameter_counts(model)
    title = (f"{spec.name}\n{counts['total_params']:,} parameters "
             f"({counts['trainable_params']:,} trainable)"
             f"\n{format_macs(model_macs(model))} multiply-accumulates per example")
    lines = ["digraph architecture {", "  rankdir=TB; nodesep=0.25; ranksep=0.3;",
             f"  label={_quote(title)}; labelloc=t; fontname=Helvetica; fontsize=16;",
             '  node [shape=box, style="rounded,filled", fontname=Helvetica, fontsize=11];',
             "  edge [color=\"#555555\", arrowsize=0.6];"]
    boxes = [node.name for node in graph.inputs] + list(drawing.members)
    frames = {}  # the tree of expanded block instances: frame path -> boxes directly inside
    for box in boxes:
        frames.setdefault(drawing.frames_of.get(box, ()), []).append(box)

    def emit(path: tuple, indent: str) -> None:
        for box in frames.get(path, ()):
            text, kind = drawing.label(box)
            lines.append(f"{indent}{_quote(box)} [label={_quote(text)}, "
                         f"fillcolor={_quote(COLORS[kind])}];")
        inner = sorted({p[:len(path) + 1] for p in frames if len(p) > len(path)
                        and p[:len(path)] == path}, key=lambda p: boxes.index(frames_in(p)[0]))
        for child in inner:
            name = child[-1]
            lines.append(f"{indent}subgraph {_quote('cluster_' + name)} {{")
            lines.append(f"{indent}  label={_quote(name + ' (' + graph.block_kinds[name] + ')')};"
                         f" labeljust=l; style=rounded; color=\"#7a9cc6\"; fontsize=12;")
            emit(child, indent + "  ")
            lines.append(f"{indent}}}")

    def frames_in(path: tuple) -> list:
        return [box for p, members in frames.items() if p[:len(path)] == path for box in members]

    emit((), "  ")
    lines.extend(f"  {_quote(source)} -> {_quote(target)};" for source, target in drawing.edges())
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(dot_text: str, output: str) -> None:
    """Write the picture; its format follows the file's extension."""
    extension = os.path.splitext(output)[1].lstrip(".").lower()
    if extension not in FORMATS:
        raise SpecError(None, "--output", f"cannot tell the picture format of '{output}'; end "
                                          f"the name with one of .{', .'.join(FORMATS)}")
    folder = os.path.dirname(output) or "."
    if not os.path.isdir(folder):
        raise SpecError(None, "--output", f"{folder}: no such folder")
    if extension == "dot":
        with open(output, "w") as handle:
            handle.write(dot_text)
        return
    program = shutil.which("dot")
    if program is None:
        raise SpecError(None, "", INSTALL_HINT)
    result = subprocess.run([program, f"-T{extension}", "-o", output], input=dot_text,
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"Graphviz's dot failed: {result.stderr.strip()}")
