"""What is wrong, not only that something is: the pattern behind a failing verdict.

A failing verdict lists the gradient entries that disagree. ``diagnose`` says
- where: the tensors that disagree, from the output layer back, and the first wrong layer,
  which names the backward step to suspect;
- how: one constant factor got/expected over every wrong entry (2, 1/2, N, 1/N, -1, ...),
  a square tensor transposed, zeros where the oracles have values;
- when: it re-judges variations of the counterexample and records which make the disagreement
  disappear: the same case asked again (an answer that depends on earlier calls), each example
  alone (batch > 1), kinked units nudged off 0 either way (kink), one activation swapped for
  identity and for a smooth one (activation:NAME; sigma_prime when only identity agrees), the
  loss swapped (loss:NAME), the output layer alone (depth >= 2), square weights made symmetric
  (a W^T where W belongs). A variation that makes it break the contract is reported as a fault;
- at which size: when the failure shows on generic values (random_case, a few seeds tried),
  each size s >= 3 of the counterexample (N, the depth, a layer's width) is re-judged at s - 1,
  s + 1, 2(s - 1) and 2(s - 1) + 1 within the search's bounds, and the pattern named: a
  threshold ("fails when N > 4", "fails from depth 6", tag ``size:N>4``) or the edge of a tile,
  chunk or vector ("fails when layer 1 has more than 8 inputs and not a multiple of 8: 9 and 17
  fail, 8 and 16 agree", tags ``size:inputs>8`` and ``size:inputs%8``). chainrule.reduce
  leaves s the smallest size that fails;
- which oracles side with whom: kink conventions (listed as conventions, not failures),
  finite differences without evidence at a kink, and Richardson re-estimates.

A shrunk counterexample is degenerate by design: values shrink to 0, so many tensors agree
only because both sides are 0, and a swapped activation can agree by accident at z = 0. So the
same network and batch is first re-judged on generic values. When it fails there too, that
verdict is the evidence and the variations start from it; when it does not, the failure needs
the counterexample's own values (a kink, say), and the variations start from those.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from chainrule.case import Case, random_case
from chainrule.compare import Comparison
from chainrule.contract import KINK_DERIVATIVES, REQUIRED_OUTPUT
from chainrule.float32 import Float32Pattern, float32_pattern
from chainrule.judge import judge, sized_judges
from chainrule.kinks import rounding_ambiguous
from chainrule.oracles.registry import available, get
from chainrule.reference import KINKED, Architecture, forward
from chainrule.sources.load import as_implementation
from chainrule.status import Status
from chainrule.verdict import CaseVerdict

__all__ = ["Diagnosis", "diagnose"]

NUDGE = 1e-3  # moves a kinked z off 0 by far more than a finite-difference step (~6e-6)
SEED = 0  # generic values are drawn reproducibly
RATIO_RTOL = 1e-6  # wrong entries share one factor when their ratios got/expected agree this closely
MAX_DENOMINATOR = 16  # a factor is named when it is p/q with |p|, q <= 16 (2, 1/2, -1, 3/4, ...)
GONE, STAYS = "disappears", "still disagrees"


@dataclass(frozen=True)
class Diagnosis:
    """Machine tags (``factor:1/N``, ``batch>1``, ``layer:2``, ...), a sentence or two, and details."""

    patterns: tuple[str, ...]
    summary: str
    lines: tuple[str, ...] = ()

    def __str__(self) -> str:
        return "\n".join([self.summary, *(f"  {line}" for line in self.lines)])


# --- variations of a case --------------------------------------------------------------------


def _generic(case: Case) -> Case:
    """The same network and targets with random values (chainrule.case.random_case)."""
    return dataclasses.replace(random_case(case.arch, case.batch_size, SEED), Y=case.Y)


def _alone(case: Case) -> list[Case]:
    return [Case(case.arch, case.params, case.X[k : k + 1], case.Y[k : k + 1]) for k in range(case.batch_size)]


def _kinks(case: Case) -> list[tuple[int, int]]:
    """(layer, unit) of every relu/leaky_relu unit whose z is exactly 0 for some example; layers from 1."""
    cache = forward(case.arch, case.params, case.X)
    return [
        (l, int(j))
        for l, (name, layer) in enumerate(zip(case.arch.activations, cache), 1)
        if name in KINKED
        for j in np.flatnonzero((layer.z == 0).any(axis=0))
    ]


def _nudged(case: Case, sign: float) -> Case:
    """Each kinked unit's bias moved by sign * NUDGE, layer by layer (a nudge moves the z below it)."""
    params = [(W, b.copy()) for W, b in case.params]
    for l, name in enumerate(case.arch.activations):
        if name in KINKED:
            z = forward(case.arch, params, case.X)[l].z
            params[l][1][(z == 0).any(axis=0)] += sign * NUDGE
    return Case(case.arch, params, case.X, case.Y)


