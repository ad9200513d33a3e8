"""chainrule proves neural-network gradients right.

The only names intended for users are these (``__all__``)::

    from chainrule import crosscheck, CheckFailure, Summary, Architecture, Reference
    from chainrule import architectures, cases, Case      # Hypothesis strategies for your own tests
    from chainrule import torch_function_layers, jax_custom_vjp_layers   # layer sources from framework functions

``crosscheck(impl, examples=200, seed=None)`` returns a ``Summary`` or raises ``CheckFailure``
(an ``AssertionError``) carrying the smallest counterexample. Names are loaded on first use,
so importing one subpackage (``chainrule.reports.html``, ``chainrule.oracles.torch_autograd``)
loads nothing else.
"""

from __future__ import annotations

import importlib

__version__ = "0.2.0"

_PUBLIC = {
    "crosscheck": "chainrule.search",
    "CheckFailure": "chainrule.search",
    "NoOracle": "chainrule.search",
    "Summary": "chainrule.search",
    "Architecture": "chainrule.reference",
    "Reference": "chainrule.reference",
    "Case": "chainrule.case",
    "architectures": "chainrule.strategies",
    "cases": "chainrule.strategies",
    "torch_function_layers": "chainrule.wrappers",
    "jax_custom_vjp_layers": "chainrule.wrappers",
}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'chainrule' has no attribute {name!r}")
    value = getattr(importlib.import_module(_PUBLIC[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
