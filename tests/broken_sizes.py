"""Size-dependent bugs: each is right on toy networks and wrong beyond a size, as tiled kernels,
chunked batch loops, vector lanes and depth-dependent loops go wrong.

Each is the article's backprop with one step written for speed and its edge case wrong.
``THRESHOLDS`` names the smallest size that shows it, which the search must report (chainrule's
reduce shrinks to it, the diagnosis names the pattern). Load one with
``chainrule check tests.broken_sizes:dW_tile_edge``.
"""

from __future__ import annotations

from chainrule.reference import ACTIVATIONS, LOSSES
from chainrule.reference.activations import Activation

__all__ = ["BUGS", "CATALOGUE", "SizeBroken", "Sleepy", "THRESHOLDS"]

BUGS = {
    "dW_tile_edge": "dW = dZ^T A_prev in 8 x 8 tiles, the last partial tile of inputs dropped (layers of more than 8 inputs)",
    "dA_tile_edge": "dA(l-1) = dZ(l) W(l) in tiles of 8 units, the last partial tile dropped (hidden layers of more than 8 units)",
    "forward_tile_edge": "the forward A W^T summed over inputs in tiles of 32, the last partial tile dropped (more than 32 inputs)",
    "batch_chunk_remainder": "dW and db accumulated over the batch in chunks of 4, the remainder chunk dropped (N > 4)",
    "depth_loop_bound": "sigma' of the first hidden layer skipped in networks of 6 or more layers (a loop bound)",
    "activation_lanes": "sigma' vectorised in lanes of 16, the remainder lanes reusing the previous vector's (more than 16 units)",
}

# The smallest counterexample: (which size, its value); the diagnosis tag it must carry.
THRESHOLDS = {
    "dW_tile_edge": ("fan-in", 9, "%8"),
    "dA_tile_edge": ("hidden", 9, "%8"),
    "forward_tile_edge": ("fan-in", 33, "%32"),
    "batch_chunk_remainder": ("N", 5, "size:N>4"),
    "depth_loop_bound": ("depth", 6, "size:depth>5"),
    "activation_lanes": ("units", 17, "%16"),
}


def _full_tiles(n: int, tile: int) -> int:
    """The columns a tiled loop covers: every full tile, or all n when n fits in one tile."""
    return n - n % tile if n > tile else n


def _stale_lanes(sigma_prime):
    """sigma' in vectors of 16 lanes; beyond the last full vector, lanes left from the one before."""

    def vectorised(z):
        d = sigma_prime(z)
        n, k = d.shape[1], _full_tiles(d.shape[1], 16)
        if k < n:
            d[:, k:] = d[:, k - 16 : n - 16]
        return d

    return vectorised


class SizeBroken:
    """The article's backprop with the one size-dependent bug named by ``bug``."""

    def __init__(self, bug: str):
        if bug not in BUGS:
            raise ValueError(f"bug: got {bug!r}, known: {', '.join(BUGS)}")
        self.bug = bug
        self.name = f"broken:{bug}"

    def _activation(self, name: str) -> Activation:
        activation = ACTIVATIONS[name]
        if self.bug == "activation_lanes" and activation.sigma_prime is not None:
            return Activation(activation.sigma, _stale_lanes(activation.sigma_prime))
        return activation

    def loss_and_gradients(self, arch, params, X, Y):
        bug, N, L = self.bug, len(X), len(params)
        sigmas = [self._activation(name) for name in arch.activations]
        zs, As = [], [X]
        for (W, b), activation in zip(params, sigmas):
            k = _full_tiles(W.shape[1], 32) if bug == "forward_tile_edge" else W.shape[1]
            zs.append(As[-1][:, :k] @ W[:, :k].T + b)
            As.append(activation.sigma(zs[-1]))
        loss = LOSSES[arch.loss].value(zs[-1], As[-1], Y)
        dZ = LOSSES[arch.loss].output_dZ(zs[-1], As[-1], Y, sigmas[-1])
        rows = slice(0, _full_tiles(N, 4)) if bug == "batch_chunk_remainder" else slice(None)
        grads = []
        for l in reversed(range(L)):
            W = params[l][0]
            dW, db = dZ[rows].T @ As[l][rows], dZ[rows].sum(axis=0)
            if bug == "dW_tile_edge":
                dW[:, _full_tiles(W.shape[1], 8) :] = 0.0
            grads.append((dW, db))
            if l > 0:
                dA = dZ @ W
                if bug == "dA_tile_edge":
                    dA[:, _full_tiles(W.shape[1], 8) :] = 0.0
                skipped = bug == "depth_loop_bound" and L >= 6 and l == 1
                dZ = dA if skipped else sigmas[l - 1].backward(zs[l - 1], As[l], dA)
        grads.reverse()
        return loss, grads


CATALOGUE = {bug: SizeBroken(bug) for bug in BUGS}
globals().update(CATALOGUE)  # tests.broken_sizes:dW_tile_edge names one for the command line


class Sleepy:
    """Right, and slow the way a scalar engine is: ``seconds_per_work`` seconds a multiply-add
    (N x parameters), slept, so that a test of the time budget costs no CPU."""

    activations = ("identity", "tanh")
    losses = ("mse",)

    def __init__(self, seconds_per_work: float):
        self.seconds_per_work = seconds_per_work
        self.name = f"sleepy ({seconds_per_work * 1e6:g} µs a multiply-add)"

    def loss_and_gradients(self, arch, params, X, Y):
        import time

        from chainrule.reference import Reference

        time.sleep(self.seconds_per_work * len(X) * sum((n + 1) * m for n, m in zip(arch.sizes, arch.sizes[1:])))
        return Reference().loss_and_gradients(arch, params, X, Y)
