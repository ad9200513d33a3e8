#!/usr/bin/env bash
# Tests the wheel as a user gets it: build it from this checkout, check what it contains,
# install it with its [torch,jax,test] extras into a fresh venv outside the checkout, and run
# the command line and the shipped property suite from a directory that is not the checkout
# (so the checkout's folders cannot shadow the installed package).
#
#   bash scripts/test-wheel.sh [PYTHON]     PYTHON builds the wheel (default: .venv/bin/python)
#
# Exit 0 when every step passed; 1 otherwise, with the failing steps named in the summary.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_PYTHON="${1:-$ROOT/.venv/bin/python}"
case "$BUILD_PYTHON" in
    /*) ;;
    */*) BUILD_PYTHON="$PWD/$BUILD_PYTHON" ;;  # `make` passes .venv/bin/python; the build runs elsewhere
    *) BUILD_PYTHON="$(command -v "$BUILD_PYTHON")" || { echo "test-wheel: no $1 on PATH" >&2; exit 1; } ;;
esac
CONSTRAINTS="$ROOT/constraints.txt"
EXAMPLES="$ROOT/examples/python"
START=$SECONDS

WORK="$(mktemp -d "${TMPDIR:-/tmp}/chainrule-wheel.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
case "$WORK/" in "$ROOT"/*) echo "test-wheel: temp dir $WORK lies inside the checkout" >&2; exit 1 ;; esac
SRC="$WORK/src"      # a copy of the checkout's files: the build writes build/ and *.egg-info there, not here
DIST="$WORK/dist"    # the wheel
VENV="$WORK/venv"    # the fresh install
RUN="$WORK/run"      # the working directory for the commands
mkdir -p "$DIST" "$RUN"

step() { printf '\n=== %s (%ds)\n' "$*" "$((SECONDS - START))"; }
die() { printf 'test-wheel: FAILED: %s\n' "$*" >&2; exit 1; }

# --- 1. build ----------------------------------------------------------------------------------
step "copy the checkout's files (tracked and untracked, not ignored) to $SRC"
"$BUILD_PYTHON" - "$ROOT" "$SRC" <<'EOF'
import os, shutil, subprocess, sys
root, dest = sys.argv[1:]
try:
    listed = subprocess.run(["git", "-C", root, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            check=True, capture_output=True).stdout.decode().split("\0")
except (OSError, subprocess.CalledProcessError):  # not a git checkout: everything but the usual outputs
    skip = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".hypothesis", ".pytest_cache")
    shutil.copytree(root, dest, ignore=skip)
    sys.exit(0)
for name in filter(None, listed):
    source = os.path.join(root, name)
    if os.path.isfile(source):  # skips deletions not yet staged
        os.makedirs(os.path.dirname(os.path.join(dest, name)), exist_ok=True)
        shutil.copy2(source, os.path.join(dest, name))
EOF

step "build the wheel: $BUILD_PYTHON -m pip wheel --no-deps -v"
LOG="$WORK/build.log"
# PYTHONDONTWRITEBYTECODE would make setuptools print "warning: byte-compiling is disabled".
if ! (cd "$SRC" && env -u PYTHONDONTWRITEBYTECODE "$BUILD_PYTHON" -m pip wheel --no-deps --no-cache-dir -v -w "$DIST" .) \
        >"$LOG" 2>&1; then
    tail -n 60 "$LOG"
    die "the wheel did not build (log above)"
fi
# -v shows the build backend's own output. pip's note about this machine's find-links
# ("WARNING: Location 'file:///opt/...' is ignored") is not a build warning.
grep -inE 'warning|deprecat' "$LOG" | grep -vE '^[0-9]+:[[:space:]]*WARNING: Location ' >"$WORK/warnings" || true
if [ -s "$WORK/warnings" ]; then
    echo "the build warned; the offending lines (line number: text):"
    cat "$WORK/warnings"
    echo "--- each with the lines after it in the build log:"
    awk -F: 'NR == FNR { want[$1] = 1; next } { for (n in want) if (FNR >= n + 0 && FNR <= n + 12) { print FNR ": " $0; break } }' \
        "$WORK/warnings" "$LOG"
    die "the wheel build printed warnings"
fi
shopt -s nullglob
WHEELS=("$DIST"/chainrule-*.whl)
shopt -u nullglob
[ "${#WHEELS[@]}" -eq 1 ] || die "expected one chainrule wheel in $DIST, found: $(ls "$DIST")"
WHEEL="${WHEELS[0]}"
echo "built $(basename "$WHEEL") with no build warnings"

# --- 2. contents -------------------------------------------------------------------------------
step "check the wheel's contents"
"$BUILD_PYTHON" - "$WHEEL" <<'EOF' || die "the wheel's contents are wrong"
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
top = sorted({name.split("/")[0] for name in names})
others = [t for t in top if t != "chainrule" and not t.endswith(".dist-info")]
ok = True
print("top-level entries:", ", ".join(top))
if others or "chainrule" not in top:
    print("expected the one top-level package chainrule/ (and *.dist-info), found also:", ", ".join(others) or "(no chainrule/)")
    ok = False
for required in ["chainrule/reports/templates/report.html"]:
    if required not in names:
        print("missing from the wheel:", required)
        ok = False
print("packages:", ", ".join(sorted({n.rsplit("/", 1)[0] for n in names if n.endswith("/__init__.py")})))
sys.exit(0 if ok else 1)
EOF

# --- 3. install --------------------------------------------------------------------------------
step "fresh venv in $VENV; install $(basename "$WHEEL")[torch,jax,test] -c constraints.txt"
"$BUILD_PYTHON" -m venv "$VENV"
# --no-compile: byte-compiling all of torch and jax up front costs time that one run never earns back.
# pip's notes about this machine's find-links ("WARNING: Location ... is ignored") are left out.
set +e
(cd "$RUN" && "$VENV/bin/python" -m pip install --quiet --no-compile -c "$CONSTRAINTS" "$WHEEL[torch,jax,test]") 2>&1 \
    | grep -v '^WARNING: Location '
status=("${PIPESTATUS[@]}")
set -e
[ "${status[0]}" -eq 0 ] || die "installing the wheel failed (exit ${status[0]})"
"$VENV/bin/python" -m pip list --format=freeze 2>/dev/null | grep -iE '^(chainrule|torch|jax|jaxlib|numpy|pytest)==' || true

# --- 4. use ------------------------------------------------------------------------------------
step "run the installed chainrule from $RUN"
cd "$RUN"
unset PYTHONPATH PYTHONHOME PYTHONSTARTUP PYTHONDONTWRITEBYTECODE
export PYTHONPYCACHEPREFIX="$WORK/pycache"  # bytecode is cached between the commands, and never written into the checkout
export PATH="$VENV/bin:$PATH" VIRTUAL_ENV="$VENV"
PY="$VENV/bin/python"
CR="$VENV/bin/chainrule"
VERSION="$(basename "$WHEEL" | cut -d- -f2)"

SUMMARY=()
FAILED=0
# expect STATUS LABEL COMMAND...: run COMMAND (LABEL says what it runs), record whether it exited with STATUS.
expect() {
    local want="$1" label="$2" rc=0 t0=$SECONDS verdict
    shift 2
    printf '\n$ %s\n' "$label"
    "$@" || rc=$?
    if [ "$rc" -eq "$want" ]; then verdict="ok  "; else verdict="FAIL"; FAILED=1; fi
    printf -- '-> exit %d (expected %d) %s, %ds\n' "$rc" "$want" "$verdict" "$((SECONDS - t0))"
    SUMMARY+=("$(printf '%s exit %d (expected %d) %3ds  %s' "$verdict" "$rc" "$want" "$((SECONDS - t0))" "$label")")
}

# expect_later STATUS LABEL COMMAND...: as expect, but started in the background now (its output
# kept apart, stdin empty); expect_collected waits for all of them and then reports each in the
# order started, with its output. The commands after ``chainrule oracles`` (which has put torch's
# and JAX's bytecode in the cache) are independent: run side by side, they take the time of the
# longest instead of the sum.
LATER_WANT=()
LATER_LABEL=()
expect_later() {
    local n=${#LATER_WANT[@]}
    LATER_WANT+=("$1")
    LATER_LABEL+=("$2")
    shift 2
    (
        t0=$SECONDS rc=0
        "$@" >"$WORK/later.$n.log" 2>&1 || rc=$?
        echo "$rc $((SECONDS - t0))" >"$WORK/later.$n.rc"
    ) </dev/null &
}
expect_collected() {
    local n rc took verdict
    wait
    for n in "${!LATER_WANT[@]}"; do
        read -r rc took <"$WORK/later.$n.rc" || { rc=255 took=0; }
        printf '\n$ %s\n' "${LATER_LABEL[$n]}"
        cat "$WORK/later.$n.log"
        if [ "$rc" -eq "${LATER_WANT[$n]}" ]; then verdict="ok  "; else verdict="FAIL"; FAILED=1; fi
        printf -- '-> exit %d (expected %d) %s, %ds (run beside the others)\n' "$rc" "${LATER_WANT[$n]}" "$verdict" "$took"
        SUMMARY+=("$(printf '%s exit %d (expected %d) %3ds  %s' "$verdict" "$rc" "${LATER_WANT[$n]}" "$took" "${LATER_LABEL[$n]}")")
    done
    LATER_WANT=()
    LATER_LABEL=()
}

version() { "$CR" --version | tee "$WORK/version"; grep -qF "$VERSION" "$WORK/version" || { echo "expected version $VERSION" >&2; return 1; }; }
expect 0 "chainrule --version" version

expect 0 "python -c <chainrule is the one top-level name, imported from the venv>" "$PY" - "$ROOT" <<'PYEOF'
# chainrule is imported from the venv, not the checkout, and installs one top-level name.
import importlib.metadata as md, importlib.util, os, sys
root = os.path.realpath(sys.argv[1])
import chainrule
where = os.path.realpath(chainrule.__file__)
print("chainrule", chainrule.__version__, "from", where)
assert not where.startswith(root + os.sep), f"imported from the checkout: {where}"
assert chainrule.__version__ == md.version("chainrule"), (chainrule.__version__, md.version("chainrule"))
top = {p.parts[0] for p in md.files("chainrule") if p.parts[0] != ".." and not p.parts[0].endswith(".dist-info")}
print("top-level names installed by the chainrule distribution:", sorted(top))
assert top == {"chainrule"}, top
for name in ["reference", "oracles", "reports", "suite", "tests", "sources"]:
    spec = importlib.util.find_spec(name)
    assert spec is None, f"top-level {name!r} is importable: {spec.origin}"
PYEOF

expect 0 "chainrule oracles" "$CR" oracles
expect_later 0 "chainrule check --cmd 'python examples/python/backprop.py' --examples 20 --seed 1" \
    "$CR" check --cmd "$PY $EXAMPLES/backprop.py" --examples 20 --seed 1
expect_later 1 "chainrule check --cmd 'python examples/python/wrong_backprop.py' --examples 20 --seed 1" \
    "$CR" check --cmd "$PY $EXAMPLES/wrong_backprop.py" --examples 20 --seed 1

layers() {  # the README's layer check: a layer source loaded as MODULE:ATTR from the working directory
    cp "$EXAMPLES/layers.py" ./layers.py && "$CR" check "layers:$1" --seed 1 --layer-examples 20
}
expect_later 0 "chainrule check layers:Layers --seed 1 --layer-examples 20 (examples/python/layers.py)" layers Layers
expect_later 1 "chainrule check layers:WrongSoftmax --seed 1 --layer-examples 20 (examples/python/layers.py)" layers WrongSoftmax

report() {
    "$CR" report --out ./out --examples 10 || return
    ls -l out/index.html out/results.json
}
expect_later 0 "chainrule report --out ./out --examples 10 (+ out/index.html, out/results.json)" report
expect_later 0 "chainrule explain" "$CR" explain

suite() {
    if ! "$PY" -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec("chainrule.suite") is None)'; then
        echo "test-wheel: chainrule.suite is not in the installed wheel (tests/suite -> chainrule.suite): the shipped property suite is missing" >&2
        return 3
    fi
    "$PY" -m pytest -p no:cacheprovider -q --pyargs chainrule.suite \
        --chainrule-cmd "$PY $EXAMPLES/backprop.py" --chainrule-examples 10
}
expect_later 0 "python -m pytest -p no:cacheprovider -q --pyargs chainrule.suite --chainrule-cmd 'python examples/python/backprop.py' --chainrule-examples 10" suite
expect_collected

printf '\n=== summary: %s, %ds in all\n' "$(basename "$WHEEL")" "$((SECONDS - START))"
printf '%s\n' "${SUMMARY[@]}"
[ "$FAILED" -eq 0 ] || die "some commands did not exit as expected (FAIL above)"
echo "test-wheel: ok"
