"""The windows of a kernel sliding over x (N, C, *spatial): the one gather behind conv and pooling.

A kernel of K_i taps per spatial axis i, placed every s_i entries, its taps d_i apart (dilation),
covers the padded x at

    position(k, o) = o * s + k * d        per axis, k < K, o < O = floor((L - d (K - 1) - 1) / s) + 1

``windows`` gathers every window at once with one precomputed index into the flattened spatial
axes: x (N, C, *L) -> (N, C, prod K, *O), the kernel's taps in row-major order.
``scatter`` is its adjoint (transpose): each window entry's value added back where it came from,
overlaps accumulating. ``pad`` adds a border of a constant (zeros for conv and avg-pool, -inf for
max-pool); a negative width crops instead. No arithmetic touches the values except ``scatter``'s
sums (np.add.at).
"""

from __future__ import annotations

import numpy as np

__all__ = ["pad", "per_axis", "scatter", "windows"]


def per_axis(value, rank: int) -> tuple[int, ...]:
    """A config value (an int, or a list with one int per spatial axis) as a tuple of ``rank`` ints."""
    values = (int(value),) * rank if isinstance(value, (int, np.integer)) else tuple(map(int, value))
    if len(values) != rank:
        raise ValueError(f"{value!r} has {len(values)} values for {rank} spatial axes")
    return values


def pad(x, before, after, value=0.0):
    """x (N, C, *spatial) with before[i] and after[i] entries of ``value`` around spatial axis i (a copy);
    a negative width crops that many entries instead."""
    widths = [(0, 0), (0, 0), *((max(b, 0), max(a, 0)) for b, a in zip(before, after))]
    padded = np.pad(x, widths, constant_values=value)
    crop = tuple(slice(max(-b, 0), n - max(-a, 0)) for b, a, n in zip(before, after, padded.shape[2:]))
    return padded[(slice(None), slice(None), *crop)]


def _index(spatial, kernel, stride, dilation) -> np.ndarray:
    """(prod K, *O) int: the flat position in the spatial axes (of shape ``spatial``) of tap k of window o."""
    rank = len(spatial)
    out = tuple((n - d * (k - 1) - 1) // s + 1 for n, k, s, d in zip(spatial, kernel, stride, dilation))
    flat = np.zeros((*kernel, *out), dtype=np.int64)
    step = 1  # how far apart neighbours along the axis lie once the spatial axes are flattened
    for axis in reversed(range(rank)):
        along = np.arange(kernel[axis]).reshape(-1, 1) * dilation[axis] + np.arange(out[axis]) * stride[axis]  # k d + o s
        shape = [1] * (2 * rank)
        shape[axis], shape[rank + axis] = kernel[axis], out[axis]
        flat = flat + along.reshape(shape) * step
        step *= spatial[axis]
    return flat.reshape(-1, *out)


def windows(x, kernel, stride, dilation):
    """x (N, C, *L) -> (N, C, prod K, *O): entry [n, c, k, o] = x[n, c, o * s + k * d] (a copy, C-contiguous:
    np.take is the fancy index x[:, :, index] laid out in the result's order, so reshapes stay free)."""
    return np.take(x.reshape(*x.shape[:2], -1), _index(x.shape[2:], kernel, stride, dilation), axis=2)


def scatter(dwindows, spatial, kernel, stride, dilation):
    """The adjoint of ``windows``: dwindows (N, C, prod K, *O), or any shape broadcasting to it, added back
    to an x of spatial shape ``spatial``: dx[n, c, o * s + k * d] += dwindows[n, c, k, o]."""
    index = _index(spatial, kernel, stride, dilation)
    dx = np.zeros_like(dwindows, shape=(*dwindows.shape[:2], int(np.prod(spatial))))  # dwindows' array type
    np.add.at(dx, (slice(None), slice(None), index), dwindows)  # unbuffered: overlapping windows add up
    return dx.reshape(*dx.shape[:2], *spatial)
