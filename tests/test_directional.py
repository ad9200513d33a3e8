"""Randomized directional checks (chainrule/directional.py): correct answers pass, wrong entries are named."""

import ast
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given

import chainrule.reference.activations
import chainrule.reference.network
from chainrule.directional import directional_check
from chainrule.kinks import rounding_ambiguous
from chainrule.reference import Architecture, Reference
from chainrule.status import Status
from chainrule.strategies import cases
from tests.broken import CATALOGUE

ROOT = Path(__file__).resolve().parents[1]
NETWORKS = {  # id: (architecture, weight scale); batch 8
    "relu-mse": ("12-relu-24-relu-16-identity-5:mse", 1.0),
    "leaky-elu-ce": ("12-leaky_relu-24-elu-16-softmax-5:cross_entropy", 2.0),
    "tanh-sigmoid-bce": ("12-tanh-24-sigmoid-16-sigmoid-5:binary_cross_entropy", 3.0),
    "gelu-silu-softplus": ("12-gelu-24-silu-16-softplus-5:mse", 1.0),
}


def _case(text: str, scale: float = 1.0, batch: int = 8, seed: int = 0):
    rng = np.random.default_rng(seed)
    arch = Architecture.parse(text)
    params = [(scale * rng.standard_normal((m, n)) / np.sqrt(n), 0.3 * rng.standard_normal(m)) for n, m in zip(arch.sizes, arch.sizes[1:])]
    X = rng.standard_normal((batch, arch.sizes[0]))
    if arch.loss == "cross_entropy":
        Y = rng.dirichlet(np.ones(arch.sizes[-1]), size=batch)
    elif arch.loss == "binary_cross_entropy":
        Y = rng.random((batch, arch.sizes[-1]))
    else:
        Y = rng.standard_normal((batch, arch.sizes[-1]))
    return arch, params, X, Y


def _answer(arch, params, X, Y):
    loss, grads = Reference().loss_and_gradients(arch, params, X, Y)
    return loss, [(dW.copy(), db.copy()) for dW, db in grads]


def _with_wrong(answer, entries, by=1e-3):
    """The answer with each (layer from 1, "W"/"b", index) entry moved by ``by`` of its tensor's largest entry."""
    loss, grads = answer
    grads = [(dW.copy(), db.copy()) for dW, db in grads]
    for layer, kind, index in entries:
        tensor = grads[layer - 1][0 if kind == "W" else 1]
        tensor[index] += by * np.abs(tensor).max()
    return loss, grads


def _named(result):
    return {(t.tensor.layer, t.tensor.kind, w.index) for t, w in result.wrong}


def _describe(result) -> str:
    return "; ".join(f"{t.name}: {t.status.value}, worst {t.worst:.3g}, named {[w.index for w in t.wrong]}" for t in result.tensors)


@pytest.mark.parametrize("network", list(NETWORKS))
def test_correct_answer_agrees(network):
    arch, params, X, Y = _case(*NETWORKS[network])
    result = directional_check(Reference(), arch, params, X, Y)
    assert result.status is Status.AGREE, f"got {result.status.value}, expected agree [{arch}]: {_describe(result)}"
    assert all(t.status is Status.AGREE and t.uncovered == 0 for t in result.tensors), _describe(result)


@given(cases())
def test_reference_never_disagrees_on_generated_cases(case):
    """Grid values, exact kinks (zero rows), saturated units, every activation and loss."""
    if rounding_ambiguous(case.arch, case.params, case.X):
        return
    result = directional_check(Reference(), case.arch, case.params, case.X, case.Y)
    assert result.status is not Status.DISAGREE, f"{case.describe()}: {_describe(result)}\n{case.reproduction()}"


def test_unit_exactly_on_a_kink_is_left_out_and_the_rest_agrees():
    """A relu unit whose weights and bias are 0 sits at z = 0 for every example: moving its row would
    cross the kink, so its entries are in no direction; a zero row deeper down stays at 0 and is no crossing."""
    arch, params, X, Y = _case(NETWORKS["relu-mse"][0])
    params[0][0][3], params[0][1][3] = 0.0, 0.0
    params[1][0][5], params[1][1][5] = 0.0, 0.0
    result = directional_check(Reference(), arch, params, X, Y)
    assert result.status is Status.AGREE, _describe(result)
    uncovered = {t.name: t.uncovered for t in result.tensors}
    assert uncovered["dL/dW[layer 1]"] == arch.sizes[0] and uncovered["dL/db[layer 1]"] == 1, uncovered
    assert uncovered["dL/dW[layer 2]"] == arch.sizes[1] and uncovered["dL/db[layer 2]"] == 1, uncovered


