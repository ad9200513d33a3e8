"""The well-behaved twin of every plug-in in the hostile gallery (tests/test_isolation.py): the
reference's answer, computed with numpy's errors ignored and warnings silenced, so that no global
setting a hostile sibling makes at import changes its own answers, only (if it crossed over)
what the judges compute."""

import warnings

import numpy as np

from chainrule.reference import Reference


class Polite:
    name = "polite"
    activations = ("identity", "relu", "sigmoid")  # few: few coverage cases, few shapes for JAX to compile
    losses = ("mse",)

    def loss_and_gradients(self, arch, params, X, Y):
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return Reference().loss_and_gradients(arch, params, X, Y)
