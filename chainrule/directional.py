"""Randomized checks that still localize: directional derivatives, then group testing.

Above THRESHOLD parameters, where every-entry finite differences take hours, each gradient
tensor T is judged by random directional derivatives: <g_T, v> against the central difference
(L(theta + h v) - L(theta - h v)) / 2h on this module's own float64 network. A disagreeing
tensor is narrowed down to its wrong entries by group testing (about log2(P) evaluations per
wrong entry), each named entry measured alone. The method, the step, the error bound
(TOLERANCES["directional"]) and the measurements: docs/directional.md.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from chainrule.compare import Comparison, TensorComparison, loss_error
from chainrule.contract import TensorId
from chainrule.oracles.finite_differences import ACTIVATIONS, LOSSES, SIGN_SENSITIVE, STEP, validated
from chainrule.sources.ask import answer
from chainrule.sources.load import as_implementation
from chainrule.status import Status, strongest
from chainrule.tolerances import ABSOLUTE_SCALE, TOLERANCES, Tolerance

__all__ = [
    "THRESHOLD", "ROUNDING_ALLOWANCE", "WrongEntry", "TensorCheck", "DirectionalResult", "directional_check", "as_comparison",
]

Params = list[tuple[np.ndarray, np.ndarray]]

THRESHOLD = 20_000  # parameters: above this, `chainrule check --arch` judges by directions
EPS = float(np.finfo(np.float64).eps)
ROUNDING_ALLOWANCE = 8.0  # times the measured rounding of L: D then errs by at most 1/8 of the allowance seen
BAND = 8.0  # safe steps of one band's units lie within this factor
MIN_STEP = 2.0**-20  # relative to h0: below it D's rounding alone is ~1e-3 of the tensor's scale, no evidence
MAX_RETRIES = 8  # step reductions for a crossing found in a deeper layer
MAX_WRONG = 8  # wrong entries named per tensor before localization stops
REMEASURE = 4.0  # an inferred half is measured when its bound exceeds a measurement's by this factor
CODED_SPLIT = 8  # a coded split into B parts costs two measurements: worth it from B = 8 (three halvings)
WIDE = 4.0  # localization steps up to WIDE h0 where L is quadratic along v: only kinks limit them
CHUNK_BYTES = 32 * 2**20  # working set of one batch of perturbations
_ARRAYS_PER_PERTURBATION = 4  # float64 arrays of one layer's shape alive at once per perturbation
EXACT_LINE = ("identity", "relu", "leaky_relu")  # with mse, L is quadratic along a direction between kinks


@dataclass(frozen=True)
class WrongEntry:
    """One localized entry: the implementation's value and the entry's own central difference."""

    index: tuple[int, ...]
    got: float
    expected: float

    @property
    def error(self) -> float:
        return abs(self.got - self.expected)


@dataclass(frozen=True)
class TensorCheck:
    """The verdict on one gradient tensor, from its random directions."""

    tensor: TensorId
    status: Status
    directions: int  # directions that gave evidence
    worst: float  # largest |<g, v> - D| / tolerance over the directions (> 1: disagreement)
    step: float  # smallest step used
    uncovered: int  # entries in no direction: their unit sits on, or within rounding of, a kink
    wrong: tuple[WrongEntry, ...] = ()
    more: bool = False  # localization stopped at MAX_WRONG entries: there are more

    @property
    def name(self) -> str:
        return self.tensor.name


@dataclass(frozen=True)
class DirectionalResult:
    """An implementation's answer judged by random directions, tensor by tensor."""

    status: Status
    loss_got: float
    loss_expected: float
    loss_agrees: bool
    tensors: tuple[TensorCheck, ...]
    forwards: int  # loss evaluations, the unperturbed forward pass included
    seconds: float
    note: str = ""

    @property
    def wrong(self) -> list[tuple[TensorCheck, WrongEntry]]:
        return [(t, w) for t in self.tensors for w in t.wrong]


