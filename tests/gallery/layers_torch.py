"""``torch.autograd.Function`` subclasses with hand-written backward passes, as people write custom
layers for PyTorch: the forward from torch's tensor ops, the backward from the formulas, no autograd
inside it. Each ``forward(ctx, ...)`` takes the layer's inputs and then its config by the contract's
names; ``chainrule.torch_function_layers`` turns the dict of them into a layer source, calling each
with float64 tensors and taking the gradients with ``torch.autograd.grad``.

Not here (not exercised): identity, softplus, elu and group_norm. LayerNorm normalizes over the last
dimension only, as most fused layer norm kernels do: a ``normalized_shape`` of two or more
dimensions raises NotImplementedError. relu'(0) = 0 and leaky_relu'(0) = 0.01, as torch's. One
Conv serves conv1d and conv2d (x's rank picks), with every stride, padding, dilation and groups;
max_pool2d sends a tied window's gradient where F.max_pool2d's indices point, its first maximum.

    chainrule check tests.gallery.layers_torch:SOURCE
"""

import math

import torch
import torch.nn.functional as F

import chainrule

__all__ = ["SOURCE"]


class Linear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight)
        return x @ weight.T + bias

    @staticmethod
    def backward(ctx, grad_output):
        x, weight = ctx.saved_tensors
        return grad_output @ weight, grad_output.T @ x, grad_output.sum(0)


class ReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output * (x > 0)


class LeakyReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.where(x > 0, x, 0.01 * x)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return torch.where(x > 0, grad_output, 0.01 * grad_output)


