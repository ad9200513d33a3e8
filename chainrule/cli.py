"""The ``chainrule`` command: check, report, explain, oracles, bench.

Exit codes (docs/contract.md): 0 agreement, 1 a disagreement, 2 usage error or a plug-in that
cannot be loaded or started. ``check --json`` prints the verdict as one JSON document
(chainrule.jsonverdict) with the same exit codes, a usage error included.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shlex
import sys
from functools import partial

from chainrule import __version__
from chainrule.contract import PRECISION_NAMES
from chainrule.status import Exit

__all__ = ["main", "build_parser"]


class _UsageExit(SystemExit):
    """argparse's exit 2 for a usage error, carrying the message (for ``check --json``)."""

    def __init__(self, message: str):
        super().__init__(Exit.USAGE)
        self.message = message


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # usage errors exit 2 with one line, as argparse does, but never a traceback
        self.print_usage(sys.stderr)
        print(f"chainrule: error: {message}", file=sys.stderr)
        raise _UsageExit(message)


def _seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not seconds > 0:
        raise argparse.ArgumentTypeError(f"got {text!r}, expected a number of seconds > 0")
    return seconds


def _count(text: str) -> int:
    try:
        count = int(text)
    except ValueError:
        count = 0
    if count < 1:
        raise argparse.ArgumentTypeError(f"got {text!r}, expected a whole number >= 1")
    return count


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="chainrule", description="Proves neural-network gradients right.")
    parser.add_argument("--version", action="version", version=f"chainrule {__version__}")
    verbs = parser.add_subparsers(dest="verb", required=True, parser_class=_Parser)

    check = verbs.add_parser("check", help="verdict on one implementation against every available oracle")
    source = check.add_mutually_exclusive_group(required=True)
    source.add_argument("target", nargs="?", metavar="MODULE:ATTR", help="a Python implementation of the contract")
    source.add_argument("--cmd", metavar="COMMAND", help="a command speaking the JSON-lines protocol")
    check.add_argument("--examples", type=_count, default=200, help="generated cases (default 200)")
    check.add_argument("--seed", type=int, default=None, help="Hypothesis seed (default: random, printed)")
    check.add_argument("--oracles", nargs="+", metavar="NAME", default=None, help="judge with these oracles only")
    check.add_argument(
        "--arch", metavar="ARCH", default=None,
        help="judge one case of this architecture (e.g. 256-relu-1024-identity-10:mse) with random values from --seed, "
        "instead of generated small ones: above 20,000 parameters by random directional derivatives",
    )
    check.add_argument("--batch", type=int, default=32, metavar="N", help="examples in the --arch case (default 32)")
    check.add_argument(
        "--timeout", type=_seconds, default=10.0, metavar="SECONDS",  # chainrule.sources.implementation.DEFAULT_TIMEOUT
        help="seconds per call before the implementation counts as hung (default 10)",
    )
    check.add_argument(
        "--strict-numerics", action="store_true",
        help="numerical-range findings (where it stops being finite or within rounding) fail the check (exit 1) instead of warning",
    )
    check.add_argument("--json", action="store_true", help="the verdict as one JSON document on stdout (chainrule.jsonverdict)")
    _oracle_options(check)
    check.add_argument(
        "--precision", choices=PRECISION_NAMES, default=None,
        help="judge it in this precision (default: the one it declares, else float64): cases exactly representable there, "
        "noise floors of the article's formulas evaluated there",
    )
    check.add_argument(
        "--in-process", action="store_true",
        help="run a Python implementation in chainrule's own process (for debugging, e.g. under pdb) instead of a worker process",
    )
    check.add_argument(
        "--memory-limit", type=_count, default=None, metavar="BYTES",
        help="memory a Python implementation's worker process may use (default: the machine's physical memory)",
    )
    check.add_argument("--layers", nargs="+", metavar="NAME", default=None,
                       help="judge only these layers of a layer source (docs/layers.md); its networks are then not judged")
    check.add_argument("--layer", metavar="NAME", default=None, help="judge one case of this layer (with --config and --shapes)")
    check.add_argument("--config", metavar="JSON", default="{}", help='the --layer case\'s config, e.g. \'{"axis": 0}\' (default: the defaults)')
    check.add_argument("--shapes", metavar="SHAPES", default=None, help="the --layer case's input shapes, e.g. 'x=2,3 weight=4,3 bias=4'")
    check.add_argument("--layer-examples", type=_count, default=50, metavar="N", help="generated cases a layer (default 50)")
    for name, what, default in (("width", "units in any layer", 129), ("batch", "examples (N)", 64), ("depth", "layers", 10)):
        check.add_argument(
            f"--max-{name}", type=_count, default=None, metavar="N" if name == "batch" else name[0].upper(),
            help=f"at most this many {what} in a generated case (default {default}), for an implementation with known limits",
        )

    report = verbs.add_parser("report", help="HTML agreement report: DIR/index.html and DIR/results.json")
    report.add_argument("--impl", action="append", default=[], metavar="MODULE:ATTR")
    report.add_argument("--cmd", action="append", default=[], metavar="COMMAND")
    _oracle_options(report)
    report.add_argument("--out", default="reports/out", metavar="DIR")
    report.add_argument("--examples", type=_count, default=100)
    report.add_argument("--seed", type=int, default=0)
    report.add_argument("--jobs", type=int, default=1, help="processes for the sweep")
    report.add_argument("--layer-examples", type=_count, default=20, metavar="N", help="generated cases a declared layer (default 20)")

    explain = verbs.add_parser("explain", help="the article's worked example, every gradient as its chain-rule sum")
    explain.add_argument("arch", nargs="?", metavar="ARCH", help="e.g. 3-relu-2-identity-2:mse (default: the article's network)")
    explain.add_argument("--seed", type=int, default=0)

    oracles = verbs.add_parser("oracles", help="which oracles are available here, with versions, and the plugged-in ones with their qualification")
    _oracle_options(oracles)
    oracles.add_argument("--seed", type=int, default=0, help="seed of the plugged-in oracles' qualification runs (default 0)")

    bench = verbs.add_parser("bench", help="speed of the reference, the oracles and the checks, as ratios")
    bench.add_argument("--quick", action="store_true", help="a reduced set, under a minute")
    return parser


