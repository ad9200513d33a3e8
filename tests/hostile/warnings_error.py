"""At import: every warning is an error."""

import warnings

from tests.hostile.twin import Polite as Backprop

warnings.simplefilter("error")
__all__ = ["Backprop"]
