"""The judges of the layer contract (docs/layers.md): independent vector-Jacobian products.

    torch_vjp.py           torch.nn.functional in float64, torch.autograd.grad
    jax_vjp.py             jax.nn / jax.numpy in float64 on the CPU, jax.vjp (x64 inside the call only)
    finite_differences.py  a numpy forward, central differences with Richardson refinement and an
                           error estimate per entry (inf across a kink)

An exact judge answers ``vjp(layer, config, inputs, dy) -> (y, grads)``; finite differences
answer ``vjp(...) -> (y, grads, errors)``. No judge imports the reference or the engine, and
importing this package imports neither torch nor JAX: ``judges()`` loads each on first use, and
a missing framework makes its judge unavailable, never an error.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

__all__ = ["JUDGE_TARGETS", "Judge", "available", "judges"]

# name -> (framework, module, exact): each module has vjp(layer, config, inputs, dy).
JUDGE_TARGETS = {
    "torch": ("torch", "chainrule.oracles.layers.torch_vjp", True),
    "jax": ("jax", "chainrule.oracles.layers.jax_vjp", True),
    "finite_differences": ("numpy", "chainrule.oracles.layers.finite_differences", False),
}


@dataclass(frozen=True)
class Judge:
    """One judge: its vjp (None when unavailable), its framework's version, exact or approximate."""

    name: str
    vjp: Callable | None
    version: str
    exact: bool
    reason: str = ""  # why it is unavailable
    compiled: Callable | None = None  # (layer, config, inputs, dy) -> bool: a question it answers without compiling first (JAX)

    def cheap(self, layer: str, config: dict, inputs: dict, dy) -> bool:
        """Whether asking costs about what the rest of a case costs (a judge that compiles per shape: only once compiled)."""
        return self.compiled is None or self.compiled(layer, config, inputs, dy)

    @property
    def available(self) -> bool:
        return self.vjp is not None


def _load(name: str, framework: str, module: str, exact: bool) -> Judge:
    try:
        loaded = importlib.import_module(module)
    except ImportError as error:
        return Judge(name, None, "", exact, f"{framework} is not installed ({error})")
    return Judge(name, loaded.vjp, importlib.import_module(framework).__version__, exact, compiled=getattr(loaded, "compiled", None))


@cache
def judges() -> tuple[Judge, ...]:
    """Every judge, available or not, in a fixed order: the exact ones first."""
    return tuple(_load(name, *target) for name, target in JUDGE_TARGETS.items())


def available() -> list[Judge]:
    """The judges that can answer here."""
    return [judge for judge in judges() if judge.available]
