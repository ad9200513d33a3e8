"""The oracles chainrule knows, each loaded lazily so a missing framework only makes it unavailable."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import cache

from chainrule.oracles.base import OracleInfo

__all__ = ["Registered", "ORACLE_TARGETS", "registry", "available", "get"]

# name -> (framework, "module:Class"). Each class takes no arguments and has ``info`` and
# ``gradients(arch, params, X, Y) -> OracleGradients``.
ORACLE_TARGETS = {
    "torch": ("torch", "chainrule.oracles.torch_autograd:TorchAutograd"),
    "jax": ("jax", "chainrule.oracles.jax_grad:JaxGrad"),
    "finite_differences": ("numpy", "chainrule.oracles.finite_differences:FiniteDifferences"),
}


@dataclass(frozen=True)
class Registered:
    info: OracleInfo
    oracle: object | None  # None when unavailable


def _load(name: str, framework: str, target: str) -> Registered:
    module_name, _, attr = target.partition(":")
    try:
        oracle = getattr(importlib.import_module(module_name), attr)()
    except ImportError as error:
        reason = f"{framework} is not installed ({error})"
        return Registered(OracleInfo(name, framework, "", False, reason), None)
    return Registered(oracle.info, oracle)


@cache
def registry() -> tuple[Registered, ...]:
    """Every known oracle, available or not, in a fixed order."""
    return tuple(_load(name, framework, target) for name, (framework, target) in ORACLE_TARGETS.items())


def available(names: list[str] | None = None) -> list[Registered]:
    """The available oracles, optionally restricted to ``names`` (unknown names raise ValueError)."""
    if names is not None:
        unknown = sorted(set(names) - set(ORACLE_TARGETS))
        if unknown:
            raise ValueError(f"oracles: got {', '.join(unknown)}, known: {', '.join(ORACLE_TARGETS)}")
    return [r for r in registry() if r.info.available and (names is None or r.info.name in names)]


def get(name: str) -> Registered:
    for registered in registry():
        if registered.info.name == name:
            return registered
    raise ValueError(f"oracles: got {name!r}, known: {', '.join(ORACLE_TARGETS)}")
