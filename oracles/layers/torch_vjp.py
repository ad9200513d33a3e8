"""PyTorch as a judge of the layer contract: each layer from torch.nn.functional in float64,
its vector-Jacobian product by ``torch.autograd.grad(y, inputs, grad_outputs=dy)``.

The meanings are F.*'s, with the contract's exceptions (docs/layers.md): softplus is
logaddexp(x, 0) = log(1 + e^x) everywhere (F.softplus turns exactly linear above 20; logaddexp's
gradient is sigmoid(x) there); gelu is F.gelu's exact erf form; dropout is x * mask / (1 - p)
with the given mask. At the kinks F.relu'(0) = 0 and F.leaky_relu'(0) = 0.01, the contract's
conventions (torch takes the x <= 0 branch at 0).

conv1d / conv2d are F.conv1d / F.conv2d; the pools F.max_pool2d / F.avg_pool2d (ceil_mode False),
whose gradient at a tied window goes to the first maximum in row-major order, the contract's rule
(a test holds it to that). attention is
F.scaled_dot_product_attention on its math path (in float64 on the CPU it may otherwise take the
flash kernel), the mask AND the top-left causal mask (query i sees keys j <= i) given as one boolean
attn_mask: SDPA takes no attn_mask together with is_causal.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from chainrule.contract import LEAKY_SLOPE
from chainrule.layers.contract import LAYERS

__all__ = ["FORWARD", "vjp"]

_DTYPES = {"float": torch.float64, "index": torch.int64, "mask": torch.bool}


def _shape(normalized_shape) -> tuple[int, ...]:
    """layer_norm's S: an int or a list in the config."""
    return (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)


def _pair(value):
    """A config's int or list (one per spatial axis) as F.conv*'s and the pools' int or tuple."""
    return tuple(value) if isinstance(value, list) else value


def _conv(convolve):
    return lambda c, x, weight, bias: convolve(x, weight, bias, _pair(c["stride"]), _pair(c["padding"]), _pair(c["dilation"]), c["groups"])


def _pool_window(c) -> tuple:
    """(kernel_size, stride, padding) of a pool, stride None meaning kernel_size."""
    stride = c["kernel_size"] if c["stride"] is None else c["stride"]
    return _pair(c["kernel_size"]), _pair(stride), _pair(c["padding"])


def _attention(c, q, k, v, mask=None):
    """SDPA, math path, float64; mask AND causal (top-left) as one boolean attn_mask."""
    if c["causal"]:
        causal = torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool).tril()
        mask = causal if mask is None else mask & causal
    scale = None if c["scale"] is None else float(c["scale"])
    with sdpa_kernel(SDPBackend.MATH):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)


# layer -> forward(config, **inputs): y from the contract's inputs as tensors.
FORWARD = {
    "linear": lambda c, x, weight, bias: F.linear(x, weight, bias),
    "identity": lambda c, x: x,
    "relu": lambda c, x: F.relu(x),
    "leaky_relu": lambda c, x: F.leaky_relu(x, LEAKY_SLOPE),
    "sigmoid": lambda c, x: torch.sigmoid(x),
    "tanh": lambda c, x: torch.tanh(x),
    "softplus": lambda c, x: torch.logaddexp(x, torch.zeros_like(x)),
    "elu": lambda c, x: F.elu(x),
    "gelu": lambda c, x: F.gelu(x),
    "silu": lambda c, x: F.silu(x),
    "softmax": lambda c, x: F.softmax(x, dim=c["axis"]),
    "log_softmax": lambda c, x: F.log_softmax(x, dim=c["axis"]),
    "layer_norm": lambda c, x, weight, bias: F.layer_norm(x, _shape(c["normalized_shape"]), weight, bias, c["eps"]),
    "batch_norm": lambda c, x, weight, bias: F.batch_norm(x, None, None, weight, bias, training=True, eps=c["eps"]),
    "group_norm": lambda c, x, weight, bias: F.group_norm(x, c["num_groups"], weight, bias, c["eps"]),
    "embedding": lambda c, indices, weight: F.embedding(indices, weight),
    "dropout": lambda c, x, mask: x * mask / (1.0 - c["p"]),
    "conv1d": _conv(F.conv1d),
    "conv2d": _conv(F.conv2d),
    "max_pool2d": lambda c, x: F.max_pool2d(x, *_pool_window(c)),
    "avg_pool2d": lambda c, x: F.avg_pool2d(x, *_pool_window(c), count_include_pad=c["count_include_pad"]),
    "attention": _attention,
    "mse_loss": lambda c, input, target: F.mse_loss(input, target),
    "cross_entropy": lambda c, input, target: F.cross_entropy(input, target),
}


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    """A float64 numpy copy (never a view into a torch buffer or an input)."""
    return tensor.detach().numpy().astype(np.float64, copy=True)


def vjp(layer: str, config: dict, inputs: dict[str, np.ndarray], dy: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(y, grads): the layer's output and grads[n] = J_n^T dy for each differentiable input n,
    fresh float64 arrays. ``config`` is complete (full_config); the inputs are copied, never changed."""
    spec = LAYERS[layer]
    tensors = {
        i.name: torch.tensor(inputs[i.name], dtype=_DTYPES[i.kind], requires_grad=i.differentiable)
        for i in spec.inputs if i.name in inputs
    }
    with torch.enable_grad():
        y = FORWARD[layer](config, **tensors)
        grads = torch.autograd.grad(y, [tensors[n] for n in spec.differentiable], grad_outputs=torch.tensor(dy, dtype=torch.float64))
    return _numpy(y), {n: _numpy(g) for n, g in zip(spec.differentiable, grads)}