@pytest.mark.parametrize("z", [1e-9, -1e-9], ids=["above", "below"])
def test_kink_next_to_a_pre_activation_is_not_crossed(z):
    """A relu pre-activation 1e-9 from 0, for one example: the default step (about 6e-6) would cross
    it and the difference would average the two slopes; the check must shrink its step instead."""
    arch, params, X, Y = _case(NETWORKS["relu-mse"][0])
    W, b = params[0]
    b[2] = z - X[0] @ W[2]  # unit 2 of layer 1: Z[0, 2] = z
    assert abs(X[0] @ W[2] + b[2] - z) < 1e-15
    answer = _answer(arch, params, X, Y)
    result = directional_check(answer, arch, params, X, Y)
    assert result.status is Status.AGREE and not any(t.uncovered for t in result.tensors), _describe(result)
    wrong = directional_check(_with_wrong(answer, [(1, "b", (2,))]), arch, params, X, Y)
    assert _named(wrong) == {(1, "b", (2,))}, _describe(wrong)


def test_kink_in_a_deeper_layer_is_not_crossed():
    """Directions on layer 1 move every later pre-activation: one of layer 2, 1e-9 from 0, must make
    the check shrink the step it found too long (found only by comparing signs after the fact)."""
    arch, params, X, Y = _case(NETWORKS["relu-mse"][0])
    (W1, b1), (W2, b2) = params[0], params[1]
    A1 = np.maximum(X @ W1.T + b1, 0.0)
    b2[4] = 1e-9 - A1[0] @ W2[4]
    answer = _answer(arch, params, X, Y)
    result = directional_check(answer, arch, params, X, Y)
    assert result.status is Status.AGREE, _describe(result)
    wrong = directional_check(_with_wrong(answer, [(1, "W", (6, 2))]), arch, params, X, Y)
    assert _named(wrong) == {(1, "W", (6, 2))}, _describe(wrong)


def test_smooth_network_near_a_perfect_fit_agrees():
    """Where L is not quadratic along v and the gradient is tiny (outputs within 1e-7 of Y), D(h)'s
    truncation dwarfs the gradient: only the Richardson confirmation keeps a correct answer agreeing."""
    arch, params, X, _ = _case("12-softplus-24-tanh-16-silu-5:mse", 2.0)
    a = X
    for (W, b), name in zip(params, arch.activations):
        z = a @ W.T + b
        a = {"softplus": np.logaddexp(0.0, z), "tanh": np.tanh(z), "silu": z / (1.0 + np.exp(-z))}[name]
    Y = a + 1e-7 * np.random.default_rng(1).standard_normal(a.shape)
    result = directional_check(Reference(), arch, params, X, Y)
    assert result.status is Status.AGREE, _describe(result)


@pytest.mark.parametrize(
    "text, scale, bias, batch, residual, room",
    [("12-leaky_relu-32-relu-32-identity-6:mse", 8.0, 0.3, 5, 1e-7, 1.0), ("32-relu-128-relu-128-relu-128-identity-4:mse", 6.0, 1.0, 32, 1.0, 0.3)],
    ids=["near-fit", "large-outputs"],
)
def test_rounding_of_large_outputs_is_allowed_for(text, scale, bias, batch, residual, room):
    """Outputs of 1e3. Near a fit (residual 1e-7) y-hat - y cancels to a few digits, and every
    implementation's gradient is only that good: the outputs' rounding must be allowed for. Farther
    (residual 1) L carries rounding of about eps |y-hat| |y-hat - y| per term, far above eps |L|, which
    only evaluating the network summed otherwise shows: the check must keep room (here 0.04 of its
    bound is used; 0.6 were that measurement left out)."""
    rng = np.random.default_rng(0)
    arch = Architecture.parse(text)
    params = [(scale * rng.standard_normal((m, n)) / np.sqrt(n), bias * rng.standard_normal(m)) for n, m in zip(arch.sizes, arch.sizes[1:])]
    X = rng.standard_normal((batch, arch.sizes[0]))
    a = X
    for (W, b), name in zip(params, arch.activations):
        z = a @ W.T + b
        a = np.maximum(z, 0.01 * z) if name == "leaky_relu" else np.maximum(z, 0.0) if name == "relu" else z
    Y = a + residual * rng.standard_normal(a.shape)
    assert np.abs(a).max() > 300, "the outputs must be large"
    result = directional_check(Reference(), arch, params, X, Y)
    assert result.status is Status.AGREE and max(t.worst for t in result.tensors) <= room, _describe(result)