class Sigmoid(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        y = torch.sigmoid(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad_output):
        (y,) = ctx.saved_tensors
        return grad_output * y * (1 - y)


class Tanh(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        y = torch.tanh(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad_output):
        (y,) = ctx.saved_tensors
        return grad_output * (1 - y * y)


class SiLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * torch.sigmoid(x)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        s = torch.sigmoid(x)
        return grad_output * s * (1 + x * (1 - s))


class GELU(torch.autograd.Function):
    """The exact form x Phi(x)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        cdf = 0.5 * (1 + torch.erf(x / math.sqrt(2)))
        pdf = torch.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
        return grad_output * (cdf + x * pdf)


class Softmax(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, axis):
        y = torch.softmax(x, dim=axis)
        ctx.save_for_backward(y)
        ctx.axis = axis
        return y

    @staticmethod
    def backward(ctx, grad_output):
        (y,) = ctx.saved_tensors
        dot = (grad_output * y).sum(dim=ctx.axis, keepdim=True)
        return y * (grad_output - dot), None


class LogSoftmax(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, axis):
        y = torch.log_softmax(x, dim=axis)
        ctx.save_for_backward(y)
        ctx.axis = axis
        return y

    @staticmethod
    def backward(ctx, grad_output):
        (y,) = ctx.saved_tensors
        return grad_output - y.exp() * grad_output.sum(dim=ctx.axis, keepdim=True), None


class LayerNorm(torch.autograd.Function):
    """Over the last dimension, rows of D features: dx = rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat))."""

    @staticmethod
    def forward(ctx, x, weight, bias, normalized_shape, eps):
        if len(normalized_shape) != 1:
            raise NotImplementedError("LayerNorm normalizes over the last dimension only")
        mean = x.mean(dim=-1, keepdim=True)
        var = x.var(dim=-1, unbiased=False, keepdim=True)
        rstd = torch.rsqrt(var + eps)
        xhat = (x - mean) * rstd
        ctx.save_for_backward(xhat, weight, rstd)
        return xhat * weight + bias

    @staticmethod
    def backward(ctx, grad_output):
        xhat, weight, rstd = ctx.saved_tensors
        dxhat = grad_output * weight
        dx = rstd * (dxhat - dxhat.mean(-1, keepdim=True) - xhat * (dxhat * xhat).mean(-1, keepdim=True))
        D = xhat.shape[-1]
        dweight = (grad_output * xhat).reshape(-1, D).sum(0)
        dbias = grad_output.reshape(-1, D).sum(0)
        return dx, dweight, dbias, None, None


class BatchNorm(torch.autograd.Function):
    """Training mode: statistics per channel over the batch and spatial dimensions."""

    @staticmethod
    def forward(ctx, x, weight, bias, eps):
        dims = [0, *range(2, x.dim())]
        shape = [1, -1] + [1] * (x.dim() - 2)
        mean = x.mean(dim=dims, keepdim=True)
        var = x.var(dim=dims, unbiased=False, keepdim=True)
        rstd = torch.rsqrt(var + eps)
        xhat = (x - mean) * rstd
        ctx.save_for_backward(xhat, weight, rstd)
        ctx.dims, ctx.shape = dims, shape
        return xhat * weight.view(shape) + bias.view(shape)

    @staticmethod
    def backward(ctx, grad_output):
        xhat, weight, rstd = ctx.saved_tensors
        dims, shape = ctx.dims, ctx.shape
        dxhat = grad_output * weight.view(shape)
        dx = rstd * (dxhat - dxhat.mean(dims, keepdim=True) - xhat * (dxhat * xhat).mean(dims, keepdim=True))
        return dx, (grad_output * xhat).sum(dims), grad_output.sum(dims), None


class Embedding(torch.autograd.Function):
    @staticmethod
    def forward(ctx, indices, weight):
        ctx.save_for_backward(indices)
        ctx.num_embeddings = weight.shape[0]
        return weight.index_select(0, indices.reshape(-1)).reshape(*indices.shape, weight.shape[1])

    @staticmethod
    def backward(ctx, grad_output):
        (indices,) = ctx.saved_tensors
        D = grad_output.shape[-1]
        grad_weight = grad_output.new_zeros(ctx.num_embeddings, D)
        grad_weight.index_add_(0, indices.reshape(-1), grad_output.reshape(-1, D))
        return None, grad_weight


class Dropout(torch.autograd.Function):
    """Inverted dropout with the mask given: x * mask / (1 - p)."""

    @staticmethod
    def forward(ctx, x, mask, p):
        scale = 1 / (1 - p)
        ctx.save_for_backward(mask)
        ctx.scale = scale
        return x * mask * scale

    @staticmethod
    def backward(ctx, grad_output):
        (mask,) = ctx.saved_tensors
        return grad_output * mask * ctx.scale, None, None


class CrossEntropy(torch.autograd.Function):
    """Logits (N, C), class indices (N,), mean over N: d/dinput = (softmax - onehot) / N."""

    @staticmethod
    def forward(ctx, input, target):
        log_probs = torch.log_softmax(input, dim=1)
        ctx.save_for_backward(log_probs, target)
        return -log_probs.gather(1, target[:, None]).mean()

    @staticmethod
    def backward(ctx, grad_output):
        log_probs, target = ctx.saved_tensors
        N = log_probs.shape[0]
        grad = log_probs.exp()
        grad[torch.arange(N), target] -= 1
        return grad * grad_output / N, None


class MSELoss(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input, target):
        diff = input - target
        ctx.save_for_backward(diff)
        return (diff * diff).mean()

    @staticmethod
    def backward(ctx, grad_output):
        (diff,) = ctx.saved_tensors
        grad = 2 * diff * grad_output / diff.numel()
        return grad, -grad


def _per_axis(value, n: int) -> tuple:
    """A config value as one int per spatial axis: an int, or a tuple of them (the wrapper passes lists as tuples)."""
    return tuple(value) if isinstance(value, tuple) else (value,) * n


def _unfold(x, kernel, dilation, padding, stride):
    """im2col: (N, C * prod(kernel), positions), rows channel-major as the weight's; a 1-d x as a plane of height 1."""
    if x.dim() == 3:
        return _unfold(x.unsqueeze(2), (1, *kernel), (1, *dilation), (0, *padding), (1, *stride))
    return F.unfold(x, kernel, dilation, padding, stride)


_CONV = {1: (F.conv1d, F.conv_transpose1d), 2: (F.conv2d, F.conv_transpose2d)}  # by the number of spatial axes


