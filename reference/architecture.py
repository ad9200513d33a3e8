"""The shape of a dense network: layer widths, one activation per layer, a loss.

An ``Architecture`` is the contract's ``arch`` object, validated on construction and
written compactly as ``3-relu-2-identity-2:mse`` (widths and activations alternate,
input width first, loss after the colon).
"""

from __future__ import annotations

from dataclasses import dataclass

from chainrule.contract import ACTIVATION_NAMES, KINKED, LOSS_NAMES, REQUIRED_OUTPUT

__all__ = ["ACTIVATION_NAMES", "LOSS_NAMES", "KINKED", "REQUIRED_OUTPUT", "Architecture"]


@dataclass(frozen=True)
class Architecture:
    """Layer widths (input first), one activation per non-input layer, and a loss."""

    sizes: tuple[int, ...]
    activations: tuple[str, ...]
    loss: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "sizes", tuple(self.sizes))
        object.__setattr__(self, "activations", tuple(self.activations))
        if len(self.sizes) < 2:
            raise ValueError(f"sizes: got {self.sizes!r}, need at least two widths (input and output)")
        for width in self.sizes:
            if isinstance(width, bool) or not isinstance(width, int) or width < 1:
                raise ValueError(f"sizes: got width {width!r} in {self.sizes!r}, widths must be integers >= 1")
        if len(self.activations) != len(self.sizes) - 1:
            raise ValueError(
                f"activations: got {len(self.activations)} for sizes {self.sizes!r}, "
                f"need exactly {len(self.sizes) - 1} (one per non-input layer)"
            )
        for name in self.activations:
            if name not in ACTIVATION_NAMES:
                raise ValueError(f"activations: got {name!r}, allowed: {', '.join(ACTIVATION_NAMES)}")
        if "softmax" in self.activations[:-1]:
            raise ValueError(f"activations: got softmax in hidden layer of {self.activations!r}, softmax is allowed on the output layer only")
        if self.loss not in LOSS_NAMES:
            raise ValueError(f"loss: got {self.loss!r}, allowed: {', '.join(LOSS_NAMES)}")
        required = REQUIRED_OUTPUT.get(self.loss)
        if required and self.activations[-1] != required:
            raise ValueError(
                f"loss: got {self.loss!r} after a {self.activations[-1]!r} output layer, "
                f"{self.loss} requires a {required!r} output layer"
            )

    @property
    def depth(self) -> int:
        """Number of layers with parameters."""
        return len(self.activations)

    @property
    def parameter_count(self) -> int:
        return sum((n_in + 1) * n_out for n_in, n_out in zip(self.sizes, self.sizes[1:]))

    def __str__(self) -> str:
        parts = [str(self.sizes[0])]
        for activation, width in zip(self.activations, self.sizes[1:]):
            parts += [activation, str(width)]
        return "-".join(parts) + ":" + self.loss

    @classmethod
    def parse(cls, text: str) -> "Architecture":
        """Inverse of ``str``: ``"3-relu-2-identity-2:mse"`` -> Architecture."""
        layers, sep, loss = text.strip().partition(":")
        if not sep:
            raise ValueError(f"architecture: got {text!r}, expected WIDTH-ACTIVATION-WIDTH...:LOSS, e.g. 3-relu-2-identity-2:mse")
        parts = layers.split("-")
        if len(parts) < 3 or len(parts) % 2 == 0:
            raise ValueError(f"architecture: got {text!r}, expected widths and activations alternating, e.g. 3-relu-2-identity-2:mse")
        try:
            sizes = tuple(int(p) for p in parts[0::2])
        except ValueError:
            raise ValueError(f"sizes: got {parts[0::2]!r} in {text!r}, widths must be integers >= 1") from None
        return cls(sizes, tuple(parts[1::2]), loss)