def _swapped(case: Case, name: str, to: str) -> Case:
    """Every ``name`` layer made ``to``; a loss that needs the old output activation becomes mse."""
    activations = tuple(to if a == name else a for a in case.arch.activations)
    loss = case.arch.loss if REQUIRED_OUTPUT.get(case.arch.loss, activations[-1]) == activations[-1] else "mse"
    return Case(Architecture(case.arch.sizes, activations, loss), case.params, case.X, case.Y)


def _other_loss(case: Case) -> Case | None:
    """The same network under another loss its output allows (targets made valid for it)."""
    arch, Y = case.arch, case.Y
    if arch.loss != "mse":
        loss = "mse"
    elif arch.activations[-1] == "softmax":
        loss, Y = "cross_entropy", np.abs(Y)
        Y[Y.sum(axis=1) == 0, 0] = 1.0
        Y = Y / Y.sum(axis=1, keepdims=True)
    elif arch.activations[-1] == "sigmoid":
        loss, Y = "binary_cross_entropy", np.clip(Y, 0.0, 1.0)
    else:
        return None
    return Case(Architecture(arch.sizes, arch.activations, loss), case.params, case.X, Y)


def _output_alone(case: Case) -> Case:
    """The output layer alone, fed the activations it saw in the whole network."""
    A = forward(case.arch, case.params, case.X)[-2].a
    arch = Architecture(case.arch.sizes[-2:], case.arch.activations[-1:], case.arch.loss)
    return Case(arch, case.params[-1:], A, case.Y)


def _symmetrised(case: Case) -> Case | None:
    """Every square W (n >= 2) replaced by (W + W^T)/2: a W^T used for W no longer shows."""
    square = [W.shape[0] == W.shape[1] > 1 for W, _ in case.params]
    params = [((W + W.T) / 2 if s else W, b) for (W, b), s in zip(case.params, square)]
    return Case(case.arch, params, case.X, case.Y) if any(square) else None


def _rejudge(implementation, cases: list[Case], judges) -> list[CaseVerdict] | str:
    """Verdicts on the cases, or why they cannot be had."""
    if any(not implementation.supports(c.arch) for c in cases):
        return "not run (outside what it declares it supports)"
    cases = [c.in_precision(implementation.precision) for c in cases]
    if any(rounding_ambiguous(c.arch, c.params, c.X, implementation.precision) for c in cases):
        return "not run (a kink within rounding of 0)"
    verdicts = []
    try:
        for c in cases:
            verdicts.append(judge(implementation, c, sized_judges(c, judges)))
            if verdicts[-1].outside:
                return f"not run (outside the chain rule's domain: {verdicts[-1].outside})"
            if verdicts[-1].fault is not None and getattr(verdicts[-1].fault, "fatal", False):
                break  # it can no longer be asked
    except Exception as error:  # a diagnosis must never hide the failure it explains
        return f"not run ({type(error).__name__}: {error})"
    return verdicts


