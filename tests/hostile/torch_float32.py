"""At import: torch's default dtype is float32."""

import torch

from tests.hostile.twin import Polite as Backprop

torch.set_default_dtype(torch.float32)
__all__ = ["Backprop"]