def _oracle_options(parser) -> None:
    parser.add_argument(
        "--oracle", action="append", default=[], metavar="MODULE:ATTR",
        help="plug in this Python source as an oracle (repeatable): it judges once it passes a qualification run against the built-in oracles",
    )
    parser.add_argument("--oracle-cmd", action="append", default=[], metavar="COMMAND", help="plug in this JSON-lines command as an oracle (repeatable)")


def _plugged_specs(args) -> list[tuple[str, str]]:
    """(kind, spec) of every plugged-in oracle: each --oracle, each --oracle-cmd, then every one
    installed under the entry-point group chainrule.oracles."""
    from chainrule.plugged import installed_oracle_names

    return ([("impl", spec) for spec in args.oracle] + [("cmd", spec) for spec in args.oracle_cmd]
            + [("entry", name) for name in installed_oracle_names()])


def _open_oracles(args, timeout: float | None = None, isolate: bool = True, memory_limit: int | None = None) -> list:
    """Every plugged-in oracle, loaded or started (LoadError, after closing those already open, when one cannot be)."""
    from chainrule.plugged import open_oracle

    opened = []
    try:
        for kind, spec in _plugged_specs(args):
            opened.append(open_oracle(kind, spec, timeout, isolate=isolate, memory_limit=memory_limit))
    except BaseException:
        for oracle in opened:
            oracle.close()
        raise
    return opened