def _outcome(result: list[CaseVerdict] | str) -> str:
    if isinstance(result, str):
        return result
    faults = [v.fault for v in result if v.fault is not None]
    if faults:
        return f"fault ({faults[0].kind}): {faults[0].message}"
    if any(v.failed for v in result):
        return STAYS
    return GONE if any(v.status is not Status.NO_EVIDENCE for v in result) else "no evidence"


# --- the pattern of one failing comparison ---------------------------------------------------


def _primary(verdict: CaseVerdict, infos) -> Comparison | None:
    """The disagreeing comparison to read: an exact oracle's when there is one."""
    disagreeing = [c for c in verdict.comparisons if c.status is Status.DISAGREE]
    return next((c for c in disagreeing if infos[c.oracle].exact), disagreeing[0] if disagreeing else None)


def _loss_wrong(c: Comparison, infos) -> bool:
    return not c.loss_agrees


def _wrong_entries(c: Comparison, infos) -> tuple[np.ndarray, np.ndarray]:
    """(got, expected) over every entry beyond tolerance, and the loss when it is wrong."""
    pairs = [(t.got[i], t.expected[i]) for t in c.disagreeing for i in t.bad]
    pairs += [(c.loss_got, c.loss_expected)] if _loss_wrong(c, infos) else []
    got, want = zip(*pairs) if pairs else ((), ())
    return np.array(got, dtype=float), np.array(want, dtype=float)


def _ratio(got: np.ndarray, want: np.ndarray) -> float | None:
    """The one factor r with got = r * expected over every wrong entry, if there is one."""
    if not len(got) or (want == 0).any() or (got == 0).any():
        return None
    r = got / want
    return float(np.median(r)) if np.ptp(r) <= RATIO_RTOL * np.abs(r).max() else None


def _factor_name(r: float, N: int, per_example: bool) -> str | None:
    """``N``/``1/N`` when r is the batch size (or its inverse) and it goes with one example at a time;
    else a small fraction (``2``, ``1/2``, ``-1``, ``3/4``), or None when r is not simple, or 1
    (errors a millionth of the values, such as a float32 rounding's, are no factor)."""
    if per_example and N > 1 and abs(r - N) <= RATIO_RTOL * N:
        return "N"
    if per_example and N > 1 and abs(r * N - 1) <= RATIO_RTOL:
        return "1/N"
    fraction = Fraction(r).limit_denominator(MAX_DENOMINATOR)
    simple = abs(float(fraction) - r) <= RATIO_RTOL * abs(r) and abs(fraction.numerator) <= MAX_DENOMINATOR
    return str(fraction) if simple and fraction != 1 else None


def _transposed(c: Comparison) -> bool:
    return any(
        t.got.ndim == 2 and t.got.shape[0] == t.got.shape[1] > 1 and np.allclose(t.got, t.expected.T, rtol=1e-6, atol=1e-12 * t.scale)
        for t in c.disagreeing
    )


def _evidenced(t) -> bool:
    """Agrees on values that are not all 0 (a tensor 0 on both sides proves nothing)."""
    return t.agrees and bool(t.expected[t.trusted].any())


def _tensor_state(t) -> str:
    if not t.agrees:
        return f"wrong ({len(t.bad)} of {t.compared})"
    return "agrees" if _evidenced(t) else "0 on both sides (no evidence)"


def _layers(c: Comparison) -> str:
    by_layer = sorted({t.layer for t in c.tensors}, reverse=True)
    return "; ".join(
        f"layer {l}: " + ", ".join(f"d{t.kind} {_tensor_state(t)}" for t in c.tensors if t.layer == l) for l in by_layer
    )


def _only(c: Comparison) -> str | None:
    """``W`` or ``b`` when only that kind disagrees and the other kind agrees somewhere on real values."""
    kinds = {t.kind for t in c.disagreeing}
    if len(kinds) == 1 and any(_evidenced(t) for t in c.tensors if t.kind not in kinds):
        return kinds.pop()
    return None


