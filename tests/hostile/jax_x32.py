"""At import: JAX's 64-bit mode is off."""

import jax

from tests.hostile.twin import Polite as Backprop

jax.config.update("jax_enable_x64", False)
__all__ = ["Backprop"]