def _oracles(args) -> int:
    from chainrule.oracles.registry import registry
    from chainrule.sources.faults import LoadError
    from chainrule.sources.load import ENTRY_POINT_GROUP, entry_point_implementations

    for registered in registry():
        info = registered.info
        state = f"{info.framework} {info.version}" if info.available else f"unavailable: {info.reason}"
        kind = "exact" if info.exact else "approximate"
        print(f"{info.name:<20} {kind:<12} {state}")
    code = _plugged_oracles(args)
    plugged = entry_point_implementations()
    print(f"\nplugged-in implementations (entry points, group {ENTRY_POINT_GROUP}): {len(plugged) or 'none installed'}")
    for name, loaded in plugged:
        if isinstance(loaded, LoadError):
            print(f"{name:<20} {'error':<12} cannot load: {loaded}")
        else:
            limits = f"; not exercised: {', '.join(loaded.unexercised)}" if loaded.unexercised else ""
            module = getattr(loaded.source, "module", None) or type(loaded.source).__module__  # a worker's: as it reported
            print(f"{name:<20} {'plug-in':<12} {loaded.name} ({module}){limits}")
            loaded.close()
    return code


def _plugged_oracles(args) -> Exit:
    """``oracles``: each plugged-in oracle (--oracle, --oracle-cmd, entry points in chainrule.oracles)
    with what it declares, qualified against the available built-in ones: exit 2 if one cannot
    be loaded or fails qualification."""
    from chainrule.oracles.registry import available
    from chainrule.plugged import ENTRY_POINT_GROUP, Disqualified, declared, open_oracle, qualify
    from chainrule.search import crosscheck
    from chainrule.sources.faults import LoadError

    specs, code = _plugged_specs(args), Exit.AGREE
    print(f"\nplugged-in oracles (--oracle, --oracle-cmd, entry points in group {ENTRY_POINT_GROUP}): {len(specs) or 'none'}")
    for kind, spec in specs:
        try:
            oracle = open_oracle(kind, spec)
        except LoadError as error:
            print(f"{spec:<20} {'error':<12} cannot load: {error}")
            code = Exit.USAGE
            continue
        try:
            print(f"{oracle.info.name:<20} {'plugged in':<12} {spec}: {declared(oracle)}")
            try:
                print(f"{'':<33}{qualify(oracle, available(), args.seed, crosscheck)}")
            except Disqualified as error:
                head = str(error).split("\n\n")
                print(f"{'':<33}{head[0]}")
                print("\n".join(f"{'':<33}{line}" for line in head[1].splitlines()[:12]) if len(head) > 1 else "")
                code = Exit.USAGE
        finally:
            oracle.close()
    return code


def _check(args) -> int:
    """``check``: the verdict as text, or with --json as one JSON document and nothing else on
    stdout (whatever is printed while judging goes to stderr then)."""
    stdout = sys.stdout

    def verdict(code: Exit, text: str | None, document) -> int:
        """Prints ``text``, or with --json the document ``document()`` builds; returns ``code``."""
        if args.json:
            from chainrule import jsonverdict

            print(jsonverdict.dumps(document()), file=stdout, flush=True)
        elif text is not None:
            print(text, file=stdout)
        return code

    with contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext():
        return _judge(args, verdict)


def _usage_error(message: str, implementation: str | None, verdict) -> int:
    """The one-line usage error on stderr, and with --json its document on stdout: exit 2."""
    from chainrule.jsonverdict import problem

    print(f"chainrule: error: {message}", file=sys.stderr)
    return verdict(Exit.USAGE, None, partial(problem, Exit.USAGE, message, implementation))