def _suspect(c: Comparison, arch: Architecture, loss_wrong: bool) -> tuple[int | None, str]:
    """The first wrong layer from the output, and the step of the article to suspect."""
    wrong = c.disagreeing
    if not wrong:
        return None, "the loss value (the forward pass or the loss formula)"
    first, L, only = wrong[0].layer, arch.depth, _only(c)
    if loss_wrong:
        return first, "the forward pass: the loss value itself differs (an activation sigma or the loss formula)"
    if only == "b":
        return first, "db = dZ^T 1 (only bias gradients are wrong; the weight gradients agree)"
    if only == "W":
        return first, "dW = dZ^T A_prev (only weight gradients are wrong; the bias gradients agree)"
    if first == L:
        return first, f"the output step: dZ(layer {L}) from the {arch.loss} loss through sigma' of {arch.activations[-1]}"
    above = f"layers {first + 1}..{L} agree" if first + 1 < L else f"layer {L} agrees"
    return first, (
        f"{above}, everything from layer {first} back is wrong: the step from layer {first + 1} to layer {first} "
        f"(dA = dZ W(layer {first + 1}), or sigma' of layer {first}, {arch.activations[first - 1]})"
    )


def _suspect_activations(c: Comparison, arch: Architecture, first: int | None) -> list[str]:
    """Activations whose sigma or sigma' could explain it: at or below the first wrong layer, or in a
    layer above it whose tensors agree only on zeros (a wrong sigma' of layer l shows from layer l back)."""
    evidenced = {t.layer for t in c.tensors if _evidenced(t)}
    layers = [l for l in range(1, arch.depth + 1) if first is None or l <= first or l not in evidenced]
    return list(dict.fromkeys(arch.activations[l - 1] for l in layers if arch.activations[l - 1] != "identity"))


# --- at which size --------------------------------------------------------------------------

SIZE_PROBED = 3  # sizes of 1 and 2 are what the other variations explain (one example, a 2 x 2 W, two outputs)
SIZE_SEEDS = (SEED, 1, 2, 3)  # generic values tried for a network and batch that fail on them


def _axes(case: Case) -> list[tuple[str, int]]:
    """The sizes of the case worth probing: ("N", N), ("depth", L), ("width:m", units of layer m)."""
    axes = [("N", case.batch_size), ("depth", case.arch.depth)] + [(f"width:{m}", w) for m, w in enumerate(case.arch.sizes)]
    return [(axis, size) for axis, size in axes if size >= SIZE_PROBED]


def _failing_seed(implementation, case: Case, judges) -> int | None:
    """A seed of random_case on which the case's network and batch fail too (generic values; a
    relu unit dead on one draw may be alive on the next), or None: sizes are probed on it."""
    for seed in SIZE_SEEDS:
        verdicts = _rejudge(implementation, [random_case(case.arch, case.batch_size, seed)], judges)
        if _outcome(verdicts) == STAYS:
            return seed
    return None


def _resized(case: Case, axis: str, size: int, seed: int) -> Case | None:
    """The case's network and batch with one size changed, on generic values: the depth by its last
    hidden layers removed or the last one repeated."""
    sizes, names, n = list(case.arch.sizes), list(case.arch.activations), case.batch_size
    if axis == "N":
        n = size
    elif axis == "depth":
        while len(names) > size:
            del sizes[-2], names[-2]
        while len(names) < size:
            sizes.insert(-1, sizes[-2])
            names.insert(-1, names[-2])
    else:
        sizes[int(axis.partition(":")[2])] = size
    try:
        return random_case(Architecture(tuple(sizes), tuple(names), case.arch.loss), n, seed)
    except ValueError:
        return None


def _words(numbers: list[int]) -> str:
    return " and ".join([", ".join(map(str, numbers[:-1])), str(numbers[-1])] if len(numbers) > 1 else map(str, numbers))


