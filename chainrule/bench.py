"""``chainrule bench``: how fast the reference, the oracles and the checks are, as ratios.

Everything is timed in one process (but the reference's side of the isolated crosscheck, which
runs in a worker process as every Python implementation does by default), one thread, float64,
on dense relu networks with an identity output and mse (the issue's four sizes), each figure over repeated runs (median and
min), the runs of figures that are compared interleaved so that they share the machine's
load. The ratios a script reads are printed last, one per line as ``name: value``; each is
the ratio of the two figures' minima (the least disturbed runs), and the table beside it
shows the medians' ratio too.

Threads are pinned before numpy is imported: ``bench_command`` runs the bench in a child
process with OMP_NUM_THREADS, OPENBLAS_NUM_THREADS, MKL_NUM_THREADS = 1 and XLA's CPU
thread pool off, and the child calls ``torch.set_num_threads(1)``.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from typing import Callable

__all__ = ["Net", "Plan", "FULL", "QUICK", "RATIOS", "Figure", "bench_command", "run"]

CHILD = "CHAINRULE_BENCH_CHILD"  # set in the child process, whose threads are pinned
THREADS = {
    "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
    "VECLIB_MAXIMUM_THREADS": "1", "NUMEXPR_NUM_THREADS": "1",
    "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
}
RATIOS = (
    "reference_over_torch_tiny", "reference_over_torch_small", "reference_over_torch_medium",
    "reference_over_torch_large", "reference_over_forward_large", "fd_speedup_over_naive_small",
    "fd_speedup_over_naive_medium", "randomized_over_torch_fast_large", "crosscheck_per_second_small",
    "crosscheck_per_second_small_in_process", "crosscheck_float32_over_float64_small",
    "layer_cases_per_second_small", "layer_cases_per_second_small_every_judge", "window_layer_cases_per_second_small",
    "reference_conv2d_over_torch_medium",
)
TARGETS = {  # the targets: (comparison, bound)
    "reference_over_torch_tiny": ("<=", 0.3), "reference_over_torch_small": ("<=", 0.3),
    "reference_over_torch_medium": ("<=", 1.1), "reference_over_torch_large": ("<=", 1.1),
    "reference_over_forward_large": ("<=", 3.5), "fd_speedup_over_naive_small": (">=", 10.0),
    "fd_speedup_over_naive_medium": (">=", 10.0), "randomized_over_torch_fast_large": ("<=", 1.0),
    "crosscheck_per_second_small": (">=", 100.0), "layer_cases_per_second_small": (">=", 50.0),
    "window_layer_cases_per_second_small": (">=", 20.0), "reference_conv2d_over_torch_medium": ("<=", 3.0),
}
WINDOWED = ("conv1d", "conv2d", "max_pool2d", "avg_pool2d", "attention")  # the layers of window_layer_cases_per_second_small
CONV2D_MEDIUM = {"x": (8, 16, 32, 32), "weight": (32, 16, 3, 3), "bias": (32,)}  # reference_conv2d_over_torch_medium, padding 1
LAYER_ENTRIES = 64  # "small shapes" of the layer figures: at most this many entries in a layer's main input
WRONG_BY = 1e-3  # the wrong answer: one entry of dL/dW[layer 1] times (1 + WRONG_BY)
MIN_SAMPLE = 0.02  # seconds: a fast call is repeated until one timed sample lasts this long


@dataclass(frozen=True)
class Net:
    """A dense relu network with an identity output and mse, and its batch size."""

    sizes: tuple[int, ...]
    batch: int

    def __str__(self) -> str:
        return "-".join(map(str, self.sizes)) + f", N={self.batch}"


@dataclass(frozen=True)
class Plan:
    """What one bench run measures and how often."""

    nets: dict[str, Net]  # tiny, small, medium, large
    repeats: int = 5  # timed runs per figure
    naive_sample: int = 300  # entries of medium timed with the naive per-entry loop, then extrapolated
    crosscheck_examples: int = 300  # generated cases per timed crosscheck run (then its coverage cases)
    crosscheck_repeats: int = 3
    seed: int = 0
    min_sample: float = MIN_SAMPLE  # seconds: a fast call is repeated until one timed sample lasts this long
    layer_examples: int = 20  # generated cases a layer per timed layer run (every layer of the contract)


FULL = Plan({
    "tiny": Net((3, 2, 2), 1), "small": Net((10, 32, 32, 5), 16),
    "medium": Net((64, 256, 256, 10), 64), "large": Net((256, 1024, 1024, 1024, 10), 128),
})
QUICK = replace(FULL, nets={**FULL.nets, "large": Net((128, 512, 512, 10), 64)},
                repeats=3, naive_sample=100, crosscheck_examples=60, crosscheck_repeats=2, layer_examples=8)


@dataclass
class Figure:
    """Seconds per call of one thing on one network, over repeated runs."""

    name: str
    net: str
    seconds: list[float] = field(default_factory=list)
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.seconds) if self.seconds else float("nan")

    @property
    def min(self) -> float:
        return min(self.seconds) if self.seconds else float("nan")


def _calls_per_sample(f: Callable[[], object], min_sample: float) -> int:
    start = time.perf_counter()
    f()
    once = time.perf_counter() - start
    return max(1, int(min_sample / max(once, 1e-7)))


def _interleaved(figures: list[tuple[Figure, Callable[[], object]]], plan: Plan, repeats: int | None = None) -> None:
    """Time each callable ``repeats`` times, taking turns, so that compared figures share the load."""
    repeats = plan.repeats if repeats is None else repeats
    counts = [_calls_per_sample(f, plan.min_sample) for _, f in figures]
    for _ in range(repeats):
        for (figure, f), count in zip(figures, counts):
            start = time.perf_counter()
            for _ in range(count):
                f()
            figure.seconds.append((time.perf_counter() - start) / count)


# ----------------------------------------------------------------------------- the networks


def _case(net: Net, seed: int):
    """(arch, params, X, Y) of chainrule.case.random_case for the net: relu layers, identity output, mse."""
    from chainrule.case import random_case
    from chainrule.reference import Architecture

    case = random_case(Architecture(net.sizes, ("relu",) * (len(net.sizes) - 2) + ("identity",), "mse"), net.batch, seed)
    return case.arch, case.params, case.X, case.Y


def _torch_functions(arch, params, X, Y):
    """Torch eager loss + gradient (numpy in, numpy out, no copies), and the loss of flat tensors for gradcheck."""
    import torch

    Xt, Yt = torch.from_numpy(X), torch.from_numpy(Y)

    def loss_of(*flat):
        a = Xt
        for l, name in enumerate(arch.activations):
            z = a @ flat[2 * l].T + flat[2 * l + 1]
            a = torch.relu(z) if name == "relu" else z
        return ((a - Yt) ** 2).sum() / len(X)

    def loss_and_gradients():
        leaves = [torch.from_numpy(t).requires_grad_() for pair in params for t in pair]
        loss = loss_of(*leaves)
        flat = torch.autograd.grad(loss, leaves)
        return loss.item(), [(flat[i].numpy(), flat[i + 1].numpy()) for i in range(0, len(flat), 2)]

    return loss_and_gradients, loss_of


def _jax_functions(arch, params, X, Y):
    """JAX loss + gradient, eager (op by op) and jitted, numpy in and out."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    jax.config.update("jax_enable_x64", True)

    def loss(flat, X, Y):
        a = X
        for l, name in enumerate(arch.activations):
            z = a @ flat[2 * l].T + flat[2 * l + 1]
            a = jax.nn.relu(z) if name == "relu" else z
        return jnp.sum((a - Y) ** 2) / X.shape[0]

    flat = [t for pair in params for t in pair]
    grad, jitted = jax.value_and_grad(loss), jax.jit(jax.value_and_grad(loss))

    def call(f):
        def run():
            value, g = f(flat, X, Y)
            return float(value), [np.asarray(t) for t in g]
        return run

    return call(grad), call(jitted)


