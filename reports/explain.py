"""``chainrule explain``: a small network's gradients told the way the article tells them.

For one example (N = 1) and layers l = 1..L, with a(0) = x:

    forward   z_j(l) = b_j(l) + sum_i w_ji(l) a_i(l-1),   a_j(l) = sigma(z_j(l))
    paths     dL/dw_ji(l) = sum over paths j = u_l -> u_{l+1} -> ... -> u_L of
                  dL/dz_{u_L}(L) * prod_{m=l+1..L} w_{u_m u_{m-1}}(m) sigma'(z_{u_{m-1}}(m-1)) * a_i(l-1)
              (dL/db_j(l): the same with a_i(l-1) replaced by 1)
    matrix    dW(l) = dZ(l)^T A(l-1),  db(l) = dZ(l)^T 1,  dA(l-1) = dZ(l) W(l),  dZ(l-1) = dA(l-1) * sigma'(Z(l-1))
    update    theta <- theta - alpha dL/dtheta, then the forward pass again

Paths start at dL/dz of the output layer, which the loss gives directly (for a softmax output
sigma' is not elementwise, so no path goes through it). Every number printed comes from the
reference: z and a from ``forward``, dL/dz(L) from the loss table, each gradient from
``backward``, the new parameters from ``update``. Nothing is typed in.
"""

from __future__ import annotations

import itertools
import math
import sys

import numpy as np

from chainrule.case import random_case
from chainrule.reference import ACTIVATIONS, LOSSES, Architecture, article, backward, forward, update
from chainrule.status import Exit

__all__ = ["MAX_PARAMETERS", "MAX_PATHS", "article_walkthrough", "explain_command", "path_count", "random_example", "walkthrough"]

MAX_PATHS = 200  # chain-rule terms printed, over all parameters: beyond this nobody reads it
MAX_PARAMETERS = 60


def _n(x) -> str:
    """Compact number: the article's -0.985, 0.2, 1, 4, -1.194 (10 significant digits, no -0)."""
    return format(float(x) + 0.0, ".10g")


def _array(a: np.ndarray) -> str:
    return "[" + ", ".join(_array(row) if np.ndim(row) else _n(row) for row in a) + "]"


class _Names:
    """The article's names: w11(1), b1(2), z2(1), a1(1), x3, y1 (indices from 1; commas once a width passes 9)."""

    def __init__(self, arch: Architecture):
        self.separator = "," if max(arch.sizes) > 9 else ""

    def __call__(self, letter: str, *indices: int, layer: int | None = None) -> str:
        name = letter + self.separator.join(str(i + 1) for i in indices)
        return name if layer is None else f"{name}({layer})"

    def a(self, i: int, layer: int) -> str:
        return self("x", i) if layer == 0 else self("a", i, layer=layer)


def path_count(arch: Architecture) -> int:
    """Chain-rule terms over all parameters: a parameter of layer l has prod_{m>l} sizes[m] paths."""
    total = 0
    for l in range(1, arch.depth + 1):
        total += arch.sizes[l] * (arch.sizes[l - 1] + 1) * math.prod(arch.sizes[l + 1 :])
    return total


def _forward_lines(arch, params, X, cache, name: _Names) -> list[str]:
    """Every z as its weighted sum, symbols then numbers, and every a = sigma(z)."""
    lines = ["Forward pass", "  " + ", ".join(f"{name.a(i, 0)} = {_n(x)}" for i, x in enumerate(X[0]))]
    a_prev = X[0]
    for l, ((W, b), layer, sigma) in enumerate(zip(params, cache, arch.activations), start=1):
        for j in range(W.shape[0]):
            symbols = " + ".join([name("b", j, layer=l)] + [f"{name('w', j, i, layer=l)}·{name.a(i, l - 1)}" for i in range(W.shape[1])])
            numbers = " + ".join([_n(b[j])] + [f"({_n(W[j, i])}·{_n(a_prev[i])})" for i in range(W.shape[1])])
            lines.append(f"  {name('z', j, layer=l)} = {symbols} = {numbers} = {_n(layer.z[0, j])}")
        for j in range(W.shape[0]):
            argument = f"z({l})" if sigma == "softmax" else _n(layer.z[0, j])
            lines.append(f"  {name('a', j, layer=l)} = {sigma}({argument}){'_' + str(j + 1) if sigma == 'softmax' else ''} = {_n(layer.a[0, j])}")
        a_prev = layer.a[0]
    return lines


