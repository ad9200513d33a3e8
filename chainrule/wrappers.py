"""Layer sources made of framework functions, without writing ``vjp`` by hand (docs/layers.md,
"Plugging in"): a table of ``torch.autograd.Function`` subclasses (or torch-differentiable
callables), or of ``jax.custom_vjp`` functions (or jax-differentiable callables), by layer name.

Each function's parameters are named after the layer's inputs and config keys (any subset of
the config keys, in any order); it is called positionally in its own parameter order with the
inputs as tensors (float inputs in the declared precision, index arrays int64, masks bool, an
absent optional input None) and the config values (lists as tuples). The gradients are the
framework's own vector-Jacobian product of y with dy over the differentiable inputs it takes;
one it does not use (or take) gets zeros. torch and jax are imported only when asked.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import numpy as np

from chainrule.layers.contract import LAYER_NAMES, LAYERS, LayerSpec

__all__ = ["jax_custom_vjp_layers", "torch_function_layers"]


def _hashable(value: object) -> object:
    """A config value as a function takes it: lists (pairs) as tuples, hashable for jax's nondiff_argnums."""
    return tuple(_hashable(v) for v in value) if isinstance(value, (list, tuple)) else value


def _arguments(parameters: tuple[str, ...], spec: LayerSpec, config: dict, inputs: dict) -> list:
    """The call's arguments in the function's parameter order: ``inputs`` (already tensors) and config values."""
    return [inputs.get(name) if name in spec.input_names else _hashable(config[name]) for name in parameters]


def _parameters(layer: str, function: object, signature: inspect.Signature, label: str) -> tuple[str, ...]:
    """Its parameter names, each an input or a config key of ``layer``; ValueError otherwise."""
    if layer not in LAYERS:
        raise ValueError(f"{label}: {layer!r} is not a layer of the contract; known: {', '.join(LAYER_NAMES)}")
    spec = LAYERS[layer]
    names = []
    for parameter in signature.parameters.values():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD, parameter.KEYWORD_ONLY):
            raise ValueError(f"{label}: {layer}'s function takes {parameter}: name each parameter after an input or a config key")
        if parameter.name not in spec.input_names and parameter.name not in spec.defaults:
            raise ValueError(f"{label}: {layer}'s function {getattr(function, '__qualname__', function)!r} takes {parameter.name!r}, "
                             f"neither an input of {layer} ({', '.join(spec.input_names)}) nor a config key "
                             f"({', '.join(spec.defaults) or 'none'})")
        names.append(parameter.name)
    return tuple(names)


