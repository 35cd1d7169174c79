#!/usr/bin/env bash
# Predict with a fine-tuned checkpoint; write per-window predictions (CSV) and metrics (JSON).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/scripts/common.sh"

usage() {
  cat <<USAGE
Usage: $(basename "$0") [--data DIR] [--checkpoint PT] [--subset NAME] [--out DIR] [--threshold P] [-- OVERRIDES...]

Run physioclr-hydra-inference on one manifest, then write
OUT/predictions_<subset>.csv (one row per window: path, record idx, patient id, true
label, probability, prediction) and OUT/metrics_<subset>.json (accuracy, balanced
accuracy, macro F1, AUROC, AUPRC).

With no arguments: the demo. Uses $DEMO_DIR/finetune/checkpoint_best.pt on the test
split of $DEMO_DATA and writes to $DEMO_DIR/inference.

Options:
  --data DIR        preprocessed data holding <subset>.tsv
  --checkpoint PT   fine-tuned checkpoint (from ./finetuning_ecg.sh)
  --subset NAME     manifest to predict (default: test)
  --threshold P     probability threshold for binary/multi-label predictions (default 0.5)
  --out DIR         outputs (default: runs/inference, demo: $DEMO_DIR/inference)
  --embed           also write pooled embeddings of train/valid/test (OUT/embeddings) and
                    score them with a linear probe, k-NN and k-means (OUT/linear_probe,
                    OUT/knn, OUT/cluster); with a pretrained (not fine-tuned) checkpoint
                    only this part runs
  -h, --help        this help
  -- OVERRIDES      Hydra overrides for physioclr-hydra-inference
USAGE
}

DATA="" CKPT="" SUBSET="test" OUT="" THRESHOLD="0.5" EMBED=0 OVERRIDES=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --data) DATA="$2"; shift 2 ;;
    --checkpoint) CKPT="$2"; shift 2 ;;
    --subset) SUBSET="$2"; shift 2 ;;
    --threshold) THRESHOLD="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --embed) EMBED=1; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; OVERRIDES=("$@"); break ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done

if [[ -z "$DATA" && -z "$CKPT" ]]; then
  DATA="$DEMO_DATA"; CKPT="$DEMO_DIR/finetune/checkpoint_best.pt"; OUT="${OUT:-$DEMO_DIR/inference}"
  [[ -f "$CKPT" ]] || die "no demo checkpoint $CKPT: run ./finetuning_ecg.sh first"
fi
[[ -n "$DATA" && -n "$CKPT" ]] || die "give both --data and --checkpoint (or neither, for the demo)"
[[ -f "$DATA/$SUBSET.tsv" ]] || die "no manifest $DATA/$SUBSET.tsv"
[[ -f "$CKPT" ]] || die "no checkpoint $CKPT"
OUT="$(abspath "${OUT:-runs/inference}")"; DATA="$(abspath "$DATA")"; CKPT="$(abspath "$CKPT")"

require_fairseq_signals
mkdir -p "$OUT"
MODEL_NAME="$("$PYTHON" -m physioclr_ext.runners.checkpoints model-name "$CKPT")"
if [[ "$MODEL_NAME" == *classifier* ]]; then
  # The leads the classifier was fine-tuned on (task.leads_to_load, lead II only in the demo), found in
  # DATA by name, at the checkpoint's rate: fairseq-signals' inference loads the data with its own task
  # config, which would feed every lead. A DATA that lacks them stops here with what differs.
  data_shape_overrides --config "$REPO_ROOT/configs/inference/classifier.yaml" --data "$DATA" --checkpoint "$CKPT" \
    -- "${OVERRIDES[@]+"${OVERRIDES[@]}"}"
  "$(console_script physioclr-hydra-inference)" --config-dir "$REPO_ROOT/configs/inference" --config-name classifier \
    task.data="$DATA" common_eval.path="$CKPT" common_eval.results_path="$OUT" dataset.valid_subset="$SUBSET" \
    hydra.run.dir="$OUT" "${SHAPE_OVERRIDES[@]+"${SHAPE_OVERRIDES[@]}"}" "${OVERRIDES[@]+"${OVERRIDES[@]}"}"
  LABEL_DEF=()
  [[ -f "$DATA/label_def.csv" ]] && LABEL_DEF=(--label-def "$DATA/label_def.csv")
  "$PYTHON" -m physioclr_ext.evaluation predictions --outputs "$OUT/outputs_$SUBSET.npy" \
    --manifest "$DATA/$SUBSET.tsv" --out-dir "$OUT" --subset "$SUBSET" --threshold "$THRESHOLD" "${LABEL_DEF[@]+"${LABEL_DEF[@]}"}"
  echo "metrics: $OUT/metrics_$SUBSET.json"
elif [[ $EMBED -eq 0 ]]; then
  die "$CKPT holds a $MODEL_NAME model, not a classifier: fine-tune it first, or use --embed"
fi
if [[ $EMBED -eq 1 ]]; then
  "$PYTHON" -m physioclr_ext.evaluation embed --checkpoint "$CKPT" --data "$DATA" --out "$OUT/embeddings"
  "$PYTHON" -m physioclr_ext.evaluation linear-probe --embeddings "$OUT/embeddings" --out "$OUT/linear_probe"
  "$PYTHON" -m physioclr_ext.evaluation knn --embeddings "$OUT/embeddings" --out "$OUT/knn"
  "$PYTHON" -m physioclr_ext.evaluation cluster --embeddings "$OUT/embeddings" --out "$OUT/cluster"
  echo "embeddings: $OUT/embeddings; probes: $OUT/linear_probe/results.md, $OUT/knn/results.md; clusters: $OUT/cluster"
fi
