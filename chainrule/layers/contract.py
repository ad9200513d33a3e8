"""The layer contract's vocabulary (docs/layers.md): each layer's inputs and config, no arithmetic.

A layer source answers ``vjp(layer, config, inputs, dy) -> (y, grads)``: the layer's output y
and, for each differentiable input n, grads[n] = J_n^T dy, the gradient of <y, dy>. The
reference, each judge and the engine take the names from here, as they take the network
contract's from chainrule.contract.
"""

from __future__ import annotations

from dataclasses import dataclass

from chainrule.contract import ACTIVATION_NAMES

__all__ = ["ELEMENTWISE", "LAYERS", "LAYER_NAMES", "REQUIRED", "TIE_RULES", "Input", "LayerSpec", "full_config"]

REQUIRED = "required"  # a config key without a default (layer_norm's normalized_shape, ...)
EPS = 1e-5  # the default eps of the norms

# The elementwise layers: the network contract's activations (softmax is a layer of its own here).
ELEMENTWISE = tuple(name for name in ACTIVATION_NAMES if name != "softmax")
# How max_pool2d may share a tied window's gradient: the contract's rule first ("first" maximum in
# row-major order, as torch does), then the ones a source may declare in kink_derivatives.
TIE_RULES = ("first", "last", "split")


@dataclass(frozen=True)
class Input:
    """One input array of a layer: its name, what it holds and whether it has a gradient."""

    name: str
    kind: str = "float"  # "float" (float64), "index" (int64) or "mask" (bool)
    differentiable: bool = True
    optional: bool = False  # present or absent (attention's mask); every other input is always given


@dataclass(frozen=True)
class LayerSpec:
    """One layer of the contract: its inputs in the table's order, and its config keys with their
    defaults (REQUIRED where there is none)."""

    name: str
    inputs: tuple[Input, ...]
    config: tuple[tuple[str, object], ...] = ()

    @property
    def differentiable(self) -> tuple[str, ...]:
        """The names ``grads`` must hold, no more, no fewer."""
        return tuple(i.name for i in self.inputs if i.differentiable)

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(i.name for i in self.inputs)

    @property
    def defaults(self) -> dict[str, object]:
        return dict(self.config)


_X = Input("x")
_CONV = (("stride", 1), ("padding", 0), ("dilation", 1), ("groups", 1))
_POOL = (("kernel_size", REQUIRED), ("stride", None), ("padding", 0))  # stride None: the kernel_size
_AFFINE = (_X, Input("weight"), Input("bias"))

LAYERS: dict[str, LayerSpec] = {
    spec.name: spec
    for spec in (
        LayerSpec("linear", _AFFINE),
        *(LayerSpec(name, (_X,)) for name in ELEMENTWISE),
        LayerSpec("softmax", (_X,), (("axis", -1),)),
        LayerSpec("log_softmax", (_X,), (("axis", -1),)),
        LayerSpec("layer_norm", _AFFINE, (("normalized_shape", REQUIRED), ("eps", EPS))),
        LayerSpec("batch_norm", _AFFINE, (("eps", EPS),)),
        LayerSpec("group_norm", _AFFINE, (("num_groups", REQUIRED), ("eps", EPS))),
        LayerSpec("embedding", (Input("indices", "index", False), Input("weight"))),
        LayerSpec("dropout", (_X, Input("mask", "mask", False)), (("p", REQUIRED),)),
        LayerSpec("conv1d", _AFFINE, _CONV),
        LayerSpec("conv2d", _AFFINE, _CONV),
        LayerSpec("max_pool2d", (_X,), _POOL),
        LayerSpec("avg_pool2d", (_X,), _POOL + (("count_include_pad", True),)),
        LayerSpec("attention", (Input("q"), Input("k"), Input("v"), Input("mask", "mask", False, optional=True)),
                  (("causal", False), ("scale", None))),
        LayerSpec("mse_loss", (Input("input"), Input("target"))),
        LayerSpec("cross_entropy", (Input("input"), Input("target", "index", False))),
    )
}
LAYER_NAMES = tuple(LAYERS)


def full_config(layer: str, config: dict | None) -> dict[str, object]:
    """``config`` with every key the layer has, defaults filled in; ValueError for an unknown key
    or a required one left out (the message names the layer's keys)."""
    spec = LAYERS[layer]
    config = dict(config or {})
    unknown = sorted(set(config) - set(spec.defaults))
    if unknown:
        raise ValueError(f"{layer} has no config key {', '.join(map(repr, unknown))}; its keys: {', '.join(spec.defaults) or 'none'}")
    full = spec.defaults | config
    missing = [key for key, value in full.items() if value == REQUIRED]
    if missing:
        raise ValueError(f"{layer} needs config {', '.join(map(repr, missing))}")
    return full
