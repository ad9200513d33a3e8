"""At import: every floating-point error raises (numpy's error state)."""

import numpy as np

from tests.hostile.twin import Polite as Backprop

np.seterr(all="raise")
__all__ = ["Backprop"]