def test_saturated_softmax_whose_loss_is_quantized_agrees():
    """Found by the generated cases: p = 1 - 1.6e-12, L = log(1 + 1.6e-12) moves in steps of eps,
    which no reordering of the sums shows; the rounding allowance must still cover it."""
    arch = Architecture.parse("3-relu-3-softmax-2:cross_entropy")
    params = [
        (np.array([[0.0, 0.0, -7.390931595158442], [0.0, 11.999999999999998, -2.7725709186737184], [5.327931069651289, 10.335966824135973, -2.536788857812059]]),
         np.array([0.0, 10.468131634853922, 9.268057789753932])),
        (np.array([[0.0, 1.0, 8.140939241144274], [-9.546203226505177, 5.410511338575322, -3.0223656392565506]]), np.array([-11.0, 4.120624390920494])),
    ]
    X, Y = np.array([[-0.25188331658086227, 0.0, 0.0]]), np.array([[1.0, 0.0]])
    result = directional_check(Reference(), arch, params, X, Y)
    assert result.status is Status.AGREE, _describe(result)


def test_kink_within_rounding_is_left_out():
    """1e-13 from 0, no step is both kink-free and precise: the unit's entries are in no direction."""
    arch, params, X, Y = _case(NETWORKS["relu-mse"][0])
    W, b = params[0]
    b[2] = 1e-13 - X[0] @ W[2]
    result = directional_check(Reference(), arch, params, X, Y)
    assert result.status is Status.AGREE, _describe(result)
    uncovered = {t.name: t.uncovered for t in result.tensors}
    assert uncovered["dL/dW[layer 1]"] == arch.sizes[0] and uncovered["dL/db[layer 1]"] == 1, uncovered


@pytest.mark.parametrize("network", ["relu-mse", "leaky-elu-ce", "tanh-sigmoid-bce"])
@pytest.mark.parametrize("layer, kind", [(1, "W"), (1, "b"), (2, "W"), (3, "W"), (3, "b")])
def test_single_wrong_entry_is_named_exactly(network, layer, kind):
    arch, params, X, Y = _case(*NETWORKS[network])
    answer = _answer(arch, params, X, Y)
    shape = answer[1][layer - 1][0 if kind == "W" else 1].shape
    index = tuple(int(i) for i in np.unravel_index(np.random.default_rng(layer).integers(np.prod(shape)), shape))
    result = directional_check(_with_wrong(answer, [(layer, kind, index)]), arch, params, X, Y)
    assert result.status is Status.DISAGREE, _describe(result)
    assert _named(result) == {(layer, kind, index)}, f"named {_named(result)}, expected {(layer, kind, index)}: {_describe(result)}"
    entry = result.wrong[0][1]
    right = _answer(arch, params, X, Y)[1][layer - 1][0 if kind == "W" else 1][index]
    assert math.isclose(entry.expected, right, rel_tol=1e-6, abs_tol=1e-9), f"expected value {entry.expected!r}, true {right!r}"
    assert [t.name for t in result.tensors if t.status is Status.DISAGREE] == [f"dL/d{kind}[layer {layer}]"], _describe(result)


def test_several_wrong_entries_are_all_named():
    arch, params, X, Y = _case(NETWORKS["relu-mse"][0], batch=16)
    entries = [(1, "W", (0, 0)), (1, "W", (7, 3)), (1, "W", (23, 11)), (2, "W", (4, 4)), (2, "b", (9,)), (3, "W", (2, 15))]
    result = directional_check(_with_wrong(_answer(arch, params, X, Y), entries, by=1e-2), arch, params, X, Y)
    assert _named(result) == set(entries), f"named {sorted(_named(result))}, expected {sorted(entries)}"


def test_loss_error_alone_disagrees():
    arch, params, X, Y = _case(NETWORKS["relu-mse"][0])
    loss, grads = _answer(arch, params, X, Y)
    result = directional_check((loss * (1 + 1e-6), grads), arch, params, X, Y)
    assert result.status is Status.DISAGREE and not result.loss_agrees and not result.wrong


@pytest.mark.parametrize("k", [1, 2, 4])
@pytest.mark.parametrize("width", [64, 256])
def test_loss_evaluations_grow_as_k_log_p(k, width):
    """Localization costs O(k log P) loss evaluations for k wrong entries among P, not O(P)."""
    arch, params, X, Y = _case(f"{width}-relu-{width}-relu-8-identity-4:mse", batch=4)
    answer = _answer(arch, params, X, Y)
    baseline = directional_check(answer, arch, params, X, Y).forwards
    P = width * width
    rng = np.random.default_rng(k)
    entries = {(1, "W", tuple(int(i) for i in divmod(int(j), width))) for j in rng.choice(P, size=k, replace=False)}
    result = directional_check(_with_wrong(answer, sorted(entries), by=1e-2), arch, params, X, Y)
    assert _named(result) == entries
    spent = result.forwards - baseline
    assert spent <= 4 * k * math.log2(P) + 8, f"{spent} loss evaluations to name {k} of {P} entries, expected at most {4 * k * math.log2(P) + 8:.0f}"


