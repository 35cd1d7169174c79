#!/usr/bin/env bash
# Fine-tune a pretrained checkpoint on labelled windows through physioclr-hydra-train.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/scripts/common.sh"

usage() {
  cat <<USAGE
Usage: $(basename "$0") [--data DIR] [--checkpoint PT] [--config NAME] [--num-labels N] [--out DIR] [-- OVERRIDES...]

Fine-tune a classifier from a pretrained checkpoint with configs/finetuning/<config>.yaml.
The number of labels comes from DATA/label_def.csv and the positive-class weights from
DATA/pos_weight.txt when present; the encoder's architecture is read from the
checkpoint, so the classifier always matches it.

With no arguments: the demo. Fine-tunes the tiny classifier from
$DEMO_DIR/pretrain/checkpoint_last.pt on the binary normal/arrhythmia labels of
$DEMO_DATA, lead II only (the lead every MIT-BIH record has), and writes
$DEMO_DIR/finetune/checkpoint_best.pt (chosen on valid loss).

Options:
  --data DIR        preprocessed labelled data (train.tsv, valid.tsv, label_def.csv); checked against
                    the checkpoint's pretraining data (DATA/preprocess.json: rate, leads by name, window
                    length), whose leads are then loaded in the checkpoint's order
  --checkpoint PT   pretrained checkpoint (from ./pre-training_ecg.sh)
  --config NAME     config in configs/finetuning (default, from the checkpoint's model:
                    physioclr_classifier for PhysioCLR (wav2vec2_physioCLR), ecg_transformer_classifier
                    for fairseq-signals' wav2vec2/ecg_transformer, ecg_ssl_classifier for the package's
                    other methods; the demo uses their _tiny variants; data with one class per window
                    (DATA/preprocess.json labels multiclass or aami) takes the _multiclass variant)
  --tiny            the default config's _tiny CPU variant (as the demo)
  --num-labels N    number of outputs (default: rows of label_def.csv)
  --no-pos-weight   do not pass pos_weight.txt to the criterion
  --few-shot "N.."  instead of one run: the few-shot protocol (exactly N labelled training
                    windows per seed, pretrained vs from scratch; python -m physioclr_ext.evaluation
                    few-shot); mean and 95% CI in OUT/results.md and OUT/results.json
  --repeated K      instead of one run: K repeats of the repeated patient sub-sampling protocol
  --seeds "S.."     seeds of --few-shot (default: 0 1 2 3 4); first seed of --repeated
  --balanced        --few-shot: N windows per class
  --out DIR         checkpoints and logs (default: runs/finetune, demo: $DEMO_DIR/finetune)
  -h, --help        this help
  -- OVERRIDES      Hydra overrides, e.g. optimization.max_epoch=20 model.freeze_finetune_updates=1000
USAGE
}

DATA="" CKPT="" CONFIG="" TINY=0 NUM_LABELS="" OUT="" POS_WEIGHT=1 OVERRIDES=()
FEW_SHOT="" REPEATED="" SEEDS="0 1 2 3 4" BALANCED=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --data) DATA="$2"; shift 2 ;;
    --checkpoint) CKPT="$2"; shift 2 ;;
    --config) CONFIG="$2"; shift 2 ;;
    --num-labels) NUM_LABELS="$2"; shift 2 ;;
    --tiny) TINY=1; shift ;;
    --no-pos-weight) POS_WEIGHT=0; shift ;;
    --few-shot) FEW_SHOT="$2"; shift 2 ;;
    --repeated) REPEATED="$2"; shift 2 ;;
    --seeds) SEEDS="$2"; shift 2 ;;
    --balanced) BALANCED=(--balanced); shift ;;
    --out) OUT="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    --) shift; OVERRIDES=("$@"); break ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done

DEMO_OVERRIDES=()
if [[ -z "$DATA" && -z "$CKPT" ]]; then
  DATA="$DEMO_DATA"; CKPT="$DEMO_DIR/pretrain/checkpoint_last.pt"; TINY=1; OUT="${OUT:-$DEMO_DIR/finetune}"
  [[ -f "$CKPT" ]] || die "no demo checkpoint $CKPT: run ./pre-training_ecg.sh first"
  # Lead II (MLII) only: it is the one lead every MIT-BIH record has; the second is V1, V2, V4 or V5
  # by record (V5 for 100, the demo's most normal patient), so with both the classifier learns which
  # lead is present, i.e. the patient, and predicts one class for every window of a new patient.
  # inference_ecg.sh reads this selection back from the checkpoint.
  has_override task.leads_to_load "${OVERRIDES[@]+"${OVERRIDES[@]}"}" \
    || DEMO_OVERRIDES=("task.leads_to_load='[1]'" task.enable_padding_leads=true)
