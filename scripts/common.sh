# Shared helpers for the four top-level scripts (sourced, not run).
# The repository root, the Python to use and the demo locations.
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python}"
DEMO_DIR="${PHYSIOCLR_DEMO_DIR:-$REPO_ROOT/runs/demo}"
DEMO_DATA="$DEMO_DIR/data/mitdb"

die() { echo "error: $*" >&2; exit 2; }

# Stop with one clear message when fairseq-signals cannot run here.
require_fairseq_signals() {
  "$PYTHON" - <<'PY' || exit 2
import sys
try:
    from physioclr_ext.runners.compat import UnsupportedEnvironment, check_environment
except ImportError as exc:
    sys.exit(f"physioclr_ext is not importable ({exc}); run `pip install -e .` in the repository first.")
try:
    check_environment()
except UnsupportedEnvironment as exc:
    sys.exit(str(exc))
PY
}

# Print the console script path or die: the launcher registers the plugin first.
console_script() {
  local name="$1" dir
  dir="$("$PYTHON" -c 'import os, sys; print(os.path.dirname(sys.executable))')"
  if [[ -x "$dir/$name" ]]; then echo "$dir/$name"; return; fi
  command -v "$name" >/dev/null 2>&1 && { command -v "$name"; return; }
  die "$name not found: run \`pip install -e .\` in $REPO_ROOT with the Python that has fairseq-signals"
}

abspath() { "$PYTHON" -c 'import os, sys; print(os.path.abspath(sys.argv[1]))' "$1"; }

# True when an override for KEY (KEY=..., +KEY=...) is among the remaining arguments.
has_override() {
  local key="$1"; shift
  local arg
  for arg in "$@"; do [[ "$arg" == "$key="* || "$arg" == "+$key="* ]] && return 0; done
  return 1
}

# Fit a config to the data's shape (preprocess.json: rate, leads, window length): sets the array
# SHAPE_OVERRIDES from `python -m physioclr_ext.runners.data_shape overrides ARGS...` (the user's overrides
# go after --, they win), or exits 2 with its one-line reason before anything trains.
data_shape_overrides() {
  local out
  out="$("$PYTHON" -m physioclr_ext.runners.data_shape overrides "$@")" || exit 2
  SHAPE_OVERRIDES=()
  [[ -z "$out" ]] || mapfile -t SHAPE_OVERRIDES <<< "$out"
}
