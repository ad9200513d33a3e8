"""The article's worked example: inputs and parameters as the article gives them.

Three inputs, one relu hidden layer of two neurons, an identity output of two, mse, and a
training set of one example x = (4, 7, 0.85), y = (0.9, 0.8). W(l)[j, i] is the article's w_ji(l).
Only the inputs live here; every number derived from them is computed, never typed.
"""

from __future__ import annotations

import numpy as np

from .architecture import Architecture

__all__ = ["ARCH", "PARAMS", "X", "Y", "ALPHA"]

ARCH = Architecture((3, 2, 2), ("relu", "identity"), "mse")
PARAMS = [
    (np.array([[0.1, 0.2, -0.1], [-0.2, 0.1, 0.3]]), np.array([0.1, -0.1])),
    (np.array([[0.2, -0.1], [0.1, 0.2]]), np.array([0.05, 0.1])),
]
X = np.array([[4.0, 7.0, 0.85]])
Y = np.array([[0.9, 0.8]])
ALPHA = 0.01
