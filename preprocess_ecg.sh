#!/usr/bin/env bash
# Preprocess ECG recordings into fairseq-signals windows and manifests.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/scripts/common.sh"
PCA_MIN_WINDOWS=500  # training windows needed for the paper's 50-component feature PCA

usage() {
  cat <<USAGE
Usage: $(basename "$0") [--input DIR --output DIR] [--preset NAME] [--method NAME] [--no-features]
       [--features-pca K] [-- EXTRA...]

Turn raw recordings (MIT-BIH, LUDB, PhysioNet/CinC 2021, any WFDB directory, or numpy
layouts) into per-window .mat files, patient-disjoint train/valid/test manifests, CMSC
pair manifests and labels, via \`python -m physioclr_ext.preprocess\`; then, for PhysioCLR
(the default method), the neurokit2 physiological features of every window and their
R-peaks (\`python -m physioclr_ext.features\`, OUTPUT/features/).

Feature PCA: the paper reduces the features to 50 dimensions. That PCA is fitted on the
training windows, so it is applied only when the training split has at least
$PCA_MIN_WINDOWS windows (10 per component); smaller sets (the bundled demo's LUDB) keep
all z-scored features. --features-pca K forces K components, 0 none.

With no arguments: the demo. Preprocesses the bundled MIT-BIH sample
(data/sample/mitdb, 5 records; fixed patient split in demo_split.csv; binary
normal/arrhythmia window labels) and the bundled LUDB sample into $DEMO_DIR/data/.

Options:
  --input DIR     recordings to read (format detected; see --format in EXTRA)
  --output DIR    where windows, manifests and preprocess.json go
  --preset NAME   fairseq_signals (default: 500 Hz, 5 s, per-lead z-score) | st_mem | mitbih_fewshot
  --method NAME   the method the data is for (default: physioclr, which needs the features);
                  any other method skips the feature extraction
  --no-features   do not extract the features
  --features-pca K  PCA components of the features (default: 50 with enough training windows)
  -h, --help      this help
  -- EXTRA...     passed to python -m physioclr_ext.preprocess (see its --help)
USAGE
}

INPUT="" OUTPUT="" PRESET="fairseq_signals" METHOD="physioclr" FEATURES=1 FEATURES_PCA="" EXTRA=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --input) INPUT="$2"; shift 2 ;;
    --output) OUTPUT="$2"; shift 2 ;;
    --preset) PRESET="$2"; shift 2 ;;
    --method) METHOD="$2"; shift 2 ;;
    --no-features) FEATURES=0; shift ;;
    --features-pca) FEATURES_PCA="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    --) shift; EXTRA=("$@"); break ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done

[[ "$METHOD" == physioclr* ]] || FEATURES=0
for arg in "${EXTRA[@]+"${EXTRA[@]}"}"; do [[ "$arg" == --features* ]] && FEATURES=0; done  # preprocess does it

# PhysioCLR's features of DIR: PCA to 50 dimensions with enough training windows (see --help).
extract_features() {
  local dir="$1" pca="$FEATURES_PCA" n_train
  [[ $FEATURES -eq 1 ]] || return 0
  if [[ -z "$pca" ]]; then
    n_train=$(( $(wc -l < "$dir/train.tsv") - 1 ))
    pca=0; [[ $n_train -ge $PCA_MIN_WINDOWS ]] && pca=50
  fi
  local args=(--no-progress --workers "$(nproc 2>/dev/null || echo 1)")
  [[ "$pca" -gt 0 ]] && args+=(--pca "$pca")
  echo "== features: $dir (PCA: ${pca/#0/none})"
  "$PYTHON" -m physioclr_ext.features "$dir" "${args[@]}"
}

"$PYTHON" -c 'import physioclr_ext' 2>/dev/null || die "physioclr_ext is not importable: run \`pip install -e .\` in $REPO_ROOT"

if [[ -z "$INPUT" && -z "$OUTPUT" ]]; then
  echo "== demo: bundled MIT-BIH sample -> $DEMO_DATA"
  "$PYTHON" -m physioclr_ext.preprocess --input "$REPO_ROOT/data/sample/mitdb" --output "$DEMO_DATA" \
    --preset "$PRESET" --split file --split-file "$REPO_ROOT/data/sample/mitdb/demo_split.csv" \
    --label-scheme binary --no-progress "${EXTRA[@]+"${EXTRA[@]}"}"
  extract_features "$DEMO_DATA"
  echo "== demo: bundled LUDB sample -> $DEMO_DIR/data/ludb"
  "$PYTHON" -m physioclr_ext.preprocess --input "$REPO_ROOT/data/sample/ludb" --output "$DEMO_DIR/data/ludb" \
    --preset "$PRESET" --no-progress "${EXTRA[@]+"${EXTRA[@]}"}"
  extract_features "$DEMO_DIR/data/ludb"
  echo "preprocessed data: $DEMO_DATA (manifests train.tsv, valid.tsv, test.tsv; summary preprocess.json)"
  exit 0
fi
[[ -n "$INPUT" && -n "$OUTPUT" ]] || die "give both --input and --output (or neither, for the demo)"
"$PYTHON" -m physioclr_ext.preprocess --input "$INPUT" --output "$OUTPUT" --preset "$PRESET" "${EXTRA[@]+"${EXTRA[@]}"}"
extract_features "$OUTPUT"
echo "preprocessed data: $(abspath "$OUTPUT")"
