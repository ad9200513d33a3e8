"""Oracle-free properties every correct gradient source has, checked on each source.

- the batch gradient is the mean of the per-example gradients;
- permuting the batch leaves the gradients unchanged;
- permuting a hidden layer's neurons permutes the gradients the same way;
- scaling the loss scales the gradients (cross entropy is linear in Y).
"""

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from chainrule.case import Case
from chainrule.evidence import evidence
from chainrule.sources.ask import answer
from chainrule.strategies import architectures, cases
from chainrule.suite import host_proof, networks_only  # noqa: F401 - a fixture
from chainrule.tolerances import ABSOLUTE_SCALE, TOLERANCES, sensitivity

pytestmark = pytest.mark.usefixtures("networks_only")

EXACT = TOLERANCES["exact"]  # exact arithmetic reordered: the engine's own tolerance, floor included


def _close(got, expected, what, case, precision):
    """Every tensor within EXACT.rtol (no tighter than ``precision``'s rounding) of max(|got|,
    |expected|, floor * its sensitivity on ``case``, ABSOLUTE_SCALE), or each entry within twice
    the case's noise floor in that precision (both sides may be off by it): a true 0 is computed
    as a few eps times the terms summed, never exactly."""
    bounds = sensitivity(case.arch, case.params, case.X, case.Y, precision)
    rtol = EXACT.at_least(bounds.rounding).rtol
    for l, ((gW, gb), (eW, eb), (MW, Mb), (nW, nb)) in enumerate(zip(got, expected, bounds.grads, bounds.noise), start=1):
        for kind, g, e, M, noise in (("W", gW, eW, MW, nW), ("b", gb, eb, Mb, nb)):
            scale = max(np.abs(e).max(initial=0.0), np.abs(g).max(initial=0.0), EXACT.floor * M.max(initial=0.0), ABSOLUTE_SCALE)
            error = (np.abs(g - e) / np.maximum(scale, 2.0 * noise / rtol)).max(initial=0.0)
            assert error <= rtol, f"{what}: dL/d{kind}[layer {l}] off by {error:.3g} relative [{case.describe()}]\n{case.reproduction()}"


def _draw(data, implementation, **bounds):
    case = data.draw(cases(architectures(activations=implementation.activations, losses=implementation.losses), **bounds), label="case")
    case = case.in_precision(implementation.precision)
    assume(not evidence(case, implementation.precision).set_aside)
    return case


@host_proof
@given(data=st.data())
def test_batch_gradient_is_mean_of_example_gradients(implementation, data):
    case = _draw(data, implementation, min_batch=2)
    _, batch = answer(implementation, case.arch, case.params, case.X, case.Y)
    singles = [answer(implementation, case.arch, case.params, case.X[k : k + 1], case.Y[k : k + 1])[1] for k in range(case.batch_size)]
    mean = [tuple(np.mean([s[l][i] for s in singles], axis=0) for i in range(2)) for l in range(case.arch.depth)]
    _close(batch, mean, "batch gradient vs mean of per-example gradients", case, implementation.precision)


@host_proof
@given(data=st.data())
def test_permuting_the_batch_changes_nothing(implementation, data):
    case = _draw(data, implementation, min_batch=2)
    order = data.draw(st.permutations(range(case.batch_size)), label="order")
    _, grads = answer(implementation, case.arch, case.params, case.X, case.Y)
    _, permuted = answer(implementation, case.arch, case.params, case.X[order], case.Y[order])
    _close(permuted, grads, "batch permuted", case, implementation.precision)


@host_proof
@given(data=st.data())
def test_permuting_hidden_neurons_permutes_gradients(implementation, data):
    case = _draw(data, implementation)
    assume(case.arch.depth >= 2)
    l = data.draw(st.integers(0, case.arch.depth - 2), label="layer")
    order = np.array(data.draw(st.permutations(range(case.arch.sizes[l + 1])), label="order"))
    params = [(W.copy(), b.copy()) for W, b in case.params]
    params[l] = (params[l][0][order], params[l][1][order])  # rows of W(l), entries of b(l)
    params[l + 1] = (params[l + 1][0][:, order], params[l + 1][1])  # columns of W(l+1)
    _, grads = answer(implementation, case.arch, case.params, case.X, case.Y)
    _, permuted = answer(implementation, case.arch, params, case.X, case.Y)
    expected = [(dW.copy(), db.copy()) for dW, db in grads]
    expected[l] = (expected[l][0][order], expected[l][1][order])
    expected[l + 1] = (expected[l + 1][0][:, order], expected[l + 1][1])
    _close(permuted, expected, f"neurons of layer {l + 1} permuted", case, implementation.precision)


@host_proof
@given(data=st.data(), c=st.sampled_from([0.5, 2.0, 4.0]))
def test_scaling_the_loss_scales_the_gradients(implementation, data, c):
    """Cross entropy is linear in Y: L(cY) = c L(Y), so dL(cY) = c dL(Y)."""
    if "cross_entropy" not in implementation.losses or "softmax" not in implementation.activations:
        pytest.skip(f"{implementation.name} does not declare cross_entropy with softmax")
    arch = architectures(activations=implementation.activations, losses=("cross_entropy",))
    case = data.draw(cases(arch), label="case").in_precision(implementation.precision)
    found = evidence(case, implementation.precision)
    assume(not found.set_aside)
    loss, grads = answer(implementation, case.arch, case.params, case.X, case.Y)
    scaled_loss, scaled = answer(implementation, case.arch, case.params, case.X, c * case.Y)  # c is a power of two: exact in every precision
    assert abs(scaled_loss - c * loss) <= max(EXACT.at_least(found.bounds.rounding).loss_rtol * max(abs(c * loss), 1e-3), 2 * c * found.bounds.loss)
    scaled_case = Case(case.arch, case.params, case.X, c * case.Y)
    _close(scaled, [(c * dW, c * db) for dW, db in grads], f"loss scaled by {c}", scaled_case, implementation.precision)