class Conv(torch.autograd.Function):
    """conv1d and conv2d. dx is the transposed convolution of dy, its output_padding putting back the
    last L + 2p - d(K-1) - 1 mod s rows the stride skipped; dweight = dy times the unfolded patches of x
    (im2col), group by group; dbias = dy summed over the batch and the positions."""

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, dilation, groups):
        n = x.dim() - 2
        stride, padding, dilation = (_per_axis(value, n) for value in (stride, padding, dilation))
        ctx.save_for_backward(x, weight)
        ctx.stride, ctx.padding, ctx.dilation, ctx.groups = stride, padding, dilation, groups
        return _CONV[n][0](x, weight, bias, stride, padding, dilation, groups)

    @staticmethod
    def backward(ctx, grad_output):
        x, weight = ctx.saved_tensors
        stride, padding, dilation, groups = ctx.stride, ctx.padding, ctx.dilation, ctx.groups
        kernel, n = weight.shape[2:], x.dim() - 2
        output_padding = tuple(L + 2 * p - d * (K - 1) - 1 - s * (O - 1)
                               for L, p, d, K, s, O in zip(x.shape[2:], padding, dilation, kernel, stride, grad_output.shape[2:]))
        dx = _CONV[n][1](grad_output, weight, None, stride, padding, output_padding, groups, dilation)
        N, C_out = grad_output.shape[:2]
        cols = _unfold(x, kernel, dilation, padding, stride)
        cols = cols.reshape(N, groups, -1, cols.shape[-1])
        dy = grad_output.reshape(N, groups, C_out // groups, -1)
        dweight = torch.einsum("ngol,ngcl->goc", dy, cols).reshape(weight.shape)
        dbias = grad_output.sum([0, *range(2, grad_output.dim())])
        return dx, dweight, dbias, None, None, None, None


class MaxPool2d(torch.autograd.Function):
    """dx: each window's dy added at the index F.max_pool2d returned for it; overlapping windows accumulate
    (a scatter_add, not F.max_unpool2d, which keeps one of them)."""

    @staticmethod
    def forward(ctx, x, kernel_size, stride, padding):
        y, indices = F.max_pool2d(x, kernel_size, stride, padding, return_indices=True)
        ctx.save_for_backward(indices)
        ctx.x_shape = x.shape
        return y

    @staticmethod
    def backward(ctx, grad_output):
        (indices,) = ctx.saved_tensors
        N, C, H, W = ctx.x_shape
        dx = grad_output.new_zeros(N, C, H * W).scatter_add_(2, indices.flatten(2), grad_output.flatten(2))
        return dx.view(N, C, H, W), None, None, None


class AvgPool2d(torch.autograd.Function):
    """dx: each window's dy / divisor spread over the window and summed back (col2im, F.fold). The divisor
    is the kernel's area, or with count_include_pad False the window's real entries (unfolded ones)."""

    @staticmethod
    def forward(ctx, x, kernel_size, stride, padding, count_include_pad):
        kernel = _per_axis(kernel_size, 2)
        stride = kernel if stride is None else _per_axis(stride, 2)
        padding = _per_axis(padding, 2)
        if count_include_pad:
            divisor = kernel[0] * kernel[1]
        else:
            divisor = F.unfold(x.new_ones(1, 1, *x.shape[2:]), kernel, 1, padding, stride).sum(1)
        ctx.kernel, ctx.stride, ctx.padding, ctx.divisor, ctx.size = kernel, stride, padding, divisor, x.shape[2:]
        return F.avg_pool2d(x, kernel, stride, padding, count_include_pad=count_include_pad)

    @staticmethod
    def backward(ctx, grad_output):
        N, C = grad_output.shape[:2]
        area = ctx.kernel[0] * ctx.kernel[1]
        cols = (grad_output.flatten(2) / ctx.divisor).unsqueeze(2).expand(N, C, area, -1).reshape(N, C * area, -1)
        dx = F.fold(cols, ctx.size, ctx.kernel, 1, ctx.padding, ctx.stride)
        return dx, None, None, None, None


class Attention(torch.autograd.Function):
    """P = softmax(q k^T scale) over the keys each query may see, y = P v. dv = P^T dy, dP = dy v^T,
    dS = P (dP - rowsum(dP P)), dq = dS k scale, dk = dS^T q scale."""

    @staticmethod
    def forward(ctx, q, k, v, mask, causal, scale):
        scale = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
        allowed = torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool, device=q.device)
        if mask is not None:
            allowed = allowed & mask
        if causal:
            allowed = allowed.tril()
        scores = (q @ k.transpose(-2, -1) * scale).masked_fill(~allowed, float("-inf"))
        p = torch.softmax(scores, dim=-1)
        ctx.save_for_backward(q, k, v, p)
        ctx.scale = scale
        return p @ v

    @staticmethod
    def backward(ctx, grad_output):
        q, k, v, p = ctx.saved_tensors
        dv = p.transpose(-2, -1) @ grad_output
        dp = grad_output @ v.transpose(-2, -1)
        ds = p * (dp - (dp * p).sum(-1, keepdim=True))
        return ds @ k * ctx.scale, ds.transpose(-2, -1) @ q * ctx.scale, dv, None, None, None


SOURCE = chainrule.torch_function_layers(
    {
        "linear": Linear,
        "relu": ReLU,
        "leaky_relu": LeakyReLU,
        "sigmoid": Sigmoid,
        "tanh": Tanh,
        "silu": SiLU,
        "gelu": GELU,
        "softmax": Softmax,
        "log_softmax": LogSoftmax,
        "layer_norm": LayerNorm,
        "batch_norm": BatchNorm,
        "embedding": Embedding,
        "dropout": Dropout,
        "cross_entropy": CrossEntropy,
        "mse_loss": MSELoss,
        "conv1d": Conv,
        "conv2d": Conv,
        "max_pool2d": MaxPool2d,
        "avg_pool2d": AvgPool2d,
        "attention": Attention,
    },
    name="torch_function",
)
