"""A case: one question for a gradient source (a network, its parameters and a batch)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from chainrule.precision import Precision
from chainrule.reference import Architecture

__all__ = ["Case", "random_case", "work"]


def work(arch: Architecture, batch: int) -> int:
    """N x parameters: the multiply-adds of one forward pass, which the time of a call grows with."""
    return batch * arch.parameter_count


@dataclass(frozen=True)
class Case:
    """One question for a gradient source: a network, its parameters and a batch."""

    arch: Architecture
    params: list[tuple[np.ndarray, np.ndarray]]
    X: np.ndarray
    Y: np.ndarray

    @property
    def batch_size(self) -> int:
        return len(self.X)

    @property
    def work(self) -> int:
        """N x parameters (``work``)."""
        return work(self.arch, self.batch_size)

    def in_precision(self, precision: Precision) -> "Case":
        """The case with every value rounded to ``precision`` (itself when all are representable
        there): what a source declaring that precision is asked, so that its own rounding of the
        inputs never counts against it."""
        arrays = [a for pair in self.params for a in pair] + [self.X, self.Y]
        if all(precision.representable(a) for a in arrays):
            return self
        return Case(self.arch, [(precision.round(W), precision.round(b)) for W, b in self.params], precision.round(self.X), precision.round(self.Y))

    def describe(self) -> str:
        """Short label for messages and test ids: ``3-relu-2-identity-2:mse, N=1``."""
        return f"{self.arch}, N={self.batch_size}"

    def reproduction(self) -> str:
        """Copy-pastable Python that rebuilds this case."""
        rows = lambda a: repr(a.tolist())  # noqa: E731 - full float64 round-trip via repr
        params = ",\n    ".join(f"(np.array({rows(W)}), np.array({rows(b)}))" for W, b in self.params)
        return (
            "import numpy as np\n"
            "from chainrule import Architecture\n"
            f"arch = Architecture.parse({str(self.arch)!r})\n"
            f"params = [\n    {params},\n]\n"
            f"X = np.array({rows(self.X)})\n"
            f"Y = np.array({rows(self.Y)})\n"
        )


def random_case(arch, batch: int, seed: int) -> Case:
    """A case of the given architecture with random float64 values from ``seed``: W(l) ~ N(0, 1/fan-in),
    b ~ N(0, 0.01), X ~ N(0, 1); Y ~ N(0, 1) for mse, probability rows for cross_entropy, U(0, 1) for
    binary_cross_entropy."""
    rng = np.random.default_rng(seed)
    params = [(rng.standard_normal((m, n)) / np.sqrt(n), 0.1 * rng.standard_normal(m)) for n, m in zip(arch.sizes, arch.sizes[1:])]
    X = rng.standard_normal((batch, arch.sizes[0]))
    shape = (batch, arch.sizes[-1])
    if arch.loss == "cross_entropy":
        Y = rng.dirichlet(np.ones(shape[1]), size=batch)
    elif arch.loss == "binary_cross_entropy":
        Y = rng.random(shape)
    else:
        Y = rng.standard_normal(shape)
    return Case(arch, params, X, Y)