def _size_pattern(implementation, case: Case, judges, axis: str, s: int, limits, seed: int) -> tuple[list[str], str, list[str]]:
    """(tags, clause, lines) for one size s of a case that fails on generic values of ``seed``:
    s - 1, s + 1, 2(s - 1) and 2(s - 1) + 1 re-judged (within ``limits``; a size agrees when it
    agrees on every seed of SIZE_SEEDS), and a threshold or the edge of a multiple of s - 1 named
    when the outcomes fit one."""
    L, t = case.arch.depth, s - 1
    limit = None if limits is None else {"N": limits.batch, "depth": limits.depth}.get(axis, limits.width)
    if axis == "N":
        tag, label, more = "N", "N = {}", "N > {}"
    elif axis == "depth":
        tag, label, more = "depth", "depth {}", "from depth {}"
    else:
        m = int(axis.partition(":")[2])
        tag, label, more = (
            ("inputs", "{} inputs", "layer 1 has more than {} inputs") if m == 0
            else ("outputs", "{} outputs", "the output layer has more than {} units") if m == L
            else (f"layer{m}", f"{{}} units in hidden layer {m}", f"hidden layer {m} has more than {{}} units")
        )
    fails, lines = {s: True}, []
    for size in sorted({t, s + 1, 2 * t, 2 * t + 1} - {s}):
        if size < 1 or (limit is not None and size > limit):
            continue
        outcome = "not run"
        for tried in dict.fromkeys((seed, *SIZE_SEEDS)):  # failing on one draw of generic values is enough
            resized = _resized(case, axis, size, tried)
            outcome = _outcome(_rejudge(implementation, [resized], judges)) if resized is not None else "not run"
            if outcome != GONE:
                break
        lines.append(f"variation: {label.format(size)} (generic values): {outcome}")
        if outcome in (GONE, STAYS):
            fails[size] = outcome == STAYS
    failing = sorted(k for k, f in fails.items() if f)
    agreeing = sorted(k for k, f in fails.items() if not f)
    seen = f": {_words(failing)} fail, {_words(agreeing)} agree{'s' if len(agreeing) == 1 else ''}" if agreeing else ""
    threshold = (more.format(t + 1) if axis == "depth" else more.format(t))
    if fails.get(t) is False and all(fails[k] for k in fails if k > t):
        return [f"size:{tag}>{t}"], (f"it fails {threshold}" if axis == "depth" else f"it fails when {threshold}") + seen, lines
    if fails.get(t) is False and fails.get(2 * t) is False and fails.get(2 * t + 1) and all(fails[k] for k in fails if t < k < 2 * t):
        what = f"the depth is above {t} and not a multiple of {t}" if axis == "depth" else f"{threshold} and not a multiple of {t}"
        return [f"size:{tag}>{t}", f"size:{tag}%{t}"], f"it fails when {what}{seen}", lines
    return [], "", lines


# --- the oracles among themselves ------------------------------------------------------------


def _oracle_lines(verdict: CaseVerdict, primary: Comparison, infos, kinked: set[str]) -> tuple[list[str], bool]:
    """How each oracle sided, conventions at the kinks, Richardson refinement; and whether a convention showed."""
    lines, convention = [], False
    against = [c.oracle for c in verdict.comparisons if c.status is Status.DISAGREE]
    lines.append(f"oracles that disagree with it: {', '.join(against)}")
    for c in verdict.comparisons:
        own = {n: d for n in kinked if (d := infos[c.oracle].kink_derivatives.get(n)) is not None and d != KINK_DERIVATIVES[n]}
        words = ", ".join(f"{n}'(0) = {d:g} (the contract's is {KINK_DERIVATIVES[n]:g})" for n, d in own.items())
        if c.status is Status.CONVENTION:
            convention = True
            lines.append(f"{c.oracle} differs only by its convention at the kink, {words}: a convention, not a failure")
        elif c.status is Status.AGREE and own:
            convention = True
            lines.append(f"{c.oracle} agrees with it, through its own convention at the kink, {words}, not the contract's")
        elif c.status is Status.AGREE:
            mine = {t.tensor: t for t in c.tensors}
            blind = [t.name for t in primary.disagreeing if any(not mine[t.tensor].trusted[i] for i in t.bad)]
            if blind:
                lines.append(f"{c.oracle} agrees, but has no evidence at the disputed entries of {', '.join(blind)} (its step crosses a kink)")
        if c.note and not c.note.startswith("0 "):
            side = "the implementation" if c.status is not Status.DISAGREE else "the other oracles, against the implementation"
            lines.append(f"{c.oracle}: {c.note}; the refined estimate sides with {side}")
    return lines, convention


