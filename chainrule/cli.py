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
    check.add_argument("--timeout", type=float, default=10.0, help="seconds per call before a plug-in counts as hung")

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
    from oracles.registry import registry

    for registered in registry():
        info = registered.info
        state = f"{info.framework} {info.version}" if info.available else f"unavailable: {info.reason}"
        kind = "exact" if info.exact else "approximate"
        print(f"{info.name:<20} {kind:<12} {state}")
    return EXIT_AGREE


def _check(args) -> int:
    from oracles.crosscheck import CheckFailure, NoOracle, crosscheck
    from oracles.plugins import LoadError, load

    try:
        implementation = load(args.target)
    except LoadError as error:
        print(f"chainrule: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    try:
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
    print(summary)
    return EXIT_AGREE


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
