"""The strategies produce, on purpose, what uniform sampling would miss."""

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis.errors import InvalidArgument

from chainrule.reference import KINKED, forward
from chainrule.strategies import architectures, cases

SAMPLE = 300


def _sample(strategy, n=SAMPLE):
    drawn = []

    @settings(max_examples=n, database=None, derandomize=True, phases=[Phase.generate], suppress_health_check=list(HealthCheck), deadline=None)
    @given(strategy)
    def collect(value):
        drawn.append(value)

    collect()
    return drawn


@pytest.fixture(scope="module")
def sample():
    return _sample(cases())


def _fraction(sample, predicate):
    return sum(map(predicate, sample)) / len(sample)


def _exact_kink(case):
    layers = forward(case.arch, case.params, case.X)
    return any(name in KINKED and (layer.z == 0).any() for name, layer in zip(case.arch.activations, layers))


def _saturated(case):
    return any((np.abs(layer.z) > 8).any() for layer in forward(case.arch, case.params, case.X))


@pytest.mark.parametrize(
    "what, predicate, at_least",
    [
        ("exact zero pre-activation at relu/leaky_relu", _exact_kink, 0.1),
        ("batch of more than one example", lambda c: c.batch_size > 1, 0.4),
        ("at least one hidden layer", lambda c: c.arch.depth >= 2, 0.5),
        ("softmax + cross_entropy", lambda c: c.arch.loss == "cross_entropy", 0.2),
        ("sigmoid + binary_cross_entropy", lambda c: c.arch.loss == "binary_cross_entropy", 0.2),
        ("a saturated unit (|z| > 8)", _saturated, 0.1),
        ("values on the grid", lambda c: all((np.asarray(W) * 4 % 1 == 0).all() for W, _ in c.params), 0.2),
    ],
    ids=["kinks", "batch", "hidden", "cross-entropy", "binary-cross-entropy", "saturated", "grid"],
)
def test_produces_on_purpose(sample, what, predicate, at_least):
    fraction = _fraction(sample, predicate)
    assert fraction >= at_least, f"{what}: {fraction:.0%} of {len(sample)} cases, expected at least {at_least:.0%}"


def test_every_activation_and_loss_appears(sample):
    seen = {name for case in sample for name in case.arch.activations} | {case.arch.loss for case in sample}
    from chainrule.reference import ACTIVATION_NAMES, LOSS_NAMES

    assert seen >= set(ACTIVATION_NAMES) | set(LOSS_NAMES), sorted(set(ACTIVATION_NAMES) | set(LOSS_NAMES) - seen)


def test_bounds_are_respected():
    for case in _sample(cases(architectures(min_depth=2, max_depth=3, max_width=2, activations=("tanh", "softmax")), min_batch=2, max_batch=2), 50):
        assert 2 <= case.arch.depth <= 3 and max(case.arch.sizes) <= 2 and case.batch_size == 2
        assert set(case.arch.activations) <= {"tanh", "softmax"} and "softmax" not in case.arch.activations[:-1]
        assert case.X.shape == (2, case.arch.sizes[0]) and case.Y.shape == (2, case.arch.sizes[-1])


def test_cross_entropy_targets_are_probability_rows():
    for case in _sample(cases(architectures(losses=("cross_entropy",))), 50):
        assert (case.Y >= 0).all() and np.allclose(case.Y.sum(axis=1), 1.0)


@pytest.mark.parametrize(
    "kwargs",
    [dict(min_depth=0), dict(min_depth=3, max_depth=2), dict(min_width=0), dict(activations=("swish",)), dict(losses=("cross_entropy",), activations=("relu",)), dict(activations=("softmax",), min_depth=2)],
    ids=["depth-0", "depth-inverted", "width-0", "unknown-activation", "loss-impossible", "softmax-only-hidden"],
)
def test_bad_bounds_rejected_eagerly(kwargs):
    with pytest.raises(InvalidArgument):
        architectures(**kwargs)


def test_bad_batch_bounds_rejected():
    with pytest.raises(InvalidArgument):
        cases(min_batch=0)


def test_shrinks_to_readable_cases():
    """Bytes shrink toward 0 and decode to 0: the simplest case is all zeros on the smallest
    network, and a value that must exceed 1 shrinks to the next grid value, 1.25."""
    simplest = find(cases(), lambda case: True, settings=settings(database=None))
    assert simplest.describe() == "1-identity-1:mse, N=1"
    assert all(not a.any() for a in (*simplest.params[0], simplest.X, simplest.Y))
    large = find(cases(), lambda case: (np.abs(case.params[0][0]) > 1).any(), settings=settings(database=None))
    assert np.abs(large.params[0][0]).max() == 1.25 and large.arch.sizes == (1, 1), large.params