def _judge(args, verdict) -> int:
    from chainrule.jsonverdict import agreed, disqualified, failed, problem
    from chainrule.oracles.registry import available
    from chainrule.plugged import Disqualified
    from chainrule.search import CheckFailure, NoOracle, crosscheck
    from chainrule.sources.faults import LoadError
    from chainrule.sources.implementation import with_precision
    from chainrule.sources.load import open_source

    kind, spec = ("cmd", args.cmd) if args.cmd is not None else ("impl", args.target)
    try:
        implementation = with_precision(open_source(kind, spec, args.timeout, isolate=not args.in_process, memory_limit=args.memory_limit), args.precision)
    except LoadError as error:
        return _usage_error(str(error), spec, verdict)
    try:
        plugged = _open_oracles(args, args.timeout, isolate=not args.in_process, memory_limit=args.memory_limit)
    except LoadError as error:
        implementation.close()
        return _usage_error(f"oracle: {error}", spec, verdict)
    oracles = [*(args.oracles or []), *plugged] if plugged else args.oracles
    name, unexercised = implementation.name, implementation.unexercised
    layers_only = args.layers is not None or args.layer is not None
    if (implementation.layers and args.arch is None) or layers_only:  # --arch: one network case, no layers
        try:
            code, text, fields = _judge_layers(implementation, args)
        except ValueError as error:
            implementation.close()
            return _usage_error(str(error), name, verdict)
        if layers_only or not implementation.networks:
            implementation.close()
            return verdict(code, text, partial(_layers_document, code, name, fields, args))
        verdict = _with_layers(verdict, code, text, fields)
    try:
        if args.arch is not None:
            return _check_one(implementation, args, verdict, oracles)
        summary = crosscheck(
            implementation, examples=args.examples, seed=args.seed, oracles=oracles,
            max_width=args.max_width, max_batch=args.max_batch, max_depth=args.max_depth,
        )
    except CheckFailure as failure:
        judges = [r.info.name for r in available(args.oracles)] + [oracle.info.name for oracle in plugged]
        command = _command(args, "--examples", args.examples, "--seed", failure.seed)
        return verdict(Exit.DISAGREE, str(failure), partial(
            failed, failure.verdict, seed=failure.seed, diagnosis=failure.diagnosis, oracles=judges, examples=args.examples,
            not_exercised=unexercised, command=command, precision=implementation.precision.name,
        ))
    except NoOracle as error:
        print(f"chainrule: {error}", file=sys.stderr)
        return verdict(Exit.DISAGREE, None, partial(
            problem, Exit.DISAGREE, str(error), name, seed=args.seed, examples=args.examples, arch=args.arch,
            not_exercised=list(unexercised), precision=implementation.precision.name,
        ))
    except Disqualified as error:  # a plugged-in oracle that cannot judge: no verdict on the implementation
        return verdict(Exit.USAGE, str(error), partial(disqualified, error, name, seed=args.seed, examples=args.examples))
    except ValueError as error:
        return _usage_error(str(error), name, verdict)
    finally:
        implementation.close()
        for oracle in plugged:
            oracle.close()
    code = Exit.DISAGREE if args.strict_numerics and summary.numerical_range else Exit.AGREE
    return verdict(code, str(summary), partial(agreed, summary, examples=args.examples, strict_numerics=args.strict_numerics))