def test_one_clear_wrong_entry_costs_fewer_evaluations_than_halving():
    """With a wide margin a coded split tells one of B parts per measurement: naming one wrong entry
    of 65,536 takes at most log2 P evaluations, where halving alone takes 2 log2 P."""
    arch, params, X, Y = _case("256-relu-256-relu-8-identity-4:mse", batch=4)
    answer = _answer(arch, params, X, Y)
    baseline = directional_check(answer, arch, params, X, Y).forwards
    result = directional_check(_with_wrong(answer, [(1, "W", (200, 17))], by=1e-2), arch, params, X, Y)
    assert _named(result) == {(1, "W", (200, 17))}
    assert result.forwards - baseline <= 16, f"{result.forwards - baseline} loss evaluations, expected at most log2(65536) = 16"


@pytest.mark.parametrize("bug", ["tanh_prime_of_z", "bias_averaged", "missing_sigma_prime", "mse_missing_two", "gelu_tanh_approximation"])
def test_broken_implementations_are_rejected(bug):
    activation = "gelu" if "gelu" in bug else "tanh"
    arch, params, X, Y = _case(f"12-{activation}-24-{activation}-16-identity-5:mse", batch=8)
    result = directional_check(CATALOGUE[bug], arch, params, X, Y)
    assert result.status is Status.DISAGREE and result.wrong, f"{bug}: {_describe(result)}"


def test_directional_module_does_not_import_the_reference():
    tree = ast.parse((ROOT / "chainrule" / "directional.py").read_text())
    imported = [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    imported += [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    assert not [name for name in imported if name.startswith("chainrule.reference")], imported


def test_directional_check_runs_without_the_reference_network(monkeypatch):
    """Its forward pass is its own: with the reference's forward and activations gone, it still judges."""

    arch, params, X, Y = _case(NETWORKS["leaky-elu-ce"][0], NETWORKS["leaky-elu-ce"][1])
    answer = _answer(arch, params, X, Y)

    def gone(*args, **kwargs):
        raise AssertionError("the reference's network was used")

    monkeypatch.setattr(chainrule.reference.network, "forward", gone)
    monkeypatch.setattr(chainrule.reference.network, "ACTIVATIONS", {})
    monkeypatch.setattr(chainrule.reference.activations, "ACTIVATIONS", {})
    assert directional_check(answer, arch, params, X, Y).status is Status.AGREE


def test_judge_by_size_records_the_method_by_size():
    from chainrule.case import random_case
    from chainrule.judge import judge_by_size
    from chainrule.oracles.registry import available
    from chainrule.sources.implementation import wrap

    implementation, judges = wrap(Reference()), available(["finite_differences"])
    small = judge_by_size(implementation, random_case(Architecture.parse("3-relu-4-identity-2:mse"), 2, seed=0), judges)
    big = judge_by_size(implementation, random_case(Architecture.parse("16-relu-64-relu-64-identity-4:mse"), 4, seed=0), judges, threshold=1000)
    assert (small.judged_by, small.status) == ("oracles", Status.AGREE)
    assert (big.judged_by, big.status, big.comparisons[0].oracle) == ("directional", Status.AGREE, "directional")


@pytest.mark.parametrize(
    "target, code, says",
    [("reference:Reference", 0, "agree (judged by random directional derivatives)"),
     ("tests.broken:tanh_prime_of_z", 1, "Reproduce:\nchainrule check tests.broken:tanh_prime_of_z --arch 32-tanh-700-identity-4:mse --batch 8 --seed 3")],
    ids=["reference", "broken"],
)
def test_check_arch_above_the_threshold_is_judged_by_directions(capsys, target, code, says):
    from chainrule.cli import main

    assert main(["check", target, "--arch", "32-tanh-700-identity-4:mse", "--batch", "8", "--seed", "3", "--oracles", "finite_differences"]) == code
    out = capsys.readouterr().out
    assert says in out, out
    if code:
        assert "(directional)" in out and "dL/d" in out, out


def test_check_arch_below_the_threshold_is_judged_by_the_oracles(capsys):
    from chainrule.cli import main

    assert main(["check", "reference:Reference", "--arch", "3-relu-2-identity-2:mse", "--seed", "1", "--oracles", "finite_differences"]) == 0
    assert "judged by oracles" in capsys.readouterr().out
    assert main(["check", "reference:Reference", "--arch", "3-relu-2"]) == 2
