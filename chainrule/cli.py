"""The ``chainrule`` command: check, report, explain, oracles, bench.

Exit codes (CONTRACT.md): 0 agreement, 1 a disagreement, 2 usage error or a plug-in that
cannot be loaded or started.
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["main", "build_parser"]

EXIT_AGREE, EXIT_DISAGREE, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # usage errors exit 2 with one line, as argparse does, but never a traceback
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"chainrule: error: {message}\n")


def _seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not seconds > 0:
        raise argparse.ArgumentTypeError(f"got {text!r}, expected a number of seconds > 0")
    return seconds


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="chainrule", description="Proves neural-network gradients right.")
    verbs = parser.add_subparsers(dest="verb", required=True, parser_class=_Parser)

    check = verbs.add_parser("check", help="verdict on one implementation against every available oracle")
    source = check.add_mutually_exclusive_group(required=True)
    source.add_argument("target", nargs="?", metavar="MODULE:ATTR", help="a Python implementation of the contract")
    source.add_argument("--cmd", metavar="COMMAND", help="a command speaking the JSON-lines protocol")
    check.add_argument("--examples", type=int, default=200, help="generated cases (default 200)")
    check.add_argument("--seed", type=int, default=None, help="Hypothesis seed (default: random, printed)")
    check.add_argument("--oracles", nargs="+", metavar="NAME", default=None, help="judge with these oracles only")
    check.add_argument(
        "--arch", metavar="ARCH", default=None,
        help="judge one case of this architecture (e.g. 256-relu-1024-identity-10:mse) with random values from --seed, "
        "instead of generated small ones: above 20,000 parameters by random directional derivatives",
    )
    check.add_argument("--batch", type=int, default=32, metavar="N", help="examples in the --arch case (default 32)")
    check.add_argument(
        "--timeout", type=_seconds, default=10.0, metavar="SECONDS",  # oracles.plugins.DEFAULT_TIMEOUT
        help="seconds per call before the implementation counts as hung (default 10)",
    )

    report = verbs.add_parser("report", help="HTML agreement report: DIR/index.html and DIR/results.json")
    report.add_argument("--impl", action="append", default=[], metavar="MODULE:ATTR")
    report.add_argument("--cmd", action="append", default=[], metavar="COMMAND")
    report.add_argument("--out", default="reports/out", metavar="DIR")
    report.add_argument("--examples", type=int, default=100)
    report.add_argument("--seed", type=int, default=0)
    report.add_argument("--jobs", type=int, default=1, help="processes for the sweep")

    explain = verbs.add_parser("explain", help="the article's worked example, every gradient as its chain-rule sum")
    explain.add_argument("arch", nargs="?", metavar="ARCH", help="e.g. 3-relu-2-identity-2:mse (default: the article's network)")
    explain.add_argument("--seed", type=int, default=0)

    verbs.add_parser("oracles", help="which oracles are available here, with versions")

    bench = verbs.add_parser("bench", help="speed of the reference, the oracles and the checks, as ratios")
    bench.add_argument("--quick", action="store_true", help="a reduced set, under a minute")
    return parser


def _oracles(args) -> int:
    from oracles.plugins import ENTRY_POINT_GROUP, LoadError, entry_point_implementations
    from oracles.registry import registry

    for registered in registry():
        info = registered.info
        state = f"{info.framework} {info.version}" if info.available else f"unavailable: {info.reason}"
        kind = "exact" if info.exact else "approximate"
        print(f"{info.name:<20} {kind:<12} {state}")
    plugged = entry_point_implementations()
    print(f"\nplugged-in implementations (entry points, group {ENTRY_POINT_GROUP}): {len(plugged) or 'none installed'}")
    for name, loaded in plugged:
        if isinstance(loaded, LoadError):
            print(f"{name:<20} {'error':<12} cannot load: {loaded}")
        else:
            limits = f"; not exercised: {', '.join(loaded.unexercised)}" if loaded.unexercised else ""
            print(f"{name:<20} {'plug-in':<12} {loaded.name} ({type(loaded.source).__module__}){limits}")
    return EXIT_AGREE


def _check(args) -> int:
    from oracles.crosscheck import CheckFailure, NoOracle, crosscheck
    from oracles.plugins import LoadError, load, with_timeout

    try:
        if args.cmd is not None:
            from oracles.jsonlines import command

            implementation = command(args.cmd, timeout=args.timeout)
        else:
            implementation = with_timeout(load(args.target), args.timeout)
    except LoadError as error:
        print(f"chainrule: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    try:
        if args.arch is not None:
            return _check_one(implementation, args)
        summary = crosscheck(implementation, examples=args.examples, seed=args.seed, oracles=args.oracles)
    except CheckFailure as failure:
        print(failure)
        return EXIT_DISAGREE
    except NoOracle as error:
        print(f"chainrule: {error}", file=sys.stderr)
        return EXIT_DISAGREE
    except ValueError as error:
        print(f"chainrule: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        implementation.close()
    print(summary)
    return EXIT_AGREE


def _check_one(implementation, args) -> int:
    """``check --arch``: one case of a given architecture, judged by the method its size calls for."""
    import random

    from oracles.compare import Status
    from oracles.crosscheck import NoOracle, judge_case, random_case
    from oracles.registry import available
    from oracles.verdict import MAX_ENTRIES_SHOWN, format_entry, format_failure
    from reference import Architecture

    arch = Architecture.parse(args.arch)  # ValueError: a usage error
    if args.batch < 1:
        raise ValueError(f"--batch: got {args.batch}, need at least 1")
    seed = random.randrange(2**32) if args.seed is None else args.seed
    case = random_case(arch, args.batch, seed)
    judges = available(args.oracles)
    if not judges:
        raise NoOracle(f"no oracle is available to judge {implementation.name}")
    verdict = judge_case(implementation, case, judges)
    where = f"{case.describe()}, {arch.parameter_count:,} parameters, seed {seed}"
    if verdict.method != "directional":
        print(format_failure(verdict) if verdict.failed else f"{implementation.name}: {where}: {verdict.status.value} (judged by {verdict.method})")
        return EXIT_DISAGREE if verdict.failed else EXIT_AGREE
    lines = [f"{implementation.name}: {where}: {verdict.status.value} (judged by random directional derivatives)"]
    if verdict.fault is not None:
        lines.append(f"  fault ({verdict.fault.kind}): {verdict.fault.message}")
    for comparison in verdict.comparisons:
        if comparison.status is Status.DISAGREE and comparison.loss_error > 1e-10:
            lines.append(f"  loss: got {comparison.loss_got!r}, expected {comparison.loss_expected!r}")
        for tensor in comparison.disagreeing:
            lines += ["  " + format_entry(tensor, index, "directional", case.describe()) for index in tensor.bad[:MAX_ENTRIES_SHOWN]]
        lines.append(f"  note: {comparison.note}")
    if verdict.failed:
        target = f"--cmd {args.cmd!r}" if args.cmd is not None else args.target
        lines += ["", "Reproduce:", f"chainrule check {target} --arch {arch} --batch {args.batch} --seed {seed}"]
    print("\n".join(lines))
    return EXIT_DISAGREE if verdict.failed else EXIT_AGREE


def _report(args) -> int:
    from reports.run import report_command

    return report_command(args)


def _explain(args) -> int:
    from reports.explain import explain_command

    return explain_command(args)


def _bench(args) -> int:
    from chainrule.bench import bench_command

    return bench_command(args)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "examples", 1) < 1:
        print("chainrule: error: --examples must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    handlers = {"check": _check, "report": _report, "explain": _explain, "oracles": _oracles, "bench": _bench}
    return handlers[args.verb](args)
