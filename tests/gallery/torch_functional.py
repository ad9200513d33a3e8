"""PyTorch in float64 as a torch user writes a dense network: tensors with ``requires_grad``, the
layers from torch's own functions (``torch.relu``, ``F.leaky_relu(z, 0.01)``, ``F.softplus``
with its default threshold, ``F.gelu`` exact, ``torch.softmax``, ...), ``loss.backward()``.

The losses are torch's own too: cross-entropy is ``F.cross_entropy`` on the output layer's logits
z with the probability rows of Y as targets (what torch's documentation asks for: the logits, not
the softmax), binary cross-entropy ``F.binary_cross_entropy`` on the sigmoid output a (which
clamps its logs at -100); both summed over the outputs and averaged over the batch as the
contract's. torch's kinks are the contract's: relu'(0) = 0, leaky_relu'(0) = 0.01.

    chainrule check tests.gallery.torch_functional:TorchFunctional
    chainrule check tests.gallery.torch_functional:TorchFunctionalWrongSoftplus
"""

import torch
import torch.nn.functional as F

__all__ = ["TorchFunctional", "TorchFunctionalWrongSoftplus"]

ACTIVATIONS = {
    "identity": lambda z: z,
    "relu": torch.relu,
    "leaky_relu": lambda z: F.leaky_relu(z, 0.01),
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "softplus": F.softplus,
    "elu": F.elu,
    "gelu": F.gelu,
    "silu": F.silu,
    "softmax": lambda z: torch.softmax(z, dim=1),
}


class TorchFunctional:
    name = "torch-functional"
    sigma = ACTIVATIONS

    def loss_and_gradients(self, arch, params, X, Y):
        layers = [(torch.tensor(W, requires_grad=True), torch.tensor(b, requires_grad=True)) for W, b in params]
        a, Y = torch.tensor(X), torch.tensor(Y)
        N = len(Y)
        for (W, b), activation in zip(layers, arch.activations):
            z = a @ W.T + b
            a = self.sigma[activation](z)
        if arch.loss == "mse":
            loss = ((a - Y) ** 2).sum() / N
        elif arch.loss == "cross_entropy":
            loss = F.cross_entropy(z, Y, reduction="sum") / N
        elif arch.loss == "binary_cross_entropy":
            loss = F.binary_cross_entropy(a, Y, reduction="sum") / N
        else:
            raise ValueError(f"unknown loss {arch.loss!r}")
        loss.backward()
        return loss.item(), [(W.grad.numpy(), b.grad.numpy()) for W, b in layers]


class Softplus(torch.autograd.Function):
    """softplus keeping only its output for the backward pass (to free z, as in-place activation
    layers do), written wrong: softplus'(z) = σ(z) = 1 − exp(−a) taken as σ(a)."""

    @staticmethod
    def forward(ctx, z):
        a = F.softplus(z)
        ctx.save_for_backward(a)
        return a

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return grad * torch.sigmoid(a)


class TorchFunctionalWrongSoftplus(TorchFunctional):
    """The bug: softplus through ``Softplus``, whose backward is σ(softplus(z)) instead of σ(z)."""

    name = "torch-functional (bug: softplus' = sigmoid(softplus))"
    sigma = {**ACTIVATIONS, "softplus": Softplus.apply}
