#!/usr/bin/env bash
# Self-supervised pretraining through physioclr-hydra-train (fairseq-signals + this plugin).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/scripts/common.sh"

usage() {
  cat <<USAGE
Usage: $(basename "$0") [--method NAME] [--data DIR] [--config NAME] [--out DIR] [--tiny] [-- OVERRIDES...]

Pretrain a model with configs/pretraining/<config>.yaml through physioclr-hydra-train.

With no arguments: the demo. Pretrains the tiny CPU variant of the default method on
$DEMO_DATA (run ./preprocess_ecg.sh first) and writes $DEMO_DIR/pretrain/checkpoint_last.pt.
With --data: the paper-size configuration of the method (configs/pretraining/<method>.yaml).

Options:
  --method NAME   method to pretrain (default: physioclr; others: wav2vec2, contrastive_cnn,
                  clocs_cmsc, ...); its configs are configs/pretraining/<method>.yaml and
                  <method>_tiny.yaml. PhysioCLR needs DATA/features (./preprocess_ecg.sh writes them)
  --data DIR      preprocessed data (train.tsv, ...), e.g. from ./preprocess_ecg.sh; its sample rate,
                  leads and window length (DATA/preprocess.json) set the task and the model's input
                  size (task.sample_rate, task.leads_to_load, model.in_channels/in_d/num_leads, ...),
                  or the run stops first with what differs and the option that fixes it
  --config NAME   a config name in configs/pretraining (overrides --method's choice)
  --tiny          use the tiny CPU variant <method>_tiny
  --out DIR       checkpoints and logs (default: runs/<method>/pretrain, demo: $DEMO_DIR/pretrain)
  -h, --help      this help
  -- OVERRIDES    Hydra overrides, e.g. optimization.max_update=1000 distributed_training.distributed_world_size=4
USAGE
}

METHOD="physioclr" DATA="" CONFIG="" OUT="" TINY=0 OVERRIDES=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --method) METHOD="$2"; shift 2 ;;
    --data) DATA="$2"; shift 2 ;;
    --config) CONFIG="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --tiny) TINY=1; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; OVERRIDES=("$@"); break ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done

if [[ -z "$DATA" ]]; then
  DATA="$DEMO_DATA"; TINY=1; OUT="${OUT:-$DEMO_DIR/pretrain}"
  [[ -f "$DATA/train.tsv" ]] || die "no demo data in $DATA: run ./preprocess_ecg.sh first"
fi
[[ -f "$DATA/train.tsv" ]] || die "$DATA has no train.tsv manifest"
if [[ -z "$CONFIG" ]]; then CONFIG="$METHOD"; [[ $TINY -eq 1 ]] && CONFIG="${METHOD}_tiny"; fi
CONFIG_DIR="$REPO_ROOT/configs/pretraining"
[[ -f "$CONFIG_DIR/$CONFIG.yaml" ]] || die "no config $CONFIG_DIR/$CONFIG.yaml (methods: $(ls "$CONFIG_DIR" | sed -n 's/_tiny.yaml$//p' | tr '\n' ' '))"
if grep -q "_name: ecg_feature" "$CONFIG_DIR/$CONFIG.yaml" && [[ ! -f "$DATA/features/train.npz" ]]; then
  die "$CONFIG needs the physiological features of $DATA: run ./preprocess_ecg.sh (or python -m physioclr_ext.features $DATA)"
fi
OUT="$(abspath "${OUT:-runs/$METHOD/pretrain}")"
DATA="$(abspath "$DATA")"

require_fairseq_signals
# The task and model follow DATA/preprocess.json (rate, leads, window length); the user's overrides win.
data_shape_overrides --config "$CONFIG_DIR/$CONFIG.yaml" --data "$DATA" -- "${OVERRIDES[@]+"${OVERRIDES[@]}"}"
mkdir -p "$OUT"
"$(console_script physioclr-hydra-train)" --config-dir "$CONFIG_DIR" --config-name "$CONFIG" \
  task.data="$DATA" checkpoint.save_dir="$OUT" hydra.run.dir="$OUT" \
  "${SHAPE_OVERRIDES[@]+"${SHAPE_OVERRIDES[@]}"}" "${OVERRIDES[@]+"${OVERRIDES[@]}"}"
[[ -f "$OUT/checkpoint_last.pt" ]] || die "training finished without $OUT/checkpoint_last.pt"
echo "pretrained checkpoint: $OUT/checkpoint_last.pt"