def _judge_layers(implementation, args) -> tuple[Exit, str, dict]:
    """The layer part of ``check`` (docs/layers.md): one --layer case, or every declared layer
    (--layers: these) searched. (exit code, text, the JSON document's layer fields)."""
    import random

    from chainrule.layers.contract import LAYER_NAMES
    from chainrule.layers.search import JUDGED

    def judged(names: list[str], option: str) -> None:
        unknown = [name for name in names if name not in LAYER_NAMES]
        if unknown:
            raise ValueError(f"{option}: unknown {', '.join(unknown)}; the contract's: {', '.join(LAYER_NAMES)}")
        later = [name for name in names if name not in JUDGED]
        if later:
            raise ValueError(f"{option}: {', '.join(later)} is in the contract, but this version of chainrule does not judge it yet")
    from chainrule.layers.text import format_layer_failure, format_layer_summary, layer_fields, verdict_fields

    seed = random.randrange(2**32) if args.seed is None else args.seed
    if args.layer is not None:
        from chainrule.layers.judge import judge_layer
        from chainrule.layers.strategies import given_case, parse_shapes
        from chainrule.oracles.layers import available

        judged([args.layer], "--layer")
        if args.shapes is None:
            raise ValueError("--layer needs --shapes, e.g. 'x=2,3 weight=4,3 bias=4'")
        try:
            config = json.loads(args.config)
        except json.JSONDecodeError as error:
            raise ValueError(f"--config is not JSON: {error}") from None
        case = given_case(args.layer, config, parse_shapes(args.shapes), seed)
        judged = judge_layer(implementation, case, available())
        text = format_layer_failure(judged, spec=args.target) if judged.failed else (
            f"{implementation.name}: {case.describe()} (seed {seed}): {judged.status.value}"
            + (f" ({judged.unsupported})" if judged.unsupported else ""))
        code = Exit.DISAGREE if judged.failed else Exit.USAGE if judged.unsupported else Exit.AGREE
        return code, text, verdict_fields(judged, seed)
    from chainrule.layers.search import check_layers

    judged(args.layers or [], "--layers")
    summary = check_layers(implementation, tuple(args.layers) if args.layers else None, examples=args.layer_examples, seed=seed)
    lines = [format_layer_summary(summary)]
    for result in summary.results:
        if result.failure is not None:
            lines += ["", format_layer_failure(result.failure, result.diagnosis, spec=args.target)]
    lines.append(f"(seed {seed}: {_command(args, '--seed', seed)})")
    if not summary.judged:
        lines.append("nothing could be judged: every case was unsupported or no evidence")
    code = Exit.DISAGREE if summary.failed else Exit.AGREE if summary.judged else Exit.USAGE
    return code, "\n".join(lines), layer_fields(summary, seed)


def _layers_document(code: Exit, name: str, fields: dict, args) -> dict:
    """The --json document of a check of layers only."""
    from chainrule.jsonverdict import layers_only

    return layers_only(code, name, fields, examples=args.layer_examples)


def _with_layers(verdict, layer_code: Exit, layer_text: str, fields: dict):
    """``verdict`` (see _check) for a source with networks and layers: the network verdict's text
    and document, the layers' after them, the worse exit code."""
    def combined(code: Exit, text: str | None, document) -> int:
        worst = Exit(max(code, layer_code))
        both = "\n\n".join(filter(None, [text, layer_text]))
        return verdict(worst, both, lambda: _combined_document(document(), worst, fields))
    return combined


def _combined_document(document: dict, code: Exit, fields: dict) -> dict:
    from chainrule.jsonverdict import STATUS_OF_EXIT

    status = document["status"] if code == document["exit_code"] else STATUS_OF_EXIT[code]
    return document | {"layers": fields["layers"], "exit_code": int(code), "status": status}


def _command(args, *options) -> str:
    """The ``chainrule check`` command line that judges the same source the same way, with ``options``."""
    source = ["--cmd", args.cmd] if args.cmd is not None else [args.target]
    judges = ["--oracles", *args.oracles] if args.oracles else []
    judges += [word for spec in args.oracle for word in ("--oracle", spec)] + [word for spec in args.oracle_cmd for word in ("--oracle-cmd", spec)]
    where = (["--in-process"] if args.in_process else []) + (["--memory-limit", str(args.memory_limit)] if args.memory_limit else [])
    where += ["--precision", args.precision] if args.precision else []
    where += (["--layers", *args.layers] if args.layers else []) + (["--layer-examples", str(args.layer_examples)] if args.layer_examples != 50 else [])
    given = {name: getattr(args, f"max_{name}", None) for name in ("width", "batch", "depth")} if args.arch is None else {}
    bounds = [word for name, bound in given.items() if bound is not None for word in (f"--max-{name}", str(bound))]
    return shlex.join(["chainrule", "check", *source, *map(str, options), *judges, *where, *bounds])