fi
[[ -n "$DATA" && -n "$CKPT" ]] || die "give both --data and --checkpoint (or neither, for the demo)"
[[ -f "$DATA/train.tsv" && -f "$DATA/valid.tsv" ]] || die "$DATA needs train.tsv and valid.tsv"
[[ -f "$CKPT" ]] || die "no checkpoint $CKPT"
if [[ -z "$CONFIG" ]]; then
  TINY_FLAG=(); [[ $TINY -eq 1 ]] && TINY_FLAG=(--tiny)
  # Class-index labels (one class column in --labels, --label-scheme aami) take the _multiclass variant.
  CONFIG="$("$PYTHON" -m physioclr_ext.runners.checkpoints finetune-config "$CKPT" --data "$DATA" \
    "${TINY_FLAG[@]+"${TINY_FLAG[@]}"}")" || exit 2
fi
CONFIG_DIR="$REPO_ROOT/configs/finetuning"
[[ -f "$CONFIG_DIR/$CONFIG.yaml" ]] || die "no config $CONFIG_DIR/$CONFIG.yaml"
if [[ -z "$NUM_LABELS" ]]; then
  [[ -f "$DATA/label_def.csv" ]] || die "no $DATA/label_def.csv: give --num-labels"
  NUM_LABELS=$(( $(wc -l < "$DATA/label_def.csv") - 1 ))
fi
OUT="$(abspath "${OUT:-runs/finetune}")"; DATA="$(abspath "$DATA")"; CKPT="$(abspath "$CKPT")"

require_fairseq_signals
if [[ -n "$FEW_SHOT" || -n "$REPEATED" ]]; then
  PROTO_OVERRIDES=()
  for o in "${OVERRIDES[@]+"${OVERRIDES[@]}"}"; do PROTO_OVERRIDES+=(--override "$o"); done
  read -r -a SEED_LIST <<< "$SEEDS"
  if [[ -n "$FEW_SHOT" ]]; then
    read -r -a N_LIST <<< "$FEW_SHOT"
    "$PYTHON" -m physioclr_ext.evaluation few-shot --data "$DATA" --checkpoint "$CKPT" --out "$OUT" \
      --finetune-config "$CONFIG" --config-dir "$CONFIG_DIR" --n "${N_LIST[@]}" --seeds "${SEED_LIST[@]}" \
      "${BALANCED[@]+"${BALANCED[@]}"}" "${PROTO_OVERRIDES[@]+"${PROTO_OVERRIDES[@]}"}"
  else
    "$PYTHON" -m physioclr_ext.evaluation repeated --data "$DATA" --checkpoint "$CKPT" --out "$OUT" \
      --finetune-config "$CONFIG" --config-dir "$CONFIG_DIR" --repeats "$REPEATED" --seed "${SEED_LIST[0]}" \
      "${PROTO_OVERRIDES[@]+"${PROTO_OVERRIDES[@]}"}"
  fi
  echo "results: $OUT/results.md, $OUT/results.json"
  exit 0
fi
EXTRA=()
if [[ $POS_WEIGHT -eq 1 && -f "$DATA/pos_weight.txt" ]] && ! has_override criterion.pos_weight "${OVERRIDES[@]+"${OVERRIDES[@]}"}"; then
  EXTRA+=("criterion.pos_weight=$(tr -d ' \n' < "$DATA/pos_weight.txt")")
fi
while IFS= read -r line; do
  key="${line%%=*}"
  has_override "${key#+}" "${OVERRIDES[@]+"${OVERRIDES[@]}"}" || EXTRA+=("$line")
done < <("$PYTHON" -m physioclr_ext.runners.checkpoints arch-overrides "$CKPT" --config "$CONFIG_DIR/$CONFIG.yaml")
# DATA must carry what the checkpoint was pretrained on (rate, leads by name, window length): its leads
# are loaded in the checkpoint's order, or the run stops here with what differs.
data_shape_overrides --config "$CONFIG_DIR/$CONFIG.yaml" --data "$DATA" --checkpoint "$CKPT" \
  -- "${DEMO_OVERRIDES[@]+"${DEMO_OVERRIDES[@]}"}" "${OVERRIDES[@]+"${OVERRIDES[@]}"}"

mkdir -p "$OUT"
"$(console_script physioclr-hydra-train)" --config-dir "$CONFIG_DIR" --config-name "$CONFIG" \
  task.data="$DATA" model.model_path="$CKPT" model.num_labels="$NUM_LABELS" \
  checkpoint.save_dir="$OUT" hydra.run.dir="$OUT" \
  "${EXTRA[@]+"${EXTRA[@]}"}" "${SHAPE_OVERRIDES[@]+"${SHAPE_OVERRIDES[@]}"}" \
  "${DEMO_OVERRIDES[@]+"${DEMO_OVERRIDES[@]}"}" "${OVERRIDES[@]+"${OVERRIDES[@]}"}"
[[ -f "$OUT/checkpoint_best.pt" ]] || die "fine-tuning finished without $OUT/checkpoint_best.pt"
echo "fine-tuned checkpoint: $OUT/checkpoint_best.pt"
