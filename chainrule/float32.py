"""Whether a failure in float64 is float32's rounding: the diagnosis's float32 patterns.

Errors near 1e-7–1e-8 of the scale in an implementation judged in float64 have two usual causes,
each recognised on the failing case by re-judging its answer (``float32_pattern``), the most
specific first:

- one activation, loss or constant off by a float32 rounding: the answer agrees within float64's
  floors with the network where an activation's constant (leaky_relu's slope, gelu's sqrt 2)
  takes the value inferred from the answer by least squares (the gradient is smooth in it: one
  Gauss-Newton step from the contract's value), when that value is the constant (or its
  reciprocal) rounded to float32 (tag ``float32:NAME-constant``); or with the network where that
  one activation or the loss is evaluated in float32 (``float32:NAME``);
- float32 arithmetic, throughout or in parts no variant isolates: the answer agrees with the exact
  one within the noise floors of the article's formulas evaluated in float32 (chainrule.noise,
  inputs rounded as such code rounds them), and so do its answers on CONFIRMING more cases of
  the same network — tag ``float32:arithmetic``.

Either way the advice is the same: declare precision = "float32" if that is intended. The
variants are computed by the torch oracle (chainrule.oracles.torch_autograd: constants, in_float32);
without torch no float32 pattern is looked for.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from chainrule.case import Case, random_case
from chainrule.compare import compare
from chainrule.judge import least_squares
from chainrule.oracles.registry import Registered
from chainrule.precision import precision
from chainrule.sources.ask import answer
from chainrule.sources.faults import Fault
from chainrule.status import Status
from chainrule.tolerances import sensitivity

__all__ = ["Float32Pattern", "float32_pattern"]

CONFIRMING = 3  # more cases on which errors within float32's floors must stay within them
_STEP = 1e-4  # relative change of a constant for the least-squares direction: far above rounding, far below curvature
_ADVICE = 'declare precision = "float32" if that is intended'


@dataclass(frozen=True)
class Float32Pattern:
    tag: str  # "float32:arithmetic", "float32:sigmoid", "float32:leaky_relu-constant", ...
    sentence: str


def float32_pattern(implementation, case: Case, loss: float, grads, judges: list[Registered]) -> Float32Pattern | None:
    """The float32 pattern the implementation's answer (loss, grads) on ``case`` fits, or None
    (module docstring)."""
    torch = next((r for r in judges if r.info.name == "torch"), None)
    if torch is None:
        return None
    oracle, info = torch.oracle, torch.info
    from chainrule.oracles.torch_autograd import CONSTANTS

    exact = oracle.gradients(case.arch, case.params, case.X, case.Y)

    floors = sensitivity(case.arch, case.params, case.X, case.Y)
    agrees = lambda expected: compare(loss, grads, expected, info, floors).status is Status.AGREE  # noqa: E731
    names = dict.fromkeys(case.arch.activations)
    for name in names:
        if name in CONSTANTS:
            found = _constant(case, grads, oracle, name, CONSTANTS[name][:2], exact, agrees)
            if found is not None:
                return found
    for name in [*names, case.arch.loss]:
        if agrees(oracle.gradients(case.arch, case.params, case.X, case.Y, in_float32=frozenset([name]))):
            what = "the loss" if name == case.arch.loss else "the activation"
            return Float32Pattern(f"float32:{name}", f"{what} {name} is evaluated in float32 (everything else agrees in float64): {_ADVICE}")
    if _within_float32(implementation, case, loss, grads, torch):
        return Float32Pattern("float32:arithmetic", f"its errors are within float32's rounding (the noise floors of the article's formulas evaluated in float32 on this case): some or all of its arithmetic is float32; {_ADVICE}")
    return None


def _within_float32(implementation, case: Case, loss, grads, torch: Registered) -> bool:
    """The answer, and its answers on CONFIRMING more cases of the same network (random values,
    N >= 8), agree with the exact ones within float32's noise floors: a real bug whose error is
    as small as a rounding's on one case grows past them on another."""
    float32 = precision("float32")
    answers = [(case, loss, grads)]
    for seed in range(CONFIRMING):
        other = random_case(case.arch, max(case.batch_size, 8), seed)
        try:
            answers.append((other, *answer(implementation, other.arch, other.params, other.X, other.Y)))
        except Fault:
            return False
    for judged, got_loss, got_grads in answers:
        floors = sensitivity(judged.arch, judged.params, judged.X, judged.Y, float32)
        exact = torch.oracle.gradients(judged.arch, judged.params, judged.X, judged.Y)
        if floors.outside or compare(got_loss, got_grads, exact, torch.info, floors).status is not Status.AGREE:
            return False
    return True


def _constant(case: Case, grads, oracle, name: str, constant: tuple[str, float], exact, agrees) -> Float32Pattern | None:
    """The activation's constant inferred from the answer, when that value explains it and is the
    contract's value, or its reciprocal, rounded to float32 (a sqrt 2 divided by, or a 1/sqrt 2
    multiplied with)."""
    label, contract = constant
    step = _STEP * contract
    moved = oracle.gradients(case.arch, case.params, case.X, case.Y, constants={name: contract + step})
    value = least_squares(contract, step, exact.grads, moved.grads, grads)
    if not np.isfinite(value):
        return None
    for shown, label_, written in ((value, label, contract), (1.0 / value, f"1/{label}", 1.0 / contract)):
        as_float32 = float(np.float32(written))
        if abs(shown - as_float32) <= 0.05 * abs(written - as_float32) and agrees(
            oracle.gradients(case.arch, case.params, case.X, case.Y, constants={name: value})
        ):
            return Float32Pattern(
                f"float32:{name}-constant",
                f"{name} {label_} ≈ {shown:.10g} = float32({written:.10g}); the contract's is {written:.10g} "
                f"(everything else agrees in float64): {_ADVICE}",
            )
    return None