# --- the diagnosis ---------------------------------------------------------------------------


def _experiments(implementation, case: Case, base: Case, judges, kinks: bool) -> dict[str, tuple[str, list[CaseVerdict] | str]]:
    """Variation key -> (what was varied, its verdicts or why there are none)."""
    results = {}

    def run(key: str, label: str, cases: list[Case | None]) -> None:
        retired = any(getattr(v.fault, "fatal", False) for _, r in results.values() if not isinstance(r, str) for v in r)
        if cases and all(c is not None for c in cases):
            results[key] = (label, "not run (it can no longer be asked)" if retired else _rejudge(implementation, cases, judges))

    arch = base.arch
    run("repeat", "the counterexample asked again", [case])
    if base.batch_size > 1:
        run("batch>1", f"each of the {base.batch_size} examples alone", _alone(base))
    if kinks:
        run("kink+", f"kinked units nudged to z = +{NUDGE:g}", [_nudged(base, +1.0)])
        run("kink-", f"kinked units nudged to z = -{NUDGE:g}", [_nudged(base, -1.0)])
    for name in dict.fromkeys(a for a in arch.activations if a != "identity"):
        for to in ("identity", _alternative(name)):
            swapped = _swapped(base, name, to)
            change = f" (loss {swapped.arch.loss})" if swapped.arch.loss != arch.loss else ""
            run(f"{name}->{to}", f"{name} replaced by {to}{change}", [swapped])
    other = _other_loss(base)
    if other is not None:
        run("loss", f"loss {arch.loss} replaced by {other.arch.loss}", [other])
    if arch.depth > 1:
        run("depth>=2", "the output layer alone, fed the activations it saw", [_output_alone(base)])
    run("transposed", "every square W made symmetric", [_symmetrised(base)])
    return results


def _alternative(name: str) -> str:
    """A smooth nonlinear activation to put in place of ``name``."""
    return "sigmoid" if name == "tanh" else "tanh"