# ----------------------------------------------------------------------------- the figures


def _gradients(plan: Plan, figures: dict, notes: list[str]) -> None:
    """One loss + gradient per framework and net; the reference's forward pass."""
    from chainrule.reference import LOSSES, Reference, forward

    reference = Reference()
    for label, net in plan.nets.items():
        arch, params, X, Y = _case(net, plan.seed)
        loss = LOSSES[arch.loss]

        def forward_pass(arch=arch, params=params, X=X, Y=Y, loss=loss):
            output = forward(arch, params, X)[-1]
            return loss.value(output.z, output.a, Y)

        contenders = [
            (Figure("reference loss+gradient", label), lambda a=arch, p=params, x=X, y=Y: reference.loss_and_gradients(a, p, x, y)),
            (Figure("reference forward+loss", label), forward_pass),
        ]
        try:
            import torch

            torch.set_num_threads(1)
            contenders.append((Figure("torch eager loss+gradient", label), _torch_functions(arch, params, X, Y)[0]))
        except ImportError as error:
            notes.append(f"torch: {error}")
        try:
            eager, jitted = _jax_functions(arch, params, X, Y)
            start = time.perf_counter()
            jitted()
            compile_seconds = time.perf_counter() - start
            eager()
            contenders += [(Figure("jax eager loss+gradient", label), eager),
                           (Figure("jax jit loss+gradient (steady)", label, note=f"compile {compile_seconds:.2f} s"), jitted)]
        except ImportError as error:
            notes.append(f"jax: {error}")
        _interleaved(contenders, plan)
        for figure, _ in contenders:
            figures[(figure.name, label)] = figure