@dataclass(frozen=True, eq=False)
class FunctionLayers:
    """A layer source: one framework function per layer (``functions``), each called with its
    ``parameters`` by ``framework`` ("torch" or "jax"); made by torch_function_layers or
    jax_custom_vjp_layers."""

    name: str
    functions: dict[str, object]
    parameters: dict[str, tuple[str, ...]]
    framework: str
    layer_configs: dict[str, dict[str, list]] | None = None
    kink_derivatives: dict | None = None
    precision: str = "float64"

    @property
    def layers(self) -> tuple[str, ...]:
        return tuple(self.functions)

    def vjp(self, layer: str, config: dict, inputs: dict[str, np.ndarray], dy: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """y and grads[n] = J_n^T dy for each differentiable input, as float64 numpy copies."""
        vjp = _torch_vjp if self.framework == "torch" else _jax_vjp
        return vjp(self.functions[layer], self.parameters[layer], LAYERS[layer], config, inputs, dy, self.precision)


def _copy(array) -> np.ndarray:
    """A float64 numpy copy of a tensor or an array: never the framework's own memory."""
    if hasattr(array, "detach"):  # a torch tensor: numpy has no bfloat16, so float64 in torch first
        array = array.detach().cpu().double().numpy()
    return np.array(array, dtype=np.float64)


def _torch_vjp(function, parameters, spec, config, inputs, dy, precision):
    import torch

    dtype = getattr(torch, precision)
    call = function.apply if isinstance(function, type) and issubclass(function, torch.autograd.Function) else function
    tensors = {name: torch.tensor(array, dtype=dtype if array.dtype == np.float64 else None) for name, array in inputs.items()}
    wrt = [name for name in spec.differentiable if name in parameters]
    for name in wrt:
        tensors[name].requires_grad_(True)
    y = call(*_arguments(parameters, spec, config, tensors))
    grads = [None] * len(wrt)
    if wrt and y.requires_grad:
        grads = torch.autograd.grad(y, [tensors[name] for name in wrt], grad_outputs=torch.tensor(dy, dtype=y.dtype), allow_unused=True)
    found = {name: grad for name, grad in zip(wrt, grads) if grad is not None}
    return _copy(y), {name: _copy(found[name]) if name in found else np.zeros(inputs[name].shape) for name in spec.differentiable}


def _jax_vjp(function, parameters, spec, config, inputs, dy, precision):
    import jax
    import jax.numpy as jnp

    with jax.enable_x64(True):  # on only inside the call, as chainrule.oracles.jax_grad: the user's own setting stays
        dtype = getattr(jnp, precision)
        arrays = {name: jnp.asarray(array, dtype=dtype if array.dtype == np.float64 else None) for name, array in inputs.items()}
        wrt = [name for name in spec.differentiable if name in parameters]

        def layer(*differentiated):
            return function(*_arguments(parameters, spec, config, arrays | dict(zip(wrt, differentiated))))

        y, pullback = jax.vjp(layer, *(arrays[name] for name in wrt))
        found = dict(zip(wrt, pullback(jnp.asarray(dy, dtype=y.dtype))))
        return _copy(y), {name: _copy(found[name]) if name in found else np.zeros(inputs[name].shape) for name in spec.differentiable}


def _table(functions: dict, name: str, signature) -> dict[str, tuple[str, ...]]:
    if not isinstance(functions, dict) or not functions:
        raise ValueError(f"{name}: functions must be a non-empty dict of layer name -> function, got {functions!r}")
    table = {}
    for layer, function in functions.items():
        try:
            found = signature(function)
        except (TypeError, ValueError) as error:  # a builtin (torch.relu) has no signature to read
            raise ValueError(f"{name}: cannot read the parameters of {layer}'s function {function!r} ({error}); wrap it in one whose "
                             f"parameters are named after the inputs, e.g. lambda x: torch.relu(x)") from None
        table[layer] = _parameters(layer, function, found, name)
    return table


def torch_function_layers(
    functions: dict, name: str, layer_configs=None, kink_derivatives=None, precision: str = "float64"
) -> FunctionLayers:
    """A layer source from ``torch.autograd.Function`` subclasses (called through ``.apply``; their
    parameters: ``forward``'s after ctx) or torch-differentiable callables, by layer name.
    ValueError at once for a parameter that is neither an input nor a config key. Example::

        class Linear(torch.autograd.Function):
            @staticmethod
            def forward(ctx, x, weight, bias): ctx.save_for_backward(x, weight); return x @ weight.T + bias
            @staticmethod
            def backward(ctx, dy): x, weight = ctx.saved_tensors; return dy @ weight, dy.T @ x, dy.sum(0)
        source = chainrule.torch_function_layers({"linear": Linear}, name="my-linear")
    """
    import torch

    def signature(function) -> inspect.Signature:
        if not (isinstance(function, type) and issubclass(function, torch.autograd.Function)):
            return inspect.signature(function)
        forward = inspect.signature(function.forward)
        if function.setup_context is not torch.autograd.Function.setup_context:  # forward(x, ...) with setup_context: no ctx
            return forward
        return forward.replace(parameters=list(forward.parameters.values())[1:])

    parameters = _table(functions, name, signature)
    return FunctionLayers(name, dict(functions), parameters, "torch", layer_configs, kink_derivatives, precision)


def jax_custom_vjp_layers(
    functions: dict, name: str, layer_configs=None, kink_derivatives=None, precision: str = "float64"
) -> FunctionLayers:
    """A layer source from ``jax.custom_vjp`` functions (or jax-differentiable callables), by layer
    name. Config values are passed positionally too, as tuples where lists: put them in
    ``nondiff_argnums``. Gradients by jax.vjp over the differentiable inputs, with float64 on
    only inside the call. ValueError at once for a parameter that is neither an input nor a config key. Example::

        @jax.custom_vjp
        def linear(x, weight, bias): return x @ weight.T + bias
        def forward(x, weight, bias): return linear(x, weight, bias), (x, weight)
        def backward(saved, dy): x, weight = saved; return dy @ weight, dy.T @ x, dy.sum(0)
        linear.defvjp(forward, backward)
        source = chainrule.jax_custom_vjp_layers({"linear": linear}, name="my-linear")
    """
    parameters = _table(functions, name, inspect.signature)
    return FunctionLayers(name, dict(functions), parameters, "jax", layer_configs, kink_derivatives, precision)
