#!/usr/bin/env bash
# .venv-tf: TensorFlow (CPU) in a virtual environment of its own, for the gallery's TensorFlow
# member (tests/gallery/tf_net.py, over JSON lines), kept out of .venv: it is a ~600 MB install
# that only the thorough profile exercises. Idempotent: does nothing when it is there; two at once
# (pytest workers) make it once, under a lock.
#   bash scripts/tf-venv.sh [PYTHON]     (default python3; TensorFlow 2.21 needs 3.10 to 3.13)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv-tf
STAMP=$VENV/.installed
exec 9>"$VENV.lock"
flock 9
if [ -f "$STAMP" ]; then
  exit 0
fi
rm -rf "$VENV"  # what an interrupted run left
"${1:-python3}" -m venv "$VENV"
"$VENV/bin/pip" install --quiet --upgrade pip
"$VENV/bin/pip" install --quiet tensorflow-cpu==2.21.0 numpy==2.4.6
"$VENV/bin/python" -c "import tensorflow as tf; print('tensorflow', tf.__version__)"
touch "$STAMP"
