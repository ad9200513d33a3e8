"""The strategies produce, on purpose, what uniform sampling would miss."""

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis.errors import InvalidArgument

from chainrule.directional import THRESHOLD
from chainrule.reference import KINKED, Architecture, forward
from chainrule.strategies import SEARCH, SMALL, Sizes, architectures, boundary_sizes, cases, fitted, limit_sizes

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


# --- sizes across scales ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def scaled():
    return _sample(cases(architectures(max_width=SEARCH.width, max_depth=SEARCH.depth), max_batch=SEARCH.batch, max_parameters=THRESHOLD), 400)


def _toy(case):
    return max(case.arch.sizes) <= SMALL.width and case.batch_size <= SMALL.batch and case.arch.depth <= SMALL.depth


@pytest.mark.parametrize(
    "what, predicate, at_least",
    [
        ("toy-sized (cheap, readable): about half the cases", _toy, 0.4),
        ("a layer wider than the toy scale", lambda c: max(c.arch.sizes) > SMALL.width, 0.1),
        ("a fan-in past a tile of 8 (9..15, 17..23, ...)", lambda c: any(w > 8 and w % 8 for w in c.arch.sizes[:-1]), 0.05),
        ("N past a chunk of 4 (5, 7, 9, ...)", lambda c: c.batch_size > 4 and c.batch_size % 4 > 0, 0.02),
        ("depth 6 or more", lambda c: c.arch.depth > SMALL.depth, 0.05),
    ],
    ids=["toy", "wide", "tile-edge", "chunk-edge", "deep"],
)
def test_sizes_are_drawn_across_scales(scaled, what, predicate, at_least):
    fraction = _fraction(scaled, predicate)
    assert fraction >= at_least, f"{what}: {fraction:.0%} of {len(scaled)} cases, expected at least {at_least:.0%}"


def test_the_bounds_and_the_boundary_sizes_are_reached(scaled):
    """Near the bounds and at many boundary sizes: which ones a sample reaches depends on its seed."""
    widths, batches = {w for c in scaled for w in c.arch.sizes}, {c.batch_size for c in scaled}
    assert len(widths - set(range(1, SMALL.width + 1))) >= 6 and max(widths) > SEARCH.width // 2, sorted(widths)
    assert len(batches - set(range(1, SMALL.batch + 1))) >= 2 and max(batches) > SEARCH.batch // 2, sorted(batches)
    assert max(c.arch.depth for c in scaled) >= SEARCH.depth - 1
    assert all(c.arch.parameter_count <= THRESHOLD for c in scaled), "the search's cases stay where every entry is compared"
    assert boundary_sizes(1, 129, 6) == (7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129)


def test_values_beyond_the_drawn_corner_come_from_the_seed_and_keep_their_kind():
    """A 129-wide layer is more than Hypothesis's 8 KiB of choices: beyond its toy-sized corner its
    values are decoded from one drawn seed, the same way (grid values stay on the grid, scaled by a
    power of two into a wide layer), never left 0."""
    wide = cases(architectures(min_width=129, max_width=129, max_depth=1, activations=("identity",)), min_batch=64, max_batch=64)
    drawn = _sample(wide, 30)
    assert len(drawn) == 30, "every draw fits Hypothesis's buffer"
    for case in drawn:
        W, X = case.params[0][0], case.X
        assert (W[6:, 6:] != 0).mean() > 0.5 and (X[4:, 6:] != 0).mean() > 0.5, case.describe()
        assert np.abs(W).max() <= 12 / 4, "weights into 129 inputs are scaled by 1/4"
    assert any((case.params[0][0] * 16 % 1 == 0).all() for case in drawn), "grid mode: the grid's quarters, scaled by 1/4, everywhere"


def test_fitted_cases_stay_within_the_work_budget():
    drawn = _sample(cases(architectures(max_width=SEARCH.width, max_depth=SEARCH.depth), max_batch=SEARCH.batch, max_work=2_000), 200)
    assert all(c.work <= 2_000 or _toy(c) for c in drawn), [c.describe() for c in drawn if c.work > 2_000 and not _toy(c)]
    assert any(max(c.arch.sizes) > SMALL.width for c in drawn), "a small budget still reaches past the toy scale"
    arch, n = fitted(Architecture.parse("129-tanh-129-identity-3:mse"), 64, THRESHOLD, 4_096)
    assert (str(arch), n) == ("17-tanh-17-identity-3:mse", 8), (str(arch), n)  # halved around powers of two: 129 -> 65 -> 33 -> 17, 64 -> ... -> 8


def test_a_large_size_shrinks_to_its_threshold():
    """Hypothesis shrinks toward the toy sizes, and a size that must pass an edge to its edge."""
    search = cases(architectures(max_width=SEARCH.width, max_depth=SEARCH.depth), max_batch=SEARCH.batch)
    enough = settings(database=None, max_examples=2000)
    tile = find(search, lambda c: any(w > 8 and w % 8 for w in c.arch.sizes[:-1]), settings=enough)
    assert max(tile.arch.sizes) == 9, tile.describe()
    chunk = find(search, lambda c: c.batch_size > 4 and c.batch_size % 4 > 0, settings=enough)
    assert chunk.batch_size == 5 and chunk.arch.sizes == (1, 1), chunk.describe()
    deep = find(search, lambda c: c.arch.depth >= 6, settings=enough)
    assert deep.arch.depth == 6 and max(deep.arch.sizes) == 1, deep.describe()


def test_size_limits_cap_every_bound():
    limit_sizes(width=12, batch=5, depth=3)
    try:
        drawn = _sample(cases(architectures(max_width=129, max_depth=10), max_batch=64), 100)
    finally:
        limit_sizes()
    assert all(max(c.arch.sizes) <= 12 and c.batch_size <= 5 and c.arch.depth <= 3 for c in drawn)
    assert max(max(c.arch.sizes) for c in drawn) == 12
    with pytest.raises(ValueError):
        Sizes(1, 1, 1).bounded(width=0)
