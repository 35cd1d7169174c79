#!/usr/bin/env bash
# Build the training environment in one command: a Python 3.10 virtual environment with torch,
# fairseq-signals (its extensions built) at the README's version pins, and this package.
set -euo pipefail

FSS_COMMIT_DEFAULT="6b9e1375bbe6bc2e55ff4d9b95eabe8eee3adec7"  # Jwoo5/fairseq-signals, the commit tested
CACHE_ROOT="${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/physioclr-ext"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

PREFIX="$CACHE_ROOT/venv310"
TORCH_SPEC="torch==2.13.0"
TORCH_INDEX_CPU="https://download.pytorch.org/whl/cpu"
TORCH_INDEX="$TORCH_INDEX_CPU"
FSS=""
FSS_COMMIT="$FSS_COMMIT_DEFAULT"
PYTHON310=""
DRY_RUN=0
BUILD_PINS=("pip<24.1")
PINS=("numpy<2" "hydra-core==1.0.7" "omegaconf==2.0.6" "transformers<4.40" "cython" "setuptools" "wheel")

usage() {
  cat <<EOF
Usage: $(basename "$0") --fairseq-signals PATH|URL [--prefix DIR] [--torch SPEC] [--torch-index URL]
                  [--commit SHA] [--python PATH] [--dry-run]

Builds the training environment of physioclr-ext in one command:
  1. finds Python 3.10 (python3.10 on PATH, then pyenv; fairseq-signals runs on 3.9/3.10 only)
  2. a virtual environment at --prefix
  3. pip<24.1 (newer pip rejects omegaconf 2.0.6's metadata)
  4. torch (--torch SPEC)
  5. the pins: ${PINS[*]}
  6. fairseq-signals: the folder given, or a clone of the git URL given at --commit
  7. fairseq-signals installed editable, its Cython/C++ extensions built (--no-build-isolation)
  8. this package with its test extras (pip install -e "$REPO_ROOT[test]")
  9. the environment check (physioclr_ext.runners.compat.check_environment)
Steps already done are skipped, so running it again is safe and fast.

Options:
  --fairseq-signals PATH|URL  a fairseq-signals checkout, or a git URL to clone (cloned only then, into
                      $CACHE_ROOT/fairseq-signals); not needed when the environment already has it
  --commit SHA        commit of a cloned fairseq-signals (default $FSS_COMMIT_DEFAULT, the one tested)
  --prefix DIR        the virtual environment (default $CACHE_ROOT/venv310)
  --torch SPEC        the torch requirement (default $TORCH_SPEC)
  --torch-index URL   package index for torch only (default $TORCH_INDEX_CPU, the CPU build;
                      a CUDA build: e.g. https://download.pytorch.org/whl/cu126 with a --torch
                      version it serves; "default" uses pip's own index)
  --python PATH       the Python 3.10 interpreter to use
  --dry-run           print each step and its command, change nothing
  -h, --help          this help

Then: source DIR/bin/activate, and run the demo and the tests as the command printed at the end says.
EOF
}

die() { echo "error: $*" >&2; exit 2; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --prefix) [[ $# -ge 2 && -n "$2" ]] || die "--prefix needs a directory"; PREFIX="$2"; shift 2 ;;
    --torch) [[ $# -ge 2 && -n "$2" ]] || die "--torch needs a requirement, e.g. torch==2.13.0"; TORCH_SPEC="$2"; shift 2 ;;
    --torch-index) [[ $# -ge 2 && -n "$2" ]] || die "--torch-index needs a URL"; TORCH_INDEX="$2"; shift 2 ;;
    --fairseq-signals) [[ $# -ge 2 && -n "$2" ]] || die "--fairseq-signals needs a folder or a git URL"; FSS="$2"; shift 2 ;;
    --commit) [[ $# -ge 2 && -n "$2" ]] || die "--commit needs a commit"; FSS_COMMIT="$2"; shift 2 ;;
    --python) [[ $# -ge 2 && -n "$2" ]] || die "--python needs an interpreter"; PYTHON310="$2"; shift 2 ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
[[ "$TORCH_SPEC" == torch* ]] || die "--torch $TORCH_SPEC: give a torch requirement, e.g. torch==2.13.0"
case "$PREFIX" in /*) ;; *) PREFIX="$PWD/$PREFIX" ;; esac
PREFIX="${PREFIX%/}"

is_url() { [[ "$1" == *://* || "$1" == git@* ]]; }
FSS_CLONE="$(dirname "$PREFIX")/fairseq-signals"
if [[ -n "$FSS" ]] && ! is_url "$FSS"; then
  [[ -d "$FSS" ]] || die "--fairseq-signals $FSS: no such folder (give a fairseq-signals checkout or a git URL)"
  [[ -f "$FSS/setup.py" && -d "$FSS/fairseq_signals" ]] \
    || die "--fairseq-signals $FSS: not a fairseq-signals checkout (no setup.py and fairseq_signals/)"
  FSS="$(cd "$FSS" && pwd)"
fi

STEP=0
TOTAL=9
step() { STEP=$((STEP + 1)); echo "[$STEP/$TOTAL] $*"; }
# run CMD...: the command, or only its text with --dry-run.
run() {
  local text
  text="$(printf '%q ' "$@")"
  if [[ $DRY_RUN -eq 1 ]]; then echo "    would run: ${text% }"; else echo "    \$ ${text% }"; "$@"; fi
}
skip() { echo "    done already: $*"; }

# python_version PY: "3.10" for a working interpreter, nothing otherwise.
python_version() { "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || true; }

find_python310() {
  local candidates=() root
  [[ -n "$PYTHON310" ]] && candidates+=("$PYTHON310")
  command -v python3.10 >/dev/null 2>&1 && candidates+=("$(command -v python3.10)")
  if command -v pyenv >/dev/null 2>&1; then
    root="$(pyenv root 2>/dev/null || true)"
    [[ -n "$root" ]] && candidates+=("$root"/versions/3.10*/bin/python3.10)
  fi
  [[ -n "${PYENV_ROOT:-}" ]] && candidates+=("$PYENV_ROOT"/versions/3.10*/bin/python3.10)
  local py
  for py in "${candidates[@]}"; do
    [[ -x "$py" && "$(python_version "$py")" == "3.10" ]] && { echo "$py"; return 0; }
  done
  return 1
}

# satisfied REQ...: every requirement installed in the environment at a matching version.
satisfied() {
  [[ -x "$VPY" ]] || return 1
  "$VPY" - "$@" <<'PY' >/dev/null 2>&1
import sys
from importlib.metadata import PackageNotFoundError, version
from pip._vendor.packaging.requirements import Requirement

for text in sys.argv[1:]:
    req = Requirement(text)
    try:
        found = version(req.name)
    except PackageNotFoundError:
        sys.exit(1)
    if req.specifier and not req.specifier.contains(found, prereleases=True):
        sys.exit(1)
PY
}

# imports_ok CODE [ARG...]: the Python CODE exits 0 in the environment (ARGs in sys.argv[1:]).
imports_ok() { [[ -x "$VPY" ]] && (cd / && "$VPY" -c "$@" >/dev/null 2>&1); }

step "Python 3.10"
if [[ -n "$PYTHON310" ]] && [[ "$(python_version "$PYTHON310")" != "3.10" ]]; then
  die "--python $PYTHON310 is not a working Python 3.10 (it answers \"$(python_version "$PYTHON310")\")"
fi
PY310="$(find_python310)" || die "Python 3.10 not found (fairseq-signals runs on Python 3.9/3.10 only): install it \
(e.g. \`pyenv install 3.10\`, or your system's python3.10 package) and run this again, or pass --python PATH"
echo "    using $PY310"

VPY="$PREFIX/bin/python"
step "virtual environment $PREFIX"
if [[ $DRY_RUN -eq 0 && -x "$VPY" && "$(python_version "$VPY")" == "3.10" ]]; then
  skip "$VPY is Python 3.10"
else
  [[ $DRY_RUN -eq 1 || ! -e "$PREFIX" || -z "$(ls -A "$PREFIX" 2>/dev/null)" ]] \
    || die "$PREFIX exists and is not a Python 3.10 environment; remove it or pass another --prefix"
  run "$PY310" -m venv "$PREFIX"
fi

pip_install() { run "$VPY" -m pip install "$@"; }

step "pip<24.1"
if [[ $DRY_RUN -eq 0 ]] && satisfied "${BUILD_PINS[@]}"; then skip "${BUILD_PINS[*]}"; else pip_install "${BUILD_PINS[@]}"; fi

step "torch ($TORCH_SPEC)"
if [[ $DRY_RUN -eq 0 ]] && satisfied "$TORCH_SPEC"; then
  skip "$("$VPY" -c 'import torch; print("torch", torch.__version__)')"
elif [[ "$TORCH_INDEX" == default ]]; then
  pip_install "$TORCH_SPEC"
else
  pip_install --index-url "$TORCH_INDEX" "$TORCH_SPEC" \
    || die "could not install $TORCH_SPEC from $TORCH_INDEX (pip's message above); pass --torch-index default to use \
pip's own index, or another index URL"
fi

step "version pins"
if [[ $DRY_RUN -eq 0 ]] && satisfied "${PINS[@]}"; then skip "${PINS[*]}"; else pip_install "${PINS[@]}"; fi

step "fairseq-signals source"
if [[ -z "$FSS" ]]; then
  if [[ $DRY_RUN -eq 0 ]] && imports_ok "import fairseq_signals.data.data_utils_fast"; then
    FSS="$("$VPY" -c 'import fairseq_signals, os; print(os.path.dirname(os.path.dirname(fairseq_signals.__file__)))')"
    skip "fairseq-signals installed from $FSS"
  elif [[ $DRY_RUN -eq 1 ]]; then
    echo "    would use the fairseq-signals of the environment if it has one; otherwise pass --fairseq-signals"
    FSS="<--fairseq-signals>"
  else
    die "pass --fairseq-signals PATH (a checkout) or a git URL of Jwoo5/fairseq-signals (cloned at $FSS_COMMIT)"
  fi
elif is_url "$FSS"; then
  if [[ -d "$FSS_CLONE/.git" && "$(git -C "$FSS_CLONE" rev-parse HEAD 2>/dev/null)" == "$FSS_COMMIT"* ]]; then
    skip "$FSS_CLONE at $FSS_COMMIT"
  else
    [[ $DRY_RUN -eq 1 ]] || command -v git >/dev/null 2>&1 || die "git is needed to clone $FSS"
    if [[ ! -d "$FSS_CLONE/.git" ]]; then
      run git clone "$FSS" "$FSS_CLONE"
    elif ! git -C "$FSS_CLONE" cat-file -e "$FSS_COMMIT^{commit}" 2>/dev/null; then
      run git -C "$FSS_CLONE" fetch origin  # a clone made for another commit
    fi
    run git -C "$FSS_CLONE" checkout --detach "$FSS_COMMIT"
  fi
  FSS="$FSS_CLONE"
else
  echo "    using the checkout $FSS"
fi

step "fairseq-signals with its extensions"
# shellcheck disable=SC2016
from_folder='import importlib, os, sys
mod = importlib.import_module(sys.argv[1])
sys.exit(not os.path.realpath(mod.__file__).startswith(os.path.realpath(sys.argv[2]) + os.sep))'
if [[ $DRY_RUN -eq 0 ]] && imports_ok "import fairseq_signals.data.data_utils_fast" \
  && imports_ok "$from_folder" fairseq_signals "$FSS"; then
  skip "fairseq_signals imports from $FSS, data_utils_fast built"
else
  pip_install --no-build-isolation -e "$FSS"
fi

step "physioclr-ext (this package, with its test extras)"
if [[ $DRY_RUN -eq 0 ]] && imports_ok "import pytest" && imports_ok "$from_folder" physioclr_ext "$REPO_ROOT"; then
  skip "physioclr_ext imports from $REPO_ROOT"
else
  pip_install -e "$REPO_ROOT[test]"
fi

step "environment check"
run "$VPY" -c "from physioclr_ext.runners.compat import check_environment; check_environment(); print('    fairseq-signals: ready')"

if [[ $DRY_RUN -eq 1 ]]; then
  echo "dry run: nothing was changed"
  exit 0
fi
cat <<EOF

The training environment is ready: $PREFIX
Next, the demo (preprocess, pretrain, fine-tune, predict; about 2 minutes on 2 CPU cores):
    source "$PREFIX/bin/activate"
    cd "$REPO_ROOT" && ./preprocess_ecg.sh && ./pre-training_ecg.sh && ./finetuning_ecg.sh && ./inference_ecg.sh
and the tests (the integration tests run fairseq-signals):
    python -m pytest -q -rs tests/integration
EOF