# ----------------------------------------------------------------------------- the network


def _shrink(name: str, z: np.ndarray, base: np.ndarray) -> np.ndarray:
    """Per perturbation (leading axis): 1 if no sign-sensitive pre-activation changed sign; else
    the factor (< 1) by which the step must shrink for the linear prediction to keep every sign;
    0 if an exact zero moved (no step helps)."""
    out = np.ones(len(z))
    if name not in SIGN_SENSITIVE:
        return out
    changed = np.sign(z) != np.sign(base)
    for p in np.flatnonzero(changed.reshape(len(z), -1).any(axis=1)):
        moved, at = np.abs(z[p] - base)[changed[p]], np.abs(np.broadcast_to(base, z[p].shape))[changed[p]]
        out[p] = 0.0 if (at == 0).any() else float((at / moved).min())
    return out


class _Network:
    """(arch, params, X, Y) with its forward cache, and the loss at perturbed points."""

    def __init__(self, arch, params, X, Y):
        self.activations, self.loss_name = validated(arch)
        self.params = [(np.asarray(W, dtype=np.float64), np.asarray(b, dtype=np.float64)) for W, b in params]
        self.X, self.Y = np.asarray(X, dtype=np.float64), np.asarray(Y, dtype=np.float64)
        self.Z, self.A = self._forward(self.params, self.X)
        self.loss = float(self._loss(self.Z[-1][None], self.Y)[0])
        self.exact_line = self.loss_name == "mse" and all(name in EXACT_LINE for name in self.activations)
        self.forwards = 1

    def _forward(self, params: Params, X: np.ndarray, split: float = 0.0) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Z(l) and A(l); with 0 < split < 1 every sum over a layer's inputs is taken in two parts,
        the first ``split`` of the inputs and the rest, then added: the same numbers, rounded otherwise."""
        Z, A = [], [X]
        for (W, b), name in zip(params, self.activations):
            cut = int(round(split * W.shape[1]))
            if 0 < cut < W.shape[1]:
                Z.append(A[-1][:, :cut] @ W[:, :cut].T + A[-1][:, cut:] @ W[:, cut:].T + b)
            else:
                Z.append(A[-1] @ W.T + b)
            A.append(ACTIVATIONS[name](Z[-1]))
        return Z, A

    def _loss(self, z: np.ndarray, Y: np.ndarray) -> np.ndarray:
        return LOSSES[self.loss_name](z, ACTIVATIONS[self.activations[-1]], Y)

    def rounding(self) -> float:
        """dL, a bound on one evaluation's rounding: ROUNDING_ALLOWANCE times how far L moves when
        the same network is summed in another order (each layer's inputs in two parts, split at a
        third and at two thirds; examples reversed), and at least 4 eps times the magnitude of the
        loss's last terms (``_terms``).
        How far each output pre-activation moved is kept in ``output_rounding``."""
        deviations = [0.0]
        self.output_rounding = np.zeros_like(self.Z[-1])
        for split, rows in ((1.0 / 3.0, slice(None, None, -1)), (2.0 / 3.0, slice(None))):
            Z, _ = self._forward(self.params, self.X[rows], split)
            deviations.append(abs(float(self._loss(Z[-1][None], self.Y[rows])[0]) - self.loss))
            np.maximum(self.output_rounding, np.abs(Z[-1][rows] - self.Z[-1]), out=self.output_rounding)
            self.forwards += 1
        return max(ROUNDING_ALLOWANCE * max(deviations), 4.0 * EPS * self._terms())

    def _terms(self) -> float:
        """sum |term| / N over the loss's last operations, each rounded once whatever the order:
        the part of dL no reordering shows (log-sum-exp of a saturated softmax sits at log(1 + tiny),
        where L is quantized in steps of eps)."""
        z, Y, N = self.Z[-1], self.Y, len(self.Y)
        if self.loss_name == "cross_entropy":  # y (z - max z) - y log(sum exp(z - max z)), the sum >= 1
            terms = np.abs(Y) * (np.abs(z - z.max(axis=1, keepdims=True)) + 1.0)
        elif self.loss_name == "binary_cross_entropy":  # max(+-z, 0) + log1p(exp(-|z|))
            terms = (np.abs(Y) + np.abs(1.0 - Y)) * (np.abs(z) + 1.0)
        else:  # mse: (a - y)^2, each subtraction and square rounded relative to its own result
            terms = np.zeros(1)
        return abs(self.loss) + float(terms.sum()) / N

    def perturbation_bytes(self, l: int) -> int:
        widest = max(Z.shape[1] for Z in self.Z[l:])
        return 8 * _ARRAYS_PER_PERTURBATION * len(self.X) * widest

    def evaluate(self, l: int, moves: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Loss, shrink factor (see _shrink) and output pre-activation per move (cols, dz):
        Z(l)[:, cols] moved by dz."""
        losses, shrink = np.empty(len(moves)), np.ones(len(moves))
        outputs = np.empty((len(moves),) + self.Z[-1].shape)
        size = max(1, CHUNK_BYTES // self.perturbation_bytes(l))
        for start in range(0, len(moves), size):
            chunk = slice(start, min(start + size, len(moves)))
            losses[chunk], shrink[chunk], outputs[chunk] = self._evaluate(l, moves[chunk])
        self.forwards += len(moves)
        return losses, shrink, outputs

    def _evaluate(self, l: int, moves) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        last, names = len(self.params) - 1, self.activations
        shrink, layers = [], []
        for cols, dz in moves:
            base = self.Z[l][:, cols]
            z_cols = base + dz
            shrink.append(_shrink(names[l], z_cols[None], base)[0])
            if l == last:
                z = self.Z[l].copy()
                z[:, cols] = z_cols
            else:  # only columns cols of A(l) move: Z(l+1) moves by dA W(l+1)[:, cols]^T
                dA = ACTIVATIONS[names[l]](z_cols) - self.A[l + 1][:, cols]
                z = self.Z[l + 1] + dA @ self.params[l + 1][0][:, cols].T
            layers.append(z)
        z, shrink = np.stack(layers), np.array(shrink)
        for m in range(min(l + 1, last), last + 1):
            if m > l:
                shrink = np.minimum(shrink, _shrink(names[m], z, self.Z[m]))
            if m < last:
                W, b = self.params[m + 1]
                a = ACTIVATIONS[names[m]](z)
                z = (a.reshape(-1, a.shape[-1]) @ W.T).reshape(len(a), a.shape[1], -1)
                z += b
        return self._loss(z, self.Y), shrink, z


# ----------------------------------------------------------------------------- directions


@dataclass(eq=False)
class _Node:
    """A direction restricted to a set of entries of one tensor, and what is known of its mismatch."""

    tensor: int  # index into the flat tensor list: 2 (l - 1) + (0 for W, 1 for b)
    v: np.ndarray  # the direction on the whole tensor, flat
    support: np.ndarray  # flat indices into the tensor, sorted
    step: float
    weights: np.ndarray | None = None  # multiplies v on the support (a coded direction)
    fd: float = 0.0  # D_S, the central difference along the direction
    mismatch: float = 0.0  # <g, v_S> - D_S
    bound: float = np.inf  # how far mismatch may be off
    measured: bool = False  # D_S computed, rather than the mismatch inferred by subtraction
    evidence: bool = True  # False: no step keeps the kinks on their sides
    delta: tuple | None = None  # (cols, dZ) once computed: see _Checker.moves
    conditioning: float = 0.0  # how far any implementation's <g, v_S> may be off from rounding of the outputs alone
    parent: "_Node | None" = None  # carved out of parent.support[cut[0]:cut[1]]; the rest is inferred
    cut: tuple[int, int] = (0, 0)
    codable: bool = True  # False once a coded split failed to decode here

    def carve(self, a: int, b: int) -> "_Node":
        """The node on support[a:b], whose measurement will also tell what the rest holds."""
        return _Node(self.tensor, self.v, self.support[a:b], self.step, parent=self, cut=(a, b))

    def rest(self, a: int, b: int) -> "_Node":
        """The node on the support less support[a:b]."""
        return _Node(self.tensor, self.v, np.concatenate((self.support[:a], self.support[b:])), self.step)

    @property
    def span(self) -> slice | None:
        """The support as a slice when it is one contiguous run (halves of a run are runs)."""
        lo, hi = int(self.support[0]), int(self.support[-1]) + 1
        return slice(lo, hi) if hi - lo == len(self.support) else None

    def take(self, array: np.ndarray) -> np.ndarray:
        """array[support] of a flat array, without a copy when the support is a run."""
        span = self.span
        return array[span] if span is not None else array[self.support]

    def direction(self) -> np.ndarray:
        """The direction's entries on the support."""
        v = self.take(self.v)
        return v if self.weights is None else v * self.weights

    @property
    def dirty(self) -> bool:
        return self.evidence and abs(self.mismatch) > self.bound

    @property
    def margin(self) -> float:
        return abs(self.mismatch) / self.bound if self.evidence else 0.0


def _parts(size: int, count: int) -> np.ndarray:
    """Boundaries of ``count`` contiguous parts of nearly equal size: parts k is [b[k], b[k+1])."""
    return np.linspace(0, size, count + 1).round().astype(int)


class _Checker:
    """Directions on every tensor of one network, measured against one answer."""

    def __init__(self, net: _Network, grads: Params, tolerance: Tolerance, rng: np.random.Generator, rounding: float):
        self.net, self.tolerance, self.rng, self.rounding = net, tolerance, rng, rounding
        self.grads = [np.asarray(g, dtype=np.float64).ravel() for pair in grads for g in pair]
        self.shapes = [t.shape for pair in net.params for t in pair]
        self.G = 0.0  # rms gradient entry as the differences see it (set once the first directions are in)
        self.truncation = [0.0] * len(self.shapes)  # per tensor: D's truncation at a disputed direction's step
        # twice |d^2 L / dz_out^2| <= curvature / N: mse 2 sigma'^2 (sigma' <= 1.13 for gelu), log losses 1/2
        self.curvature = (6.0 if net.loss_name == "mse" else 2.0) / len(net.X)

    def impl(self, node: _Node) -> float:
        return float(node.take(self.grads[node.tensor]) @ node.direction())

    def scale(self, node: _Node) -> float:
        v = node.direction()
        norm_v = float(np.linalg.norm(v))
        gv = float(np.linalg.norm(node.take(self.grads[node.tensor]) * v))
        return max(gv, abs(node.fd), self.tolerance.floor * self.G * norm_v, ABSOLUTE_SCALE * norm_v)

    def bound(self, node: _Node, spread: float | None = None) -> float:
        """How far a measured mismatch may be off at the node's step (docs/directional.md):
        D(h)'s, or with ``spread`` = |D(h) - D(h/2)| the Richardson value's."""
        rounding = self.rounding / node.step
        fixed = self.tolerance.rtol * self.scale(node) + node.conditioning
        if spread is None:
            return fixed + rounding + self.truncation[node.tensor]
        return fixed + 3.0 * rounding + spread / 3.0

    def judge(self, node: _Node, D: float, spread: float | None = None) -> None:
        node.fd, node.measured = D, True
        if node.evidence:
            node.mismatch = self.impl(node) - D
            node.bound = self.bound(node, spread)

    def moves(self, node: _Node) -> tuple[slice | np.ndarray, np.ndarray]:
        """Columns of Z(l) the node moves (a slice when they are a run), and how far per unit step."""
        if node.delta is not None:
            return node.delta
        l, which = divmod(node.tensor, 2)
        span, values = node.span, node.direction()
        if which == 1:
            cols = span if span is not None else node.support
            return cols, np.broadcast_to(values, (len(self.net.X), len(values)))
        n_in = self.shapes[node.tensor][1]
        if span is not None:  # whole or partial rows first..last
            first, last = span.start // n_in, (span.stop - 1) // n_in
            V = np.zeros((last - first + 1, n_in))
            V.ravel()[span.start - first * n_in : span.stop - first * n_in] = values
            return slice(first, last + 1), self.net.A[l] @ V.T
        units = node.support // n_in  # sorted: a new unit wherever it changes
        starts = np.concatenate(([True], units[1:] != units[:-1]))
        V = np.zeros((int(starts.sum()), n_in))
        V[np.cumsum(starts) - 1, node.support % n_in] = values
        return units[starts], self.net.A[l] @ V.T

    def step(self, l: int, cols, dz: np.ndarray) -> tuple[float, np.ndarray]:
        """h0 for a move dz of columns cols of Z(l), and per column the step at which its first
        sign-sensitive pre-activation would reach 0 (inf if none; 0 if it sits exactly at 0)."""
        net = self.net
        # Z(l) moves by at most cbrt(eps) max(1, rms Z(l)); a direction that barely moves it takes a long step.
        h0 = STEP * max(1.0, float(np.sqrt(np.mean(net.Z[l] ** 2)))) / max(float(np.abs(dz).max(initial=0.0)), 1e-100)
        reach = np.full(dz.shape[1], np.inf)
        if net.activations[l] in SIGN_SENSITIVE:
            with np.errstate(divide="ignore", invalid="ignore"):
                reach = np.where(dz != 0, np.abs(net.Z[l][:, cols]) / np.abs(dz), np.inf).min(axis=0)
        return h0, reach

    def measure(self, nodes: list[_Node], halves: bool = False) -> list[tuple[float, float]]:
        """(D(h), D(h/2)) per node, D(h/2) only with halves=True, else D(h) twice. A crossing in a
        deeper layer shrinks the node's step and measures again; a node that no step serves gets
        evidence=False (and NaN)."""
        results = [(np.nan, np.nan)] * len(nodes)
        floor = [node.step * MIN_STEP for node in nodes]
        fractions = (1.0, 0.5) if halves else (1.0,)
        pending = list(range(len(nodes)))
        for _ in range(MAX_RETRIES + 1):
            by_layer: dict[int, list[int]] = {}
            for i in pending:
                by_layer.setdefault(nodes[i].tensor // 2, []).append(i)
            pending = []
            for l, members in by_layer.items():
                moves = []
                for i in members:
                    cols, dz = self.moves(nodes[i])
                    moves += [(cols, sign * fraction * nodes[i].step * dz) for fraction in fractions for sign in (1.0, -1.0)]
                losses, shrink, outputs = self.net.evaluate(l, moves)
                per = 2 * len(fractions)
                for k, i in enumerate(members):
                    L, s, h = losses[per * k : per * (k + 1)], float(shrink[per * k : per * (k + 1)].min()), nodes[i].step
                    if s >= 1.0:
                        D = [(L[2 * f] - L[2 * f + 1]) / (2.0 * fraction * h) for f, fraction in enumerate(fractions)]
                        results[i] = (D[0], D[-1])
                        Jv = (outputs[per * k] - outputs[per * k + 1]) / (2.0 * h)  # how the outputs move along v
                        nodes[i].conditioning = self.curvature * float((self.net.output_rounding * np.abs(Jv)).sum())
                    elif s > 0.0 and h * s / 2.0 >= floor[i]:
                        nodes[i].step = h * s / 2.0
                        pending.append(i)
                    else:
                        nodes[i].evidence = False
            if not pending:
                break
        for i in pending:
            nodes[i].evidence = False
        return results

    def directions(self, count: int) -> list[list[_Node]]:
        """Per tensor, one node per band of each of ``count`` random directions, steps set."""
        groups = []
        for tensor, shape in enumerate(self.shapes):
            l = tensor // 2
            n_out = shape[0]
            row = int(np.prod(shape[1:], dtype=int))  # entries per unit: n_in for W, 1 for b
            nodes = []
            for _ in range(count):
                r = self.rng.uniform(-1.0, 1.0, size=n_out * row)  # sign and magnitude from one draw
                v = np.where(r < 0.0, r - 1.0, r + 1.0)
                cols, dz = self.moves(_Node(tensor, v, np.arange(v.size), 0.0))
                h0, reach = self.step(l, cols, dz)
                top, remaining = h0, np.ones(n_out, dtype=bool)
                while remaining.any() and top >= h0 * MIN_STEP:
                    band = remaining & (reach >= 2.0 * max(top / BAND, h0 * MIN_STEP))
                    if band.any():
                        units = np.flatnonzero(band)
                        support = (units[:, None] * row + np.arange(row)).ravel()
                        delta = (cols, dz) if band.all() else (units, dz[:, units])
                        nodes.append(_Node(tensor, v, support, min(top, 0.5 * float(reach[band].min())), delta=delta))
                        remaining &= ~band
                    top /= BAND
            groups.append(nodes)
        return groups

    # ------------------------------------------------------------------------- localization

    def arity(self, node: _Node) -> int:
        """Parts a coded split of this measured node can tell apart: the largest power of two
        B <= 1 + margin / 4 (decoding errs by at most 2 (B - 1) / margin parts), else 2."""
        if not node.codable:
            return 2
        B = 2 ** int(np.log2(1.0 + node.margin / 4.0))
        return min(B, 2 ** int(np.log2(len(node.support))))

    def decode(self, node: _Node, coded: _Node, B: int) -> int | None:
        """Which part holds the mismatch, read off the coded measurement; None if unreadable."""
        if not coded.evidence:
            return None
        position = coded.mismatch / node.mismatch * (B - 1)
        part = int(round(position))
        return part if 0 <= part < B and abs(position - part) <= 0.3 else None

    def localize(self, root: _Node) -> tuple[list[WrongEntry], bool]:
        """The wrong entries under a measured disagreement (docs/directional.md)."""
        frontier, wrong = [root], []
        while frontier and len(wrong) < MAX_WRONG:
            frontier.sort(key=lambda n: -n.margin)
            batch, frontier = frontier[: MAX_WRONG - len(wrong)], frontier[MAX_WRONG - len(wrong) :]
            measured, coded = [], {}
            for node in batch:
                if not node.dirty or len(node.support) == 1:  # a decoded part, a half that cannot be told, an entry to name
                    measured.append(node)
                elif (B := self.arity(node)) >= CODED_SPLIT:  # one measurement tells which of B parts
                    bounds = _parts(len(node.support), B)
                    probe = _Node(node.tensor, node.v, node.support, node.step,
                                  weights=np.repeat(np.arange(B) / (B - 1.0), np.diff(bounds)))
                    coded[id(probe)] = (node, B, bounds)
                    measured.append(probe)
                else:  # measure the first half; the second is the difference
                    measured.append(node.carve(0, len(node.support) // 2))
            for node in measured:
                cols, dz = node.delta = self.moves(node)
                h0, reach = self.step(node.tensor // 2, cols, dz)
                node.step = min((WIDE if self.net.exact_line else 1.0) * h0, 0.5 * float(reach.min()))
            # An entry to be named is measured at h and h/2 where L is not quadratic along v: its
            # step (one entry moves Z(l) little) is long, and its truncation is not the tensor's.
            careful = not self.net.exact_line
            singles = [node for node in measured if careful and len(node.support) == 1 and id(node) not in coded]
            for node, (D1, D2) in zip(singles, self.measure(singles, halves=True)):
                self.judge(node, (4.0 * D2 - D1) / 3.0, spread=abs(D1 - D2))
            others = [node for node in measured if not any(node is single for single in singles)]
            for node, (D, _) in zip(others, self.measure(others)):
                self.judge(node, D)
            for node in measured:
                if id(node) in coded:
                    parent, B, bounds = coded[id(node)]
                    part = self.decode(parent, node, B)
                    if part is None:
                        parent.codable = False
                        frontier.append(parent)
                    else:
                        frontier.append(parent.carve(bounds[part], bounds[part + 1]))
                    continue
                candidates = [node]
                if node.parent is not None:
                    if not node.evidence:
                        continue  # this part cannot be measured: what its parent holds stays unnamed
                    rest = node.parent.rest(*node.cut)
                    rest.mismatch = node.parent.mismatch - node.mismatch
                    rest.bound = node.parent.bound + node.bound
                    candidates.append(rest)
                for child in candidates:
                    if child.dirty and child.measured and len(child.support) == 1:
                        i = int(child.support[0])
                        index = tuple(int(k) for k in np.unravel_index(i, self.shapes[child.tensor]))
                        wrong.append(WrongEntry(index, float(self.grads[child.tensor][i]), float(child.fd / child.v[i])))
                    elif child.dirty:
                        frontier.append(child)
                    elif not child.measured:
                        direct = self._direct_bound(child)
                        if abs(child.mismatch) > direct or child.bound > REMEASURE * direct:
                            frontier.append(child)  # its bound is too loose to call it clean: measure it
        return sorted(wrong, key=lambda w: -w.error), any(n.dirty for n in frontier)

    def _direct_bound(self, node: _Node) -> float:
        """About the bound a measurement of the node would have, at its parent's step."""
        probe = _Node(node.tensor, node.v, node.support, node.step)
        probe.fd = self.impl(node)
        return self.bound(probe)


# ----------------------------------------------------------------------------- the check


def _answer(source, arch, params, X, Y) -> tuple[float, Params]:
    """A given (loss, grads) as float64 arrays, or the implementation's answer (asked as
    chainrule.sources.ask asks: twice, validated)."""
    if isinstance(source, tuple) and len(source) == 2 and not hasattr(source, "loss_and_gradients"):
        loss, grads = source
        return float(loss), [(np.asarray(dW, dtype=np.float64), np.asarray(db, dtype=np.float64)) for dW, db in grads]
    return answer(as_implementation(source), arch, params, X, Y)


def directional_check(
    source,
    arch,
    params: Params,
    X: np.ndarray,
    Y: np.ndarray,
    *,
    directions: int = 1,
    seed: int = 0,
    tolerance: Tolerance | None = None,
    localize: bool = True,
) -> DirectionalResult:
    """Judge an implementation (or its answer, a (loss, grads) pair) on one case by random
    directional derivatives, naming the wrong entries of every tensor that disagrees.

    An implementation that answers wrongly in form raises chainrule.sources.faults.Fault, as ``answer`` does.
    """
    start = time.perf_counter()
    tolerance = tolerance or TOLERANCES["directional"]
    loss_got, grads = _answer(source, arch, params, X, Y)
    net = _Network(arch, params, X, Y)
    rng = np.random.default_rng(seed)
    rounding = net.rounding()
    checker = _Checker(net, grads, tolerance, rng, rounding)
    groups = checker.directions(directions)

    nodes = [node for group in groups for node in group]
    results = checker.measure(nodes)
    checker.G = max((abs(D) / np.linalg.norm(n.take(n.v)) for n, (D, _) in zip(nodes, results) if n.evidence), default=0.0)
    for node, (D, _) in zip(nodes, results):
        checker.judge(node, D)

    # Where L is not quadratic along v, a disagreement counts only if it survives at half the step:
    # Richardson's (4 D(h/2) - D(h)) / 3 has no h^2 term, errs by about 3 dL/h in rounding, and
    # |D(h) - D(h/2)| / 3 bounds what is left. D(h)'s own truncation, 4/3 |D(h) - D(h/2)|, is
    # then allowed for in every direction localization measures on that tensor.
    disputed = [n for n in nodes if n.dirty and not net.exact_line]
    for node, (D1, D2) in zip(disputed, checker.measure(disputed, halves=True)):
        if not node.evidence:
            continue
        checker.truncation[node.tensor] = max(checker.truncation[node.tensor], 4.0 / 3.0 * abs(D1 - D2))
        checker.judge(node, (4.0 * D2 - D1) / 3.0, spread=abs(D1 - D2))

    tensors = []
    for tensor, (group, identity) in enumerate(zip(groups, TensorId.every(len(params)))):
        evidence = [n for n in group if n.evidence]
        bad = [n for n in evidence if n.dirty]
        wrong, more = [], False
        for node in bad if localize else ():
            found, extra = checker.localize(node)
            wrong, more = wrong + found, more or extra
        covered = np.zeros(int(np.prod(checker.shapes[tensor])), dtype=bool)
        for node in evidence:
            covered[node.span if node.span is not None else node.support] = True
        status = Status.DISAGREE if bad else Status.AGREE if evidence else Status.NO_EVIDENCE
        tensors.append(TensorCheck(
            identity, status, len(evidence),
            float(max((abs(n.mismatch) / n.bound for n in evidence), default=0.0)),
            float(min((n.step for n in evidence), default=0.0)), int((~covered).sum()),
            tuple(sorted(wrong, key=lambda w: -w.error)[:MAX_WRONG]), more or len(wrong) > MAX_WRONG,
        ))

    loss_bound = tolerance.loss_rtol * max(abs(net.loss), abs(loss_got), 1e-3) + rounding
    loss_agrees = abs(loss_got - net.loss) <= loss_bound
    status = strongest([t.status for t in tensors] + ([] if loss_agrees else [Status.DISAGREE]))
    status = Status.NO_EVIDENCE if status is Status.PENDING else status
    return DirectionalResult(
        status, loss_got, net.loss, loss_agrees, tuple(tensors), net.forwards, time.perf_counter() - start,
        f"{directions} random direction(s) per tensor; {net.forwards} loss evaluations",
    )


def as_comparison(result: DirectionalResult, grads: Params) -> Comparison:
    """The result in the shape every other judge's answer has (chainrule.compare.Comparison), for
    verdicts and reports: each tensor's expected values are the implementation's own, except the
    entries named wrong, which carry their central differences; tolerance 0, so exactly those
    entries differ. A tensor that disagrees without an entry named is told in the note."""
    tensors, notes = [], [result.note]
    for check in result.tensors:
        l, which = check.tensor.slot
        got = np.asarray(grads[l][which], dtype=np.float64)
        expected = got.copy()
        for entry in check.wrong:
            expected[entry.index] = entry.expected
        scale = max(float(np.abs(got).max(initial=0.0)), float(np.abs(expected).max(initial=0.0)), ABSOLUTE_SCALE)
        tensors.append(TensorComparison(check.tensor, got, expected, np.ones(got.shape, dtype=bool), scale, 0.0))
        if check.status is Status.DISAGREE and (not check.wrong or check.more):
            notes.append(f"{check.name} disagrees along its random direction by {check.worst:.3g} times the tolerance; "
                         + ("more wrong entries than those named" if check.wrong else "no single entry could be named"))
        if check.uncovered:
            notes.append(f"{check.name}: {check.uncovered} entries on or next to a kink were in no direction")
    error = loss_error(result.loss_got, result.loss_expected, 0.0, TOLERANCES["directional"])
    return Comparison(
        "directional", result.status, result.loss_got, result.loss_expected, error, tuple(tensors), "; ".join(notes), result.loss_agrees
    )
