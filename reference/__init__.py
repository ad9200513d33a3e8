"""chainrule's from-scratch reference: the article's forward and backward passes in numpy."""

from . import layers
from .activations import ACTIVATIONS, Activation
from .architecture import ACTIVATION_NAMES, KINKED, LOSS_NAMES, Architecture
from .losses import LOSSES, Loss
from .network import Gradients, Layer, Reference, backward, forward, update

__all__ = [
    "ACTIVATIONS", "ACTIVATION_NAMES", "Activation", "Architecture", "Gradients", "KINKED",
    "LOSSES", "LOSS_NAMES", "Layer", "Loss", "Reference", "backward", "forward", "layers", "update",
]