def _loss_lines(arch, Y, cache, loss: float, name: _Names) -> list[str]:
    """The loss written out for the one example (the contract's 1/N is 1)."""
    a, y, L = cache[-1].a[0], Y[0], arch.depth
    out = range(len(y))
    if arch.loss == "mse":
        symbols = " + ".join(f"({name('a', j, layer=L)} - {name('y', j)})^2" for j in out)
        numbers = " + ".join(f"({_n(a[j])} - {_n(y[j])})^2" for j in out)
    elif arch.loss == "cross_entropy":
        symbols = "-(" + " + ".join(f"{name('y', j)}·log {name('a', j, layer=L)}" for j in out) + ")"
        numbers = "-(" + " + ".join(f"{_n(y[j])}·log {_n(a[j])}" for j in out) + ")"
    else:
        symbols = " - ".join(f"[{name('y', j)}·log {name('a', j, layer=L)} + (1 - {name('y', j)})·log(1 - {name('a', j, layer=L)})]" for j in out)
        numbers = " - ".join(f"[{_n(y[j])}·log {_n(a[j])} + (1 - {_n(y[j])})·log(1 - {_n(a[j])})]" for j in out)
        symbols, numbers = "-" + symbols, "-" + numbers
    return ["", f"Loss ({arch.loss}, N = 1)", f"  L = {symbols} = {numbers} = {_n(loss)}"]


def _output_lines(arch, Y, cache, dZ: np.ndarray, name: _Names) -> list[str]:
    """dL/dz of the output layer, as the loss gives it."""
    L, output, sigma = arch.depth, cache[-1], arch.activations[-1]
    lines = ["", "Backward pass: how the loss moves with each output pre-activation"]
    for j in range(dZ.shape[1]):
        z, a, y = name("z", j, layer=L), name("a", j, layer=L), name("y", j)
        if arch.loss == "cross_entropy":
            told = f"{a}·Σy - {y} = {_n(output.a[0, j])}·{_n(Y[0].sum())} - {_n(Y[0, j])}"
        elif arch.loss == "binary_cross_entropy":
            told = f"{a} - {y} = {_n(output.a[0, j])} - {_n(Y[0, j])}"
        elif sigma == "softmax":
            told = f"sum_i 2/N·(a_i({L}) - y_i)·∂a_i({L})/∂{z} (the softmax Jacobian)"
        else:
            prime = ACTIVATIONS[sigma].sigma_prime(output.z[:, j])[0]
            told = f"2/N·({a} - {y})·σ'({z}) = 2·({_n(output.a[0, j])} - {_n(Y[0, j])})·{_n(prime)}"
        lines.append(f"  dL/d{z} = {told} = {_n(dZ[0, j])}")
    return lines


def _path_lines(arch, params, X, cache, dZ_out, grads, name: _Names) -> list[str]:
    """Every gradient as its sum over paths to the output layer, numbers beside symbols."""
    L = arch.depth
    sigma_prime = [ACTIVATIONS[s].sigma_prime(layer.z)[0] if s != "softmax" else None for s, layer in zip(arch.activations, cache)]
    a = [X[0]] + [layer.a[0] for layer in cache]
    lines = ["", "Every gradient is a sum over the paths from the parameter to the output layer (σ' at a kink z = 0: the z ≤ 0 branch)"]
    for l in range(L, 0, -1):
        W, _ = params[l - 1]
        for j, i in list(itertools.product(range(W.shape[0]), range(W.shape[1]))) + [(j, None) for j in range(W.shape[0])]:
            parameter = name("w", j, i, layer=l) if i is not None else name("b", j, layer=l)
            end = (name.a(i, l - 1), _n(a[l - 1][i])) if i is not None else ("1", "1")
            symbols, numbers = [], []
            for tail in itertools.product(*(range(n) for n in arch.sizes[l + 1 :])):
                units = (j,) + tail  # u_l, ..., u_L
                symbol, number = [f"dL/d{name('z', units[-1], layer=L)}"], [_n(dZ_out[0, units[-1]])]
                for m in range(L, l, -1):  # from the output back to the parameter's layer
                    after, before = units[m - l], units[m - l - 1]
                    symbol += [name("w", after, before, layer=m), f"σ'({name('z', before, layer=m - 1)})"]
                    number += [_n(params[m - 1][0][after, before]), _n(sigma_prime[m - 2][before])]
                symbols.append("·".join(symbol + [end[0]]))
                numbers.append("·".join(number + [end[1]]))
            value = grads[l - 1][0][j, i] if i is not None else grads[l - 1][1][j]
            lines.append(f"  dL/d{parameter} = {' + '.join(symbols)}")
            lines.append(f"  {' ' * len('dL/d' + parameter)} = {' + '.join(numbers)} = {_n(value)}")
    return lines


def _matrix_lines(arch, params, result) -> list[str]:
    """The same numbers in the article's matrix form (one row per example)."""
    lines = ["", "Matrix form (rows are examples): the same numbers"]
    for l in range(arch.depth, 0, -1):
        dW, db = result.grads[l - 1]
        dZ = db[None, :]  # with one example, dZ(l) is db(l) as a row
        told = "from the loss" if l == arch.depth else f"dA({l}) ⊙ σ'(Z({l}))"
        A_prev = "X" if l == 1 else f"A({l - 1})"
        dA = result.dX if l == 1 else dZ @ params[l - 1][0]
        lines += [
            f"  dZ({l}) = {told} = {_array(dZ)}",
            f"  dW({l}) = dZ({l})ᵀ·{A_prev} = {_array(dW)}",
            f"  db({l}) = dZ({l})ᵀ·1 = {_array(db)}",
            f"  dA({l - 1}) = dZ({l})·W({l}) = {_array(dA)}" + ("  (dL/dX)" if l == 1 else ""),
        ]
    return lines