def _conditions(results, gone: set[str], base: Case, suspects: list[str]) -> tuple[list[str], list[str], list[str]]:
    """Tags; sentences to read first (a fault, an answer that depends on earlier calls); and
    clauses for what the disagreement needs: the variations that make it disappear."""
    patterns, leads, clauses = [], [], []
    faults = [v.fault for _, result in results.values() if not isinstance(result, str) for v in result if v.fault is not None]
    if faults:
        patterns += ["fault", f"fault:{faults[0].kind}"]
        leads.append(f"Asked again on a variation, it breaks the contract: {faults[0].kind} ({faults[0].message}).")
    if "repeat" in gone:
        patterns.append("irreproducible")
        leads.append("Asked the same case again, it agrees: its answer depends on earlier calls.")
    for key, clause in (
        ("batch>1", "it needs a batch of more than one example (each example alone agrees)"),
        ("depth>=2", "it needs depth >= 2 (the output layer alone agrees)"),
    ):
        if key in gone:
            patterns.append(key)
            clauses.append(clause)
    if {"kink+", "kink-"} <= gone:
        patterns.append("kink")
        clauses.append("it appears only at an exact kink (nudged off z = 0 either way, it agrees)")
    elif len({"kink+", "kink-"} & gone) == 1:
        side = "+" if "kink+" in gone else "-"
        patterns.append("near-kink")
        clauses.append(f"at the kink it agrees only when nudged to z = {side}{NUDGE:g}: a threshold near 0, not the value at 0")
    arch = base.arch
    for name in suspects:
        swapped = _swapped(base, name, "identity")
        if f"{name}->identity" not in gone or ("loss" in gone and swapped.arch.loss != arch.loss):
            continue  # not gone, or gone only because the loss had to change with it
        patterns.append(f"activation:{name}")
        if f"{name}->{_alternative(name)}" in gone:
            clauses.append(f"it needs {name} (replaced by identity or {_alternative(name)}, it agrees)")
        else:
            patterns.append("sigma_prime")
            clauses.append(f"it needs a nonlinear activation where {name} is (identity agrees, {_alternative(name)} does not): sigma' is mishandled")
    if "loss" in gone:
        patterns.append(f"loss:{arch.loss}")
        clauses.append(f"it needs the {arch.loss} loss ({_other_loss(base).arch.loss} agrees)")
    return patterns, leads, clauses


def _shape(c: Comparison, infos, N: int, gone: set[str]) -> tuple[list[str], str, list[str]]:
    """Tags, a phrase and detail lines for how the wrong entries relate to the expected ones."""
    got, want = _wrong_entries(c, infos)
    r = _ratio(got, want)
    patterns, phrases, lines = [], [], []
    if r is not None:
        lines.append(f"got/expected = {r:.6g} on " + ("the one wrong value" if len(got) == 1 else f"every one of the {len(got)} wrong values"))
        name = _factor_name(r, N, "batch>1" in gone)
        if name is not None:
            patterns += [f"factor:{name}"] + (["sign"] if r < 0 else [])
            phrases.append(f"by one constant factor {name} (got = {name} x expected{f', N = {N}' if 'N' in name else ''})")
    elif len(got) and not got.any():
        patterns.append("zero")
        phrases.append("as zeros where the oracles have values")
    transposed = _transposed(c)
    if transposed:
        phrases.append("as the transpose of what is expected (got = expected^T in a square tensor)")
    elif "transposed" in gone:
        phrases.append("as if a W^T stood where W belongs (with every square W symmetric, it agrees)")
    patterns += ["transposed"] if transposed or "transposed" in gone else []
    return patterns, " and ".join(phrases), lines


