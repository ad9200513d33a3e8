"""Every gallery member through ``chainrule check`` on several seeds: a table of exit code, verdict
line and time per (member, seed), then the first lines of every rejection.

    .venv/bin/python tests/gallery/sweep.py                       # 5 seeds x 300 examples
    .venv/bin/python tests/gallery/sweep.py --seeds 1 2 --examples 60 --members article_numpy
    .venv/bin/python tests/gallery/sweep.py --bugged              # the bugged variants instead
    .venv/bin/python tests/gallery/sweep.py --members article_float32 plain32_js --precision float64
                                             # judged in float64, not the precision they declare

Not collected by pytest (tests/test_gallery.py is the CI half). Runs from any directory; the
checks run from the repository root, each in its own process, ``--jobs`` at a time.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.gallery import BUGGED, MEMBERS, PRECISIONS  # noqa: E402

FAILURE_LINES = 12  # of each rejection's output: the case, what differs, the start of the diagnosis
REPRODUCE_LINES = 10  # of its reproduction: the architecture, the parameters, X and Y
LINE_CHARS = 300  # a big network's parameters make lines of thousands


def check(arguments: list[str], seed: int, examples: int, timeout: float) -> tuple[int | str, str, float]:
    """(exit code or "timeout", combined output, seconds) of one ``chainrule check``."""
    command = [sys.executable, "-m", "chainrule", "check", *arguments, "--examples", str(examples), "--seed", str(seed)]
    start = time.perf_counter()
    try:
        done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as expired:
        output = (expired.stdout or b"").decode() if isinstance(expired.stdout, bytes) else (expired.stdout or "")
        return "timeout", output, time.perf_counter() - start
    return done.returncode, done.stdout + done.stderr, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--examples", type=int, default=300)
    parser.add_argument("--members", nargs="+", choices=sorted(MEMBERS), default=list(MEMBERS))
    parser.add_argument("--bugged", action="store_true", help="the bugged variants (each must exit 1)")
    parser.add_argument("--precision", default=None, help="judge every member in this precision (default: each one's declared)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per check")
    args = parser.parse_args(argv)

    table = BUGGED if args.bugged else MEMBERS
    table = {member: [*arguments, *(["--precision", args.precision] if args.precision else [])] for member, arguments in table.items()}
    members = [m for m in args.members if m in table and (table[m][0] != "--cmd" or shutil.which("node"))]
    skipped = sorted(set(args.members) & set(table) - set(members))
    runs = [(member, seed) for member in members for seed in args.seeds]
    with ThreadPoolExecutor(args.jobs) as pool:
        results = dict(zip(runs, pool.map(lambda run: check(table[run[0]], run[1], args.examples, args.timeout), runs)))

    def expected(member: str) -> int:
        """1 for a bug, or for a member judged in another precision than the one it declares."""
        return int(args.bugged or (args.precision is not None and PRECISIONS.get(member, "float64") != args.precision))

    width = max(len(m) for m in members)
    judged = f"judged in {args.precision}" if args.precision else "judged in the precision each declares"
    print(f"{'member':<{width}}  seed  exit  {'time':>6}  want  verdict ({args.examples} examples, {judged})")
    for (member, seed), (code, output, seconds) in results.items():
        first = next((line for line in output.splitlines() if line.strip()), "(no output)")
        print(f"{member:<{width}}  {seed:>4}  {code!s:>4}  {seconds:5.1f}s  {expected(member):>4}  {first}")
    for name in skipped:
        print(f"{name:<{width}}  skipped: node is not installed")

    unexpected = [(run, result) for run, result in results.items() if result[0] != expected(run[0])]
    for (member, seed), (code, output, _) in unexpected:
        print(f"\n--- {member}, seed {seed}: exit {code}")
        verdict, _, reproduce = output.partition("Reproduce:\n")
        print("\n".join(line[:LINE_CHARS] for line in verdict.rstrip().splitlines()[:FAILURE_LINES]))
        if reproduce:
            print("Reproduce:\n" + "\n".join(line[:LINE_CHARS] for line in reproduce.splitlines()[:REPRODUCE_LINES]))
    print(f"\n{len(results) - len(unexpected)} of {len(results)} checks exited as expected")
    return 0 if not unexpected else 1


if __name__ == "__main__":
    sys.exit(main())
