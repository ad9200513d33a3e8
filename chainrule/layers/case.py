"""A layer case: one question for a layer source (a layer, its config, its inputs and dy)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from chainrule.layers.contract import LAYERS
from chainrule.precision import Precision

__all__ = ["LayerCase", "shapes_text"]


def shapes_text(shapes: dict[str, tuple[int, ...]]) -> str:
    """``x=2,3 weight=4,3 bias=4`` (a 0-d array: ``indices=``), as ``check --shapes`` reads it."""
    return " ".join(f"{name}={','.join(map(str, shape))}" for name, shape in shapes.items())


@dataclass(frozen=True, eq=False)
class LayerCase:
    """One question for a layer source: ``vjp(layer, config, inputs, dy)``; config is complete
    (every key of the layer, defaults filled), inputs in the contract's order."""

    layer: str
    config: dict
    inputs: dict[str, np.ndarray]
    dy: np.ndarray

    @property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {name: tuple(a.shape) for name, a in self.inputs.items()}

    @property
    def size(self) -> int:
        """Entries of every input and of dy: what the time of a call grows with."""
        return sum(a.size for a in self.inputs.values()) + self.dy.size

    @property
    def differentiable(self) -> tuple[str, ...]:
        return LAYERS[self.layer].differentiable

    def describe(self) -> str:
        """``layer_norm {"normalized_shape": [3], "eps": 1e-05} x=2,3 weight=3 bias=3``"""
        return f"{self.layer} {json.dumps(self.config)} {shapes_text(self.shapes)}"

    def in_precision(self, precision: Precision) -> "LayerCase":
        """The case with every float value rounded to ``precision`` (itself when representable)."""
        floats = [a for a in self.inputs.values() if a.dtype.kind == "f"] + [self.dy]
        if all(precision.representable(a) for a in floats):
            return self
        inputs = {n: precision.round(a) if a.dtype.kind == "f" else a for n, a in self.inputs.items()}
        return LayerCase(self.layer, self.config, inputs, precision.round(self.dy))

    def reproduction(self, spec: str | None = None) -> str:
        """Copy-pastable Python that asks ``source`` this case (float64 values round-trip via repr);
        with ``spec`` (MODULE:ATTR, as ``chainrule check`` is given it), ``source`` is loaded first."""
        arrays = ",\n    ".join(f"{name!r}: {_array(a)}" for name, a in self.inputs.items())
        module, _, attribute = (spec or "").partition(":")
        load = (f"import importlib\nsource = importlib.import_module({module!r}).{attribute}\n"
                "source = source() if isinstance(source, type) else source\n") if module and attribute.isidentifier() else ""
        return (
            "import numpy as np\n"
            f"{load}"
            f"config = {self.config!r}\n"
            f"inputs = {{\n    {arrays},\n}}\n"
            f"dy = {_array(self.dy)}\n"
            f"y, grads = source.vjp({self.layer!r}, config, inputs, dy)\n"
        )


def _array(a: np.ndarray) -> str:
    dtype = {"f": "", "i": ", dtype=np.int64", "b": ", dtype=bool"}[a.dtype.kind]
    return f"np.array({a.tolist()!r}{dtype})"