def _update_lines(arch, params, X, Y, result, alpha: float, name: _Names) -> list[str]:
    """theta <- theta - alpha dL/dtheta for every parameter (reference.update), then the loss again."""
    new = update(params, result.grads, alpha)
    lines = ["", f"One step of gradient descent, α = {_n(alpha)}: θ ← θ - α·dL/dθ"]
    for l, ((W, b), (dW, db), (W_new, b_new)) in enumerate(zip(params, result.grads, new), start=1):
        for j, i in itertools.product(range(W.shape[0]), range(W.shape[1])):
            lines.append(f"  {name('w', j, i, layer=l)} ← {_n(W[j, i])} - {_n(alpha)}·{_n(dW[j, i])} = {_n(W_new[j, i])}")
        for j in range(len(b)):
            lines.append(f"  {name('b', j, layer=l)} ← {_n(b[j])} - {_n(alpha)}·{_n(db[j])} = {_n(b_new[j])}")
    after = backward(arch, new, X, Y, forward(arch, new, X)).loss
    moved = "drops" if after < result.loss else "does not drop"
    lines.append(f"  forward pass again: L = {_n(after)} (was {_n(result.loss)}): the loss {moved}")
    return lines


def walkthrough(arch: Architecture, params, X: np.ndarray, Y: np.ndarray, alpha: float, title: str) -> str:
    """The whole story for one example: forward, loss, path sums, matrix form, one update."""
    if len(X) != 1:
        raise ValueError(f"explain: got a batch of {len(X)}, the walkthrough tells one example")
    name = _Names(arch)
    cache = forward(arch, params, X)
    result = backward(arch, params, X, Y, cache)
    output = cache[-1]
    dZ_out = LOSSES[arch.loss].output_dZ(output.z, output.a, Y, ACTIVATIONS[arch.activations[-1]])
    layers = ", ".join(f"layer {l}: {s}" for l, s in enumerate(arch.activations, start=1))
    lines = [title, f"σ per layer: {layers}", "", "Parameters"]
    for l, (W, b) in enumerate(params, start=1):
        entries = [f"{name('w', j, i, layer=l)} = {_n(W[j, i])}" for j, i in itertools.product(range(W.shape[0]), range(W.shape[1]))]
        lines.append("  " + ", ".join(entries + [f"{name('b', j, layer=l)} = {_n(b[j])}" for j in range(len(b))]))
    lines.append("  " + ", ".join(f"{name('y', j)} = {_n(y)}" for j, y in enumerate(Y[0])))
    lines.append("")
    lines += _forward_lines(arch, params, X, cache, name)
    lines += _loss_lines(arch, Y, cache, result.loss, name)
    lines += _output_lines(arch, Y, cache, dZ_out, name)
    lines += _path_lines(arch, params, X, cache, dZ_out, result.grads, name)
    lines += _matrix_lines(arch, params, result)
    lines += _update_lines(arch, params, X, Y, result, alpha, name)
    return "\n".join(lines) + "\n"


def article_walkthrough() -> str:
    """The article's worked example (reference/article.py)."""
    return walkthrough(article.ARCH, article.PARAMS, article.X, article.Y, article.ALPHA, f"The article's worked example: {article.ARCH}, one training example")


def random_example(arch: Architecture, seed: int):
    """The one-example case of chainrule.case.random_case, rounded to two decimals to read easily:
    cross-entropy targets one-hot at their largest entry, binary ones rounded to 0 or 1."""
    case = random_case(arch, 1, seed)
    params = [(W.round(2), b.round(2)) for W, b in case.params]
    if arch.loss == "cross_entropy":
        Y = np.eye(arch.sizes[-1])[[int(case.Y.argmax())]]
    elif arch.loss == "binary_cross_entropy":
        Y = case.Y.round()
    else:
        Y = case.Y.round(2)
    return params, case.X.round(2), Y


def explain_command(args) -> int:
    """``chainrule explain [ARCH] [--seed S]``: 0, or 2 with one line for an unusable ARCH."""
    if args.arch is None:
        print(article_walkthrough(), end="")
        return Exit.AGREE
    try:
        arch = Architecture.parse(args.arch)
    except ValueError as error:
        print(f"chainrule: error: {error}", file=sys.stderr)
        return Exit.USAGE
    paths = path_count(arch)
    if paths > MAX_PATHS or arch.parameter_count > MAX_PARAMETERS:
        print(
            f"chainrule: error: {arch} has {arch.parameter_count} parameters and {paths} chain-rule paths; "
            f"explain tells at most {MAX_PARAMETERS} parameters and {MAX_PATHS} paths",
            file=sys.stderr,
        )
        return Exit.USAGE
    params, X, Y = random_example(arch, args.seed)
    print(walkthrough(arch, params, X, Y, article.ALPHA, f"{arch} with random parameters (seed {args.seed}), one example"), end="")
    return Exit.AGREE
