"""PyTorch autograd in low precision: the network built from float32 (float16, bfloat16) tensors,
``loss.backward()``, the ``.grad`` of each parameter handed back; what a torch user writes.

The layers are torch's own functions (``torch.relu``, ``F.leaky_relu(z, 0.01)``, ``F.gelu``,
``torch.softmax``, ...); the losses are the article's, from the output activation a, as sums
over the outputs averaged over the batch. Each class declares the precision it computes in.
The gradients come back in that dtype (bfloat16 has no numpy dtype: those come back widened to
float64, every value still a bfloat16 one).

    chainrule check tests.gallery.torch_lowp:TorchFloat32
    chainrule check tests.gallery.torch_lowp:TorchFloat16
    chainrule check tests.gallery.torch_lowp:TorchBfloat16
"""

import torch
import torch.nn.functional as F

__all__ = ["TorchFloat32", "TorchFloat16", "TorchBfloat16", "TorchFloat32WrongSilu"]

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


class TorchFloat32:
    name = "torch-float32"
    precision = "float32"
    dtype = torch.float32
    sigma = ACTIVATIONS

    def loss(self, name, a, Y):
        N = len(Y)
        if name == "mse":
            return ((a - Y) ** 2).sum() / N
        if name == "cross_entropy":
            return -(Y * torch.log(a)).sum() / N
        if name == "binary_cross_entropy":
            return -(Y * torch.log(a) + (1 - Y) * torch.log(1 - a)).sum() / N
        raise ValueError(f"unknown loss {name!r}")

    def loss_and_gradients(self, arch, params, X, Y):
        layers = [(torch.tensor(W, dtype=self.dtype, requires_grad=True), torch.tensor(b, dtype=self.dtype, requires_grad=True))
                  for W, b in params]
        a = torch.tensor(X, dtype=self.dtype)
        for (W, b), activation in zip(layers, arch.activations):
            a = self.sigma[activation](a @ W.T + b)
        loss = self.loss(arch.loss, a, torch.tensor(Y, dtype=self.dtype))
        loss.backward()
        return loss.item(), [(self.array(W.grad), self.array(b.grad)) for W, b in layers]

    def array(self, grad):
        return grad.numpy()


class TorchFloat16(TorchFloat32):
    name = "torch-float16"
    precision = "float16"
    dtype = torch.float16


class TorchBfloat16(TorchFloat32):
    name = "torch-bfloat16"
    precision = "bfloat16"
    dtype = torch.bfloat16

    def array(self, grad):
        return grad.double().numpy()  # numpy has no bfloat16


class Swish(torch.autograd.Function):
    """silu with a hand-written backward, to save the memory of autograd's graph (as
    EfficientNet-PyTorch's memory-efficient swish does), written wrong: silu'(z) taken as σ(z),
    the z σ(z)(1 − σ(z)) term of the product rule left out."""

    @staticmethod
    def forward(ctx, z):
        ctx.save_for_backward(z)
        return z * torch.sigmoid(z)

    @staticmethod
    def backward(ctx, grad):
        (z,) = ctx.saved_tensors
        return grad * torch.sigmoid(z)


class TorchFloat32WrongSilu(TorchFloat32):
    """The bug: silu through ``Swish``, whose backward is σ(z) instead of σ(z)(1 + z(1 − σ(z)))."""

    name = "torch-float32 (bug: silu' = sigmoid)"

    sigma = {**ACTIVATIONS, "silu": Swish.apply}
