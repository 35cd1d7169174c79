#!/usr/bin/env bash
# Preprocess ECG recordings into fairseq-signals windows and manifests.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/scripts/common.sh"

usage() {
  cat <<USAGE
Usage: $(basename "$0") [--input DIR --output DIR] [--preset NAME] [--method NAME] [--no-features]
       [--features-pca K|auto] [-- EXTRA...]

Turn raw recordings (MIT-BIH, LUDB, PhysioNet/CinC 2021, any WFDB directory, or numpy
layouts) into per-window .mat files, patient-disjoint train/valid/test manifests, CMSC
pair manifests and labels, via \`python -m physioclr_ext.preprocess\`, which then, for
PhysioCLR (the default method), extracts the neurokit2 physiological features of every
window and their R-peaks (its --features, OUTPUT/features/).

Feature PCA: the paper reduces the features to 50 dimensions. That PCA is fitted on the
training windows, so --features-pca auto (the default) applies it only when the training
split has at least 500 windows (10 per component); smaller sets (the bundled demo's LUDB)
keep all z-scored features. --features-pca K forces K components, 0 none.

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
  --features-pca K  PCA components of the features: auto (default: 50 with at least 500
                  training windows, else none), K, or 0 for none
  -h, --help      this help
  -- EXTRA...     passed to python -m physioclr_ext.preprocess (see its --help)
USAGE
}

INPUT="" OUTPUT="" PRESET="fairseq_signals" METHOD="physioclr" FEATURES=1 FEATURES_PCA="auto" EXTRA=()
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
# PhysioCLR's features, chained by python -m physioclr_ext.preprocess (see --help); options after --
# come later on its command line, so they override these.
FEATURE_ARGS=()
[[ $FEATURES -eq 1 ]] && FEATURE_ARGS=(--features --features-pca "$FEATURES_PCA")

"$PYTHON" -c 'import physioclr_ext' 2>/dev/null || die "physioclr_ext is not importable: run \`pip install -e .\` in $REPO_ROOT"

if [[ -z "$INPUT" && -z "$OUTPUT" ]]; then
  echo "== demo: bundled MIT-BIH sample -> $DEMO_DATA"
  "$PYTHON" -m physioclr_ext.preprocess --input "$REPO_ROOT/data/sample/mitdb" --output "$DEMO_DATA" \
    --preset "$PRESET" --split file --split-file "$REPO_ROOT/data/sample/mitdb/demo_split.csv" \
    --label-scheme binary --no-progress "${FEATURE_ARGS[@]+"${FEATURE_ARGS[@]}"}" "${EXTRA[@]+"${EXTRA[@]}"}"
  echo "== demo: bundled LUDB sample -> $DEMO_DIR/data/ludb"
  "$PYTHON" -m physioclr_ext.preprocess --input "$REPO_ROOT/data/sample/ludb" --output "$DEMO_DIR/data/ludb" \
    --preset "$PRESET" --no-progress "${FEATURE_ARGS[@]+"${FEATURE_ARGS[@]}"}" "${EXTRA[@]+"${EXTRA[@]}"}"
  echo "preprocessed data: $DEMO_DATA (manifests train.tsv, valid.tsv, test.tsv; summary preprocess.json)"
  exit 0
fi
[[ -n "$INPUT" && -n "$OUTPUT" ]] || die "give both --input and --output (or neither, for the demo)"
"$PYTHON" -m physioclr_ext.preprocess --input "$INPUT" --output "$OUTPUT" --preset "$PRESET" \
  "${FEATURE_ARGS[@]+"${FEATURE_ARGS[@]}"}" "${EXTRA[@]+"${EXTRA[@]}"}"
echo "preprocessed data: $(abspath "$OUTPUT")"
