"""chainrule's judges: ``crosscheck`` a gradient source against every available oracle.

    from oracles import crosscheck
    summary = crosscheck(my_backprop, examples=200)   # AssertionError (CheckFailure) on a disagreement

Importing this package imports numpy and Hypothesis, never torch or jax: each oracle's
framework is imported only when the registry first loads it.
"""

# Bound eagerly on purpose: were the names looked up lazily, importing the submodule
# ``oracles.crosscheck`` first would leave the package attribute ``crosscheck`` bound to that
# module instead of the function.
from .crosscheck import CheckFailure, Summary, crosscheck

__all__ = ["crosscheck", "CheckFailure", "Summary"]