def _check_one(implementation, args, verdict, oracles=None) -> int:
    """``check --arch``: one case of a given architecture, judged by the method its size calls for
    (plugged-in ``oracles`` qualify first, and judge where every entry is compared)."""
    import random

    from chainrule.case import random_case
    from chainrule.jsonverdict import agreed, failed
    from chainrule.judge import judge_by_size
    from chainrule.plugged import qualify, resolve
    from chainrule.reference import Architecture
    from chainrule.search import NoOracle, crosscheck
    from chainrule.status import Status
    from chainrule.verdict import MAX_ENTRIES_SHOWN, format_entry, format_failure

    arch = Architecture.parse(args.arch)  # ValueError: a usage error
    if args.batch < 1:
        raise ValueError(f"--batch: got {args.batch}, need at least 1")
    seed = random.randrange(2**32) if args.seed is None else args.seed
    case = random_case(arch, args.batch, seed)
    builtins, plugged, _ = resolve(oracles)  # sources already opened by the caller
    if not builtins:
        raise NoOracle(f"no oracle is available to judge {implementation.name}")
    for oracle in plugged:
        print(qualify(oracle, builtins, seed, crosscheck), file=sys.stderr)
    judges = builtins + [oracle.registered for oracle in plugged]
    judged = judge_by_size(implementation, case, judges)
    code = Exit.DISAGREE if judged.failed else Exit.AGREE
    command = _command(args, "--arch", arch, "--batch", args.batch, "--seed", seed)
    if judged.failed:
        document = partial(
            failed, judged, seed=seed, oracles=[r.info.name for r in judges], arch=args.arch,
            not_exercised=implementation.unexercised, command=command, precision=implementation.precision.name,
        )
    else:
        document = partial(agreed, verdict=judged, seed=seed, arch=args.arch, not_exercised=implementation.unexercised,
                           precision=implementation.precision.name)
    where = f"{case.describe()}, {arch.parameter_count:,} parameters, seed {seed}"
    if judged.judged_by != "directional":
        text = format_failure(judged) if judged.failed else f"{implementation.name}: {where}: {judged.status.value} (judged by {judged.judged_by})"
        return verdict(code, text, document)
    lines = [f"{implementation.name}: {where}: {judged.status.value} (judged by random directional derivatives)"]
    if judged.fault is not None:
        lines.append(f"  fault ({judged.fault.kind}): {judged.fault.message}")
    for comparison in judged.comparisons:
        if comparison.status is Status.DISAGREE and not comparison.loss_agrees:
            lines.append(f"  loss: got {comparison.loss_got!r}, expected {comparison.loss_expected!r}")
        for tensor in comparison.disagreeing:
            lines += ["  " + format_entry(tensor, index, "directional", case.describe()) for index in tensor.bad[:MAX_ENTRIES_SHOWN]]
        lines.append(f"  note: {comparison.note}")
    if judged.failed:
        lines += ["", "Reproduce:", command]
    return verdict(code, "\n".join(lines), document)


def _report(args) -> int:
    from chainrule.reports.run import report_command

    return report_command(args)


def _explain(args) -> int:
    from chainrule.reports.explain import explain_command

    return explain_command(args)


def _bench(args) -> int:
    from chainrule.bench import bench_command

    return bench_command(args)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = build_parser().parse_args(argv)
    except _UsageExit as error:  # already told on stderr; ``check --json`` still owes its document
        if argv[:1] == ["check"] and "--json" in argv:
            from chainrule.jsonverdict import dumps, problem

            print(dumps(problem(Exit.USAGE, error.message)), flush=True)
        return Exit.USAGE
    handlers = {"check": _check, "report": _report, "explain": _explain, "oracles": _oracles, "bench": _bench}
    return handlers[args.verb](args)