def _naive_differences(arch, params, X, Y, entries) -> None:
    """The per-entry loop: two full forward passes per entry, central difference."""
    import numpy as np

    from chainrule.oracles.finite_differences import STEP
    from chainrule.reference import LOSSES, forward

    params = [(W.copy(), b.copy()) for W, b in params]
    loss = LOSSES[arch.loss]
    for l, which, index in entries:
        theta = params[l][which]
        original = theta[index]
        h = STEP * max(1.0, abs(original))
        values = []
        for moved in (original + h, original - h):
            theta[index] = moved
            output = forward(arch, params, X)[-1]
            values.append(loss.value(output.z, output.a, Y))
        theta[index] = original
        np.float64((values[0] - values[1]) / (2.0 * h))


def _differences(plan: Plan, figures: dict) -> None:
    """The structural finite-difference oracle against the naive per-entry loop."""
    import numpy as np

    from chainrule.oracles.finite_differences import FiniteDifferences

    oracle = FiniteDifferences()
    for label in ("small", "medium"):
        arch, params, X, Y = _case(plan.nets[label], plan.seed)
        entries = [(l, which, index) for l, pair in enumerate(params) for which, t in enumerate(pair) for index in np.ndindex(t.shape)]
        total = len(entries)
        if label == "medium":
            rng = np.random.default_rng(plan.seed)
            entries = [entries[i] for i in rng.choice(total, size=min(plan.naive_sample, total), replace=False)]
        naive = Figure("naive per-entry central differences", label,
                       note="" if len(entries) == total else f"{len(entries)} of {total} entries timed, extrapolated")
        structural = Figure("finite_differences oracle (structural)", label)
        timed_naive = Figure("", label)
        _interleaved([(structural, lambda: oracle.gradients(arch, params, X, Y)),
                      (timed_naive, lambda: _naive_differences(arch, params, X, Y, entries))], plan, max(1, plan.repeats // 2))
        naive.seconds = [s * total / len(entries) for s in timed_naive.seconds]
        figures[(structural.name, label)] = structural
        figures[(naive.name, label)] = naive


def _wrong_answer(answer, seed: int):
    """The answer with one entry of dL/dW[layer 1] (one of magnitude at least the median) off by WRONG_BY."""
    import numpy as np

    loss, grads = answer
    grads = [(dW.copy(), db.copy()) for dW, db in grads]
    dW = grads[0][0]
    candidates = np.flatnonzero(np.abs(dW).ravel() >= np.median(np.abs(dW)))
    index = np.unravel_index(int(np.random.default_rng(seed).choice(candidates)), dW.shape)
    dW[index] *= 1.0 + WRONG_BY
    return (loss, grads), (0, "W", tuple(int(i) for i in index))


def _randomized(plan: Plan, figures: dict, notes: list[str]) -> None:
    """torch.autograd.gradcheck(fast_mode=True) against the directional check, on the large net."""
    from chainrule.directional import directional_check
    from chainrule.reference import Reference

    arch, params, X, Y = _case(plan.nets["large"], plan.seed)
    reference = Reference()
    _, wrong = _wrong_answer(reference.loss_and_gradients(arch, params, X, Y), plan.seed)
    outcomes = {}

    def check(correct: bool):
        answer = reference.loss_and_gradients(arch, params, X, Y)
        if not correct:
            answer, _ = _wrong_answer(answer, plan.seed)
        result = directional_check(answer, arch, params, X, Y, seed=plan.seed)
        outcomes[correct] = result
        return result

    contenders = [
        (Figure("directional check, correct answer", "large"), lambda: check(True)),
        (Figure("directional check, one wrong entry", "large"), lambda: check(False)),
    ]
    try:
        import torch

        torch.set_num_threads(1)
        _, loss_of = _torch_functions(arch, params, X, Y)
        inputs = [torch.tensor(t, requires_grad=True) for pair in params for t in pair]
        contenders.insert(0, (Figure("torch gradcheck fast_mode", "large"), lambda: torch.autograd.gradcheck(loss_of, inputs, fast_mode=True)))
    except ImportError as error:
        notes.append(f"torch: {error}")
    _interleaved(contenders, plan)
    for figure, _ in contenders:
        figures[(figure.name, "large")] = figure
    good, bad = outcomes[True], outcomes[False]
    named = [(t.tensor.layer, t.tensor.kind, w.index) for t, w in bad.wrong]
    figures[("directional check, correct answer", "large")].note = f"{good.status.value}, {good.forwards} loss evaluations"
    figures[("directional check, one wrong entry", "large")].note = (
        f"{bad.status.value}, {bad.forwards} loss evaluations, named {named or 'nothing'}"
        + ("" if named == [(1, "W", wrong[2])] else f" (the wrong entry is dL/dW[layer 1]{list(wrong[2])}: NOT localized)")
    )


def _crosscheck(plan: Plan, figures: dict, notes: list[str]) -> None:
    """Seconds per small architecture judged against every available oracle: the generated ones
    and the coverage cases judged after them (one per declared pairing), over the whole run; the
    reference in a worker process (as every Python implementation runs by default) and, on the
    same cases, in this process (``--in-process``), and in this process judged in float32 (its
    cases rounded to float32, floors of float32's noise). The worker's start is timed apart."""
    from chainrule.oracles.registry import available
    from chainrule.search import crosscheck
    from chainrule.sources.implementation import with_precision
    from chainrule.sources.load import REFERENCE, open_source

    start = time.perf_counter()
    isolated = open_source("impl", REFERENCE)
    started = Figure("worker process start", "small", [time.perf_counter() - start], "python -m chainrule.sources.serve: imports, load, describe")
    in_process = open_source("impl", REFERENCE, isolate=False)
    float32 = with_precision(in_process, "float32")
    try:
        start = time.perf_counter()
        for implementation in (isolated, in_process, float32):
            crosscheck(implementation, examples=5, seed=plan.seed)  # imports, oracle construction, JAX compilation
        warm = time.perf_counter() - start
        names = ", ".join(r.info.name for r in available())
        runs = [(Figure("crosscheck per architecture", "small"), isolated), (Figure("crosscheck per architecture, in-process", "small"), in_process),
                (Figure("crosscheck per architecture, in-process, float32", "small"), float32)]
        for run in range(plan.crosscheck_repeats):  # interleaved: both share the machine's load
            for figure, implementation in runs:
                start = time.perf_counter()
                summary = crosscheck(implementation, examples=plan.crosscheck_examples, seed=plan.seed + 1 + run)
                judged = len(summary.verdicts) + len(summary.covered)
                figure.seconds.append((time.perf_counter() - start) / max(1, judged))
                figure.note = (
                    f"{'in a worker process' if implementation is isolated else 'in this process'}, in {implementation.precision}, against {names}; "
                    f"{len(summary.verdicts)} generated + {len(summary.covered)} coverage cases a run; warm-up {warm:.1f} s excluded"
                )
    finally:
        isolated.close()
    for figure, _ in runs:
        figures[(figure.name, "small")] = figure
    figures[(started.name, "small")] = started


def _layers(plan: Plan, figures: dict, notes: list[str]) -> None:
    """Seconds per layer case on small shapes (every layer of the contract, the reference as the
    source in a worker process): as the engine judges (torch and finite differences on every
    case, JAX where it has compiled the shapes and on every disputed case), and with every judge
    on every case (JAX compiling each new shape)."""
    import dataclasses

    from chainrule.layers.search import check_layers
    from chainrule.oracles.layers import available
    from chainrule.sources.load import REFERENCE, open_source

    source = open_source("impl", REFERENCE)
    engine = available()
    every = [dataclasses.replace(judge, compiled=None) for judge in engine]
    runs = [(Figure("layer case, judged as the engine does", "small"), engine), (Figure("layer case, every judge on every case", "small"), every)]
    windowed = Figure("layer case: conv, pooling, attention", "small")
    try:
        check_layers(source, examples=2, seed=plan.seed, max_entries=LAYER_ENTRIES)  # the worker, imports, first compilations
        for run in range(plan.crosscheck_repeats):
            for figure, judges in runs:
                start = time.perf_counter()
                summary = check_layers(source, examples=plan.layer_examples, seed=plan.seed + 1 + run, judges=judges, max_entries=LAYER_ENTRIES)
                cases = sum(r.agreed + r.no_evidence for r in summary.results)
                figure.seconds.append((time.perf_counter() - start) / max(1, cases))
                figure.note = (f"{len(summary.results)} layers x {plan.layer_examples} cases, at most {LAYER_ENTRIES} entries, "
                               f"against {', '.join(j.name for j in judges)}; the reference in a worker process")
                if judges is engine:  # the same run, its conv, pooling and attention cases alone
                    results = [r for r in summary.results if r.layer in WINDOWED]
                    windowed.seconds.append(sum(r.seconds for r in results) / max(1, sum(r.agreed + r.no_evidence for r in results)))
                    windowed.note = f"{len(results)} layers of the run above: {', '.join(r.layer for r in results)}"
                if summary.failed:
                    notes.append(f"{figure.name}: the reference FAILED on {[r.layer for r in summary.results if r.failure]}")
    finally:
        source.close()
    for figure, _ in runs:
        figures[(figure.name, "small")] = figure
    figures[(windowed.name, "small")] = windowed


def _conv2d(plan: Plan, figures: dict) -> None:
    """The reference's conv2d forward + VJP against torch's (F.conv2d, then autograd.grad) at
    CONV2D_MEDIUM, padding 1, float64, interleaved."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    from chainrule.layers.contract import full_config
    from chainrule.reference.layers import vjp

    rng = np.random.default_rng(plan.seed)
    config = full_config("conv2d", {"padding": 1})
    inputs = {name: rng.standard_normal(shape) for name, shape in CONV2D_MEDIUM.items()}
    dy = rng.standard_normal((8, 32, 32, 32))
    tensors = {name: torch.tensor(a, requires_grad=True) for name, a in inputs.items()}
    cotangent = torch.tensor(dy)

    def torch_vjp():
        y = F.conv2d(tensors["x"], tensors["weight"], tensors["bias"], padding=1)
        return torch.autograd.grad(y, list(tensors.values()), cotangent)

    note = f"x {CONV2D_MEDIUM['x']}, weight {CONV2D_MEDIUM['weight']}, padding 1"
    reference, torched = Figure("reference conv2d forward+VJP", "medium", note=note), Figure("torch conv2d forward+VJP", "medium", note=note)
    _interleaved([(reference, lambda: vjp("conv2d", config, inputs, dy)), (torched, torch_vjp)], plan)
    figures[(reference.name, "medium")] = reference
    figures[(torched.name, "medium")] = torched


def _ratios(figures: dict) -> dict[str, tuple[float, float]]:
    """Each ratio from the figures' minima, and from their medians."""

    def ratio(a, b):
        if a not in figures or b not in figures:
            return float("nan"), float("nan")
        x, y = figures[a], figures[b]
        return x.min / y.min, x.median / y.median

    ratios = {f"reference_over_torch_{size}": ratio(("reference loss+gradient", size), ("torch eager loss+gradient", size))
              for size in ("tiny", "small", "medium", "large")}
    ratios["reference_over_forward_large"] = ratio(("reference loss+gradient", "large"), ("reference forward+loss", "large"))
    for size in ("small", "medium"):
        ratios[f"fd_speedup_over_naive_{size}"] = ratio(("naive per-entry central differences", size), ("finite_differences oracle (structural)", size))
    ratios["randomized_over_torch_fast_large"] = ratio(("directional check, one wrong entry", "large"), ("torch gradcheck fast_mode", "large"))
    for name, figure in (("crosscheck_per_second_small", "crosscheck per architecture"),
                         ("crosscheck_per_second_small_in_process", "crosscheck per architecture, in-process")):
        crosscheck = figures.get((figure, "small"))
        ratios[name] = (1.0 / crosscheck.min, 1.0 / crosscheck.median) if crosscheck else (float("nan"),) * 2
    for name, figure in (("layer_cases_per_second_small", "layer case, judged as the engine does"),
                         ("layer_cases_per_second_small_every_judge", "layer case, every judge on every case")):
        layer = figures.get((figure, "small"))
        ratios[name] = (1.0 / layer.min, 1.0 / layer.median) if layer else (float("nan"),) * 2
    windowed = figures.get(("layer case: conv, pooling, attention", "small"))
    ratios["window_layer_cases_per_second_small"] = (1.0 / windowed.min, 1.0 / windowed.median) if windowed else (float("nan"),) * 2
    ratios["reference_conv2d_over_torch_medium"] = ratio(("reference conv2d forward+VJP", "medium"), ("torch conv2d forward+VJP", "medium"))
    ratios["crosscheck_float32_over_float64_small"] = ratio(
        ("crosscheck per architecture, in-process, float32", "small"), ("crosscheck per architecture, in-process", "small"))
    return ratios


def _seconds(s: float) -> str:
    if s != s:
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if s >= scale:
            return f"{s / scale:.3g} {unit}"
    return f"{s * 1e9:.3g} ns"


def _report(plan: Plan, figures: dict, ratios: dict, notes: list[str], out) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(file=out, width=150)
    nets = Table(title="networks (dense relu, identity output, mse, float64, one thread)")
    for column in ("name", "sizes", "parameters"):
        nets.add_column(column)
    for label, net in plan.nets.items():
        nets.add_row(label, str(net), f"{sum((n + 1) * m for n, m in zip(net.sizes, net.sizes[1:])):,}")
    console.print(nets)
    table = Table(title=f"seconds per call, over {plan.repeats} runs (crosscheck: {plan.crosscheck_repeats} runs of {plan.crosscheck_examples} generated cases and the coverage cases)")
    for column in ("figure", "net", "median", "min", "runs", "note"):  # a note's verdict ("named [(1, 'W', (3, 4))]") on one line
        table.add_column(column, justify="right" if column in ("median", "min", "runs") else "left", min_width=60 if column == "note" else None)
    for (name, label), figure in figures.items():
        table.add_row(name, label, _seconds(figure.median), _seconds(figure.min), str(len(figure.seconds)), figure.note)
    console.print(table)
    summary = Table(title="ratios (the lines below the table: from the minima)")
    for column in ("ratio", "from minima", "from medians", "target"):
        summary.add_column(column)
    for name in RATIOS:
        best, typical = ratios[name]
        target = TARGETS.get(name)
        verdict = ""
        if target:
            met = best <= target[1] if target[0] == "<=" else best >= target[1]
            verdict = f"{target[0]} {target[1]:g}: {'met' if met else 'NOT met'}"
        summary.add_row(name, f"{best:.4g}", f"{typical:.4g}", verdict)
    console.print(summary)
    for note in notes:
        console.print(f"note: {note}")
    for name in RATIOS:
        print(f"{name}: {ratios[name][0]:.6g}", file=out)


def run(plan: Plan = FULL, out=None) -> dict[str, float]:
    """Measure everything in this process (threads as they are) and print the report; the ratios."""
    out = out or sys.stdout
    figures: dict[tuple[str, str], Figure] = {}
    notes: list[str] = []
    _gradients(plan, figures, notes)
    _differences(plan, figures)
    _randomized(plan, figures, notes)
    _crosscheck(plan, figures, notes)
    _layers(plan, figures, notes)
    _conv2d(plan, figures)
    ratios = _ratios(figures)
    _report(plan, figures, ratios, notes, out)
    out.flush()
    return {name: value[0] for name, value in ratios.items()}


def bench_command(args) -> int:
    """``chainrule bench [--quick]``: re-run in a child process with one thread everywhere."""
    if os.environ.get(CHILD) != "1":
        command = [sys.executable, "-m", "chainrule", "bench"] + (["--quick"] if args.quick else [])
        return subprocess.run(command, env={**os.environ, **THREADS, CHILD: "1"}).returncode
    start = time.perf_counter()
    run(QUICK if args.quick else FULL)
    print(f"(bench took {time.perf_counter() - start:.0f} s)")
    return 0