def diagnose(implementation, verdict: CaseVerdict, judges=None, limits=None) -> Diagnosis:
    """What the failing ``verdict`` of ``implementation`` most likely means (docs/directional.md).
    ``limits`` (strategies.Sizes): the largest width, N and depth it may be asked about."""
    implementation = as_implementation(implementation)
    judges = available() if judges is None else judges
    infos = {r.info.name: r.info for r in judges}
    infos |= {c.oracle: get(c.oracle).info for c in verdict.comparisons if c.oracle not in infos}
    case = verdict.case
    if verdict.fault is not None:
        kind = verdict.fault.kind
        return Diagnosis(("fault", f"fault:{kind}"), f"It breaks the contract before any gradient is judged: {kind} ({verdict.fault.message}).")
    primary = _primary(verdict, infos)
    if primary is None:
        return Diagnosis((), "No oracle disagrees with it on this case: nothing to diagnose.")

    generic = _rejudge(implementation, [_generic(case)], judges)
    generic_fails = not isinstance(generic, str) and generic[0].failed and generic[0].fault is None
    base, main = (generic[0].case, _primary(generic[0], infos)) if generic_fails else (case, primary)
    kinks = _kinks(case)
    lines = [f"on the counterexample ({primary.oracle}), from the output back: {_layers(primary)}"]
    if generic_fails:
        lines.append(f"on generic values (same network and batch, random parameters and inputs; it fails there too): {_layers(main)}")
    else:
        lines.append(f"on generic values (same network and batch, random parameters and inputs): {_outcome(generic)}; the failure needs this case's values")
    oracle_lines, convention = _oracle_lines(verdict, primary, infos, {case.arch.activations[l - 1] for l, _ in kinks})
    lines += oracle_lines
    if kinks:
        lines.append("exact kinks (z = 0): " + ", ".join(f"layer {l} unit {j} ({case.arch.activations[l - 1]})" for l, j in kinks))

    results = _experiments(implementation, case, base, judges, kinks=bool(kinks) and not generic_fails)
    if not isinstance(generic, str):
        results["generic"] = ("generic values", generic)
    gone = {key for key, (_, result) in results.items() if _outcome(result) == GONE}
    lines += [f"variation: {label}: {_outcome(result)}" for key, (label, result) in results.items() if key != "generic"]
    probe_seed = _failing_seed(implementation, case, judges) if _axes(case) else None
    sized = [_size_pattern(implementation, case, judges, axis, size, limits, probe_seed) for axis, size in _axes(case)] if probe_seed is not None else []
    lines += [line for _, _, probed in sized for line in probed]

    first, step = _suspect(main, base.arch, _loss_wrong(main, infos))
    shape, how, shape_lines = _shape(main, infos, base.batch_size, gone)
    rounding = _float32(implementation, base, main, judges)
    if rounding is not None:
        leads = [f"Float32 rounding: {rounding.sentence}."]
        patterns = [rounding.tag]
    else:
        leads, patterns = [], []
    when, conditioned, clauses = _conditions(results, gone, base, _suspect_activations(main, base.arch, first))
    leads += conditioned
    only = _only(main)
    patterns += shape + (["loss-value"] if first is None else [f"only:d{only}"] if only else []) + ([f"layer:{first}"] if first else [])
    patterns += when + (["convention"] if convention else [])
    named = {tag.split(">")[0] for tags, _, _ in sized for tag in tags}
    clauses = [c for c in clauses if not ("size:N" in named and c.startswith("it needs a batch") or "size:depth" in named and c.startswith("it needs depth"))]
    clauses += [clause for _, clause, _ in sized if clause]
    patterns += [tag for tags, _, _ in sized for tag in tags]
    lines[2:2] = shape_lines
    summary = " ".join(leads + ["; ".join([_what(first, only, how, bool(leads or clauses)), *clauses]) + f". Suspect: {step}."])
    return Diagnosis(tuple(dict.fromkeys(patterns)), summary, tuple(lines))


def _float32(implementation, case: Case, comparison: Comparison, judges) -> Float32Pattern | None:
    """The float32 pattern (chainrule.float32) a float64 implementation's failing answer fits, if
    any: on generic values when it fails there (a shrunk counterexample's tiny values leave a
    real bug's error as small as a rounding's), else on the counterexample."""
    if not implementation.precision.is_float64:
        return None
    grads = [(W.got, b.got) for W, b in zip(comparison.tensors[0::2], comparison.tensors[1::2])]
    try:
        return float32_pattern(implementation, case, comparison.loss_got, grads, judges)
    except Exception:  # a diagnosis must never hide the failure it explains
        return None


def _what(first: int | None, only: str | None, how: str, conditioned: bool) -> str:
    """Where it is wrong and how: the summary's opening clause."""
    if first is None:
        return "Only the loss value is wrong (every gradient agrees)" + (f": {how}" if how else "")
    where = f"from layer {first} back" if first > 1 else "in layer 1"
    where = f"Only the {'bias' if only == 'b' else 'weight'} gradients are wrong, {where}" if only else f"Wrong {where}"
    if how:
        return f"{where}, {how}"
    if conditioned:
        return f"{where} (no constant factor, sign, transpose or zeros)"
    return f"No simple pattern fits. {where}, with no constant factor, sign, transpose or zeros, and no variation tried makes it disappear"
