"""Loss curves parsed from fairseq-signals training logs.

Every log line below was copied from a real ``physioclr-hydra-train`` run (fairseq-signals,
configs/pretraining/ecg_mae_tiny.yaml and wav2vec2_tiny.yaml on the bundled MIT-BIH sample, 2 CPU
cores): ``common.log_file`` (no prefix, each line repeated once per epoch started),
``hydra_train.log`` (Hydra's prefix), the console with ``common.reset_logging=true`` (fairseq's
prefix) and a terminal run with ``common.log_format=tqdm``.
"""

import json
import struct
import zlib

import pytest

from physioclr_ext.evaluation.cli import main as cli_main
from physioclr_ext.evaluation.loss_curves import (
    LossLogError,
    parse_line,
    parse_log_text,
    plot_loss_curves,
    read_log,
    write_loss_curve,
)

# ecg_mae_tiny, common.log_format=simple, common.log_file=train.log (2 epochs, max_update=30)
LOG_FILE_SIMPLE = """\
Start iterating over samples
epoch 001:      5 / 24 loss=0.5804, loss_masked=0.5804, loss_visible=0.5727, nsignals=14.4, ups=7.31, num_updates=5, lr=0.000986522, gnorm=0.799, train_wall=1, wall=4
epoch 001:     10 / 24 loss=0.3878, loss_masked=0.3878, loss_visible=0.5509, nsignals=16, ups=8.96, num_updates=10, lr=0.000843121, gnorm=0.507, train_wall=0, wall=5
epoch 001:     15 / 24 loss=0.2959, loss_masked=0.2959, loss_visible=0.5066, nsignals=16, ups=9.25, num_updates=15, lr=0.000586824, gnorm=0.349, train_wall=0, wall=5
epoch 001:     20 / 24 loss=0.2501, loss_masked=0.2501, loss_visible=0.486, nsignals=16, ups=9.9, num_updates=20, lr=0.00030196, gnorm=0.265, train_wall=0, wall=6
begin validation on "valid" subset
epoch 001 | valid on 'valid' subset | loss 0.228 | loss_masked 0.228 | loss_visible 0.4593 | nsignals 15.0417 | num_updates 24 | best_loss 0.228
end of epoch 1 (average epoch stats below)
epoch 001 | loss 0.3537 | loss_masked 0.3537 | loss_visible 0.5209 | nsignals 15.0417 | ups 6.37 | num_updates 24 | lr 0.000116978 | gnorm 0.438 | train_wall 2 | wall 7
Start iterating over samples
epoch 002:      1 / 24 loss=0.2284, loss_masked=0.2284, loss_visible=0.4727, nsignals=11.4, ups=3.09, num_updates=25, lr=8.22561e-05, gnorm=0.226, train_wall=0, wall=7
epoch 002:      1 / 24 loss=0.2284, loss_masked=0.2284, loss_visible=0.4727, nsignals=11.4, ups=3.09, num_updates=25, lr=8.22561e-05, gnorm=0.226, train_wall=0, wall=7
epoch 002:      6 / 24 loss=0.2246, loss_masked=0.2246, loss_visible=0.4583, nsignals=16, ups=7.86, num_updates=30, lr=0, gnorm=0.21, train_wall=1, wall=8
epoch 002:      6 / 24 loss=0.2246, loss_masked=0.2246, loss_visible=0.4583, nsignals=16, ups=7.86, num_updates=30, lr=0, gnorm=0.21, train_wall=1, wall=8
Stopping training due to num_updates: 30 >= max_update: 30
begin validation on "valid" subset
epoch 002 | valid on 'valid' subset | loss 0.2247 | loss_masked 0.2247 | loss_visible 0.4557 | nsignals 15.0417 | num_updates 30 | best_loss 0.2247
epoch 002 | valid on 'valid' subset | loss 0.2247 | loss_masked 0.2247 | loss_visible 0.4557 | nsignals 15.0417 | num_updates 30 | best_loss 0.2247
end of epoch 2 (average epoch stats below)
epoch 002 | loss 0.2251 | loss_masked 0.2251 | loss_visible 0.4577 | nsignals 14.6667 | ups 2.51 | num_updates 30 | lr 0 | gnorm 0.211 | train_wall 1 | wall 10
epoch 002 | loss 0.2251 | loss_masked 0.2251 | loss_visible 0.4577 | nsignals 14.6667 | ups 2.51 | num_updates 30 | lr 0 | gnorm 0.211 | train_wall 1 | wall 10
done training in 6.3 seconds
"""

# the same run with common.log_format=json: hydra_train.log (first epoch), then the same
# epoch-end lines as common.log_file writes them (no prefix: the tag is in the keys)
HYDRA_JSON = """\
[2026-12-02 10:51:26,012][fairseq_cli.train][INFO] - {'_name': None,
[2026-12-02 10:51:27,934][fairseq_cli.train][INFO] - Start iterating over samples
[2026-12-02 10:51:28,770][train_inner][INFO] - {"epoch": 1, "update": 0.208, "loss": "0.5804", "loss_masked": "0.5804", "loss_visible": "0.5727", "nsignals": "14.4", "ups": "9.85", "num_updates": "5", "lr": "0.000986522", "gnorm": "0.799", "train_wall": "1", "wall": "3"}
[2026-12-02 10:51:29,268][train_inner][INFO] - {"epoch": 1, "update": 0.417, "loss": "0.3878", "loss_masked": "0.3878", "loss_visible": "0.5509", "nsignals": "16", "ups": "10.04", "num_updates": "10", "lr": "0.000843121", "gnorm": "0.507", "train_wall": "0", "wall": "4"}
[2026-12-02 10:51:29,726][train_inner][INFO] - {"epoch": 1, "update": 0.625, "loss": "0.2959", "loss_masked": "0.2959", "loss_visible": "0.5066", "nsignals": "16", "ups": "10.94", "num_updates": "15", "lr": "0.000586824", "gnorm": "0.349", "train_wall": "0", "wall": "4"}
[2026-12-02 10:51:30,139][train_inner][INFO] - {"epoch": 1, "update": 0.833, "loss": "0.2501", "loss_masked": "0.2501", "loss_visible": "0.486", "nsignals": "16", "ups": "12.24", "num_updates": "20", "lr": "0.00030196", "gnorm": "0.265", "train_wall": "0", "wall": "5"}
[2026-12-02 10:51:31,394][valid][INFO] - {"epoch": 1, "valid_loss": "0.228", "valid_loss_masked": "0.228", "valid_loss_visible": "0.4593", "valid_nsignals": "15.0417", "valid_num_updates": "24", "valid_best_loss": "0.228"}
[2026-12-02 10:51:31,429][train][INFO] - {"epoch": 1, "train_loss": "0.3537", "train_loss_masked": "0.3537", "train_loss_visible": "0.5209", "train_nsignals": "15.0417", "train_ups": "7.5", "train_num_updates": "24", "train_lr": "0.000116978", "train_gnorm": "0.438", "train_train_wall": "2", "train_wall": "6"}
"""
LOG_FILE_JSON_EPOCH_END = """\
{"epoch": 2, "valid_loss": "0.2247", "valid_loss_masked": "0.2247", "valid_loss_visible": "0.4557", "valid_nsignals": "15.0417", "valid_num_updates": "30", "valid_best_loss": "0.2247"}
{"epoch": 2, "train_loss": "0.2251", "train_loss_masked": "0.2251", "train_loss_visible": "0.4577", "train_nsignals": "14.6667", "train_ups": "2.38", "train_num_updates": "30", "train_lr": "0", "train_gnorm": "0.211", "train_train_wall": "1", "train_wall": "9"}
"""

# ecg_mae_tiny, common.reset_logging=true common.log_format=json: the console (fairseq's prefix)
CONSOLE_JSON = """\
2026-12-02 10:57:51 | INFO | fairseq_cli.train | Start iterating over samples
2026-12-02 10:57:53 | INFO | train_inner | {"epoch": 1, "update": 0.208, "loss": "0.5534", "loss_masked": "0.5534", "loss_visible": "0.5674", "nsignals": "14.4", "ups": "4.21", "num_updates": "5", "lr": "0.000586824", "gnorm": "0.757", "train_wall": "1", "wall": "6"}
2026-12-02 10:57:54 | INFO | train_inner | {"epoch": 1, "update": 0.417, "loss": "0.3954", "loss_masked": "0.3954", "loss_visible": "0.5565", "nsignals": "16", "ups": "4.33", "num_updates": "10", "lr": "0", "gnorm": "0.516", "train_wall": "1", "wall": "7"}
2026-12-02 10:57:54 | INFO | fairseq_cli.train | end of epoch 1 (average epoch stats below)
2026-12-02 10:57:54 | INFO | train | {"epoch": 1, "train_loss": "0.4702", "train_loss_masked": "0.4702", "train_loss_visible": "0.5616", "train_nsignals": "15.2", "train_ups": "4.13", "train_num_updates": "10", "train_lr": "0", "train_gnorm": "0.637", "train_train_wall": "2", "train_wall": "7"}
"""

# loss_curve.log that physioclr-hydra-train recorded: ecg_mae_tiny to update 20 (simple), then the
# same checkpoint.save_dir resumed to update 30 with common.log_format=json
RESUMED = """\
[2026-12-02 10:55:18,918][train_inner][INFO] - epoch 001:      5 / 24 loss=0.5665, loss_masked=0.5665, loss_visible=0.5697, nsignals=14.4, ups=3.63, num_updates=5, lr=0.000933013, gnorm=0.779, train_wall=2, wall=8
[2026-12-02 10:55:20,264][train_inner][INFO] - epoch 001:     10 / 24 loss=0.3783, loss_masked=0.3783, loss_visible=0.5517, nsignals=16, ups=3.72, num_updates=10, lr=0.000586824, gnorm=0.49, train_wall=1, wall=10
[2026-12-02 10:55:21,545][train_inner][INFO] - epoch 001:     15 / 24 loss=0.3052, loss_masked=0.3052, loss_visible=0.515, nsignals=16, ups=3.91, num_updates=15, lr=0.000178606, gnorm=0.362, train_wall=1, wall=11
[2026-12-02 10:55:22,577][train_inner][INFO] - epoch 001:     20 / 24 loss=0.2808, loss_masked=0.2808, loss_visible=0.5088, nsignals=16, ups=4.85, num_updates=20, lr=0, gnorm=0.32, train_wall=1, wall=12
[2026-12-02 10:55:25,771][valid][INFO] - epoch 001 | valid on 'valid' subset | loss 0.2793 | loss_masked 0.2793 | loss_visible 0.5043 | nsignals 15.0417 | num_updates 20 | best_loss 0.2793
[2026-12-02 10:55:25,857][train][INFO] - epoch 001 | loss 0.378 | loss_masked 0.378 | loss_visible 0.5354 | nsignals 15.6 | ups 2.36 | num_updates 20 | lr 0 | gnorm 0.488 | train_wall 5 | wall 15
[2026-12-02 10:55:56,986][valid][INFO] - {"epoch": 1, "valid_loss": "0.2647", "valid_loss_masked": "0.2647", "valid_loss_visible": "0.5007", "valid_nsignals": "15.0417", "valid_num_updates": "24", "valid_best_loss": "0.2647"}
[2026-12-02 10:55:57,097][train][INFO] - {"epoch": 1, "train_loss": "0.3629", "train_loss_masked": "0.3629", "train_loss_visible": "0.5325", "train_nsignals": "15.0417", "train_ups": "1.95", "train_num_updates": "24", "train_lr": "0.000116978", "train_gnorm": "0.456", "train_train_wall": "5", "train_wall": "0"}
[2026-12-02 10:55:57,460][train_inner][INFO] - {"epoch": 2, "update": 1.042, "loss": "0.2671", "loss_masked": "0.2671", "loss_visible": "0.5107", "nsignals": "11.4", "ups": "0.67", "num_updates": "25", "lr": "8.22561e-05", "gnorm": "0.296", "train_wall": "1", "wall": "0"}
[2026-12-02 10:55:59,065][train_inner][INFO] - {"epoch": 2, "update": 1.25, "loss": "0.2602", "loss_masked": "0.2602", "loss_visible": "0.501", "nsignals": "16", "ups": "3.12", "num_updates": "30", "lr": "0", "gnorm": "0.277", "train_wall": "1", "wall": "0"}
[2026-12-02 10:56:01,724][valid][INFO] - {"epoch": 2, "valid_loss": "0.2598", "valid_loss_masked": "0.2598", "valid_loss_visible": "0.4991", "valid_nsignals": "15.0417", "valid_num_updates": "30", "valid_best_loss": "0.2598"}
[2026-12-02 10:56:01,797][train][INFO] - {"epoch": 2, "train_loss": "0.2608", "train_loss_masked": "0.2608", "train_loss_visible": "0.5003", "train_nsignals": "14.6667", "train_ups": "1.28", "train_num_updates": "30", "train_lr": "0", "train_gnorm": "0.278", "train_train_wall": "2", "train_wall": "0"}
"""

# wav2vec2_tiny (fairseq-signals' wav2vec 2.0 criterion), simple, hydra_train.log
HYDRA_W2V_SIMPLE = """\
[2026-12-02 10:57:15,330][train_inner][INFO] - epoch 001:      2 / 24 loss=10.473, nsignals=16, loss_0=4.854, loss_1=0.06, loss_2=5.558, prob_perplexity=37.349, code_perplexity=35.67, temp=2, accuracy=0.05603, ups=1.8, num_updates=2, lr=0.0005, gnorm=2.536, clip=100, train_wall=1, wall=7
[2026-12-02 10:57:16,189][train_inner][INFO] - epoch 001:      4 / 24 loss=8.701, nsignals=12, loss_0=4.668, loss_1=0.056, loss_2=3.977, prob_perplexity=38.9, code_perplexity=37.15, temp=2, accuracy=0.06151, ups=2.33, num_updates=4, lr=0.0005, gnorm=2.108, clip=100, train_wall=1, wall=8
[2026-12-02 10:57:19,583][valid][INFO] - epoch 001 | valid on 'valid' subset | loss 7.91 | nsignals 15.0417 | loss_0 4.66 | loss_1 0.068 | loss_2 3.182 | prob_perplexity 33.661 | code_perplexity 31.251 | temp 2 | accuracy 0.05537 | num_updates 4 | best_loss 7.91
[2026-12-02 10:57:19,655][train][INFO] - epoch 001 | loss 9.677 | nsignals 14 | loss_0 4.771 | loss_1 0.058 | loss_2 4.848 | prob_perplexity 38.124 | code_perplexity 36.41 | temp 2 | accuracy 0.05849 | ups 0.61 | num_updates 4 | lr 0.0005 | gnorm 2.322 | clip 100 | train_wall 2 | wall 12
"""

# wav2vec2_tiny on a terminal, common.log_format=tqdm: train_inner goes to the bar, not the log
HYDRA_TQDM = """\
[2026-12-02 10:56:35,494][train][INFO] - epoch 001 | loss 8.881 | nsignals 14.6667 | loss_0 4.693 | loss_1 0.057 | loss_2 4.132 | prob_perplexity 38.828 | code_perplexity 37.181 | temp 2 | accuracy 0.05992 | ups 2.34 | num_updates 6 | lr 0.0005 | gnorm 2.062 | clip 100 | train_wall 3 | wall 8
"""

MAE_TERMS = ["loss", "loss_masked", "loss_visible"]


def _png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert (
        kind == b"IHDR"
        and zlib.crc32(data[12 : 16 + length]) == struct.unpack(">I", data[16 + length : 20 + length])[0]
    )
    return struct.unpack(">II", data[16:24])


def test_log_file_simple_with_repeated_lines():
    curves = parse_log_text(LOG_FILE_SIMPLE)
    assert curves.terms == MAE_TERMS
    assert set(curves.formats) == {"simple", "pipes"}
    inner = curves.series["train_inner"]
    assert inner.updates == [5, 10, 15, 20, 25, 30]
    assert inner.values["loss"] == [0.5804, 0.3878, 0.2959, 0.2501, 0.2284, 0.2246]
    assert inner.values["loss_visible"][-1] == 0.4583
    assert curves.series["valid"].updates == [24, 30]
    assert curves.series["valid"].values["loss_masked"] == [0.228, 0.2247]
    assert curves.series["train"].updates == [24, 30]
    assert curves.series["train"].values["loss"] == [0.3537, 0.2251]
    assert "lr" not in inner.values and "nsignals" not in inner.values  # bookkeeping, not terms


def test_json_with_hydra_prefix_and_without_prefix_agree_with_simple():
    curves = parse_log_text(HYDRA_JSON + LOG_FILE_JSON_EPOCH_END)
    simple = parse_log_text(LOG_FILE_SIMPLE)
    assert curves.formats == ["json"] and curves.terms == MAE_TERMS
    assert curves.series["train_inner"].updates == [5, 10, 15, 20]
    assert curves.series["train_inner"].values["loss"] == simple.series["train_inner"].values["loss"][:4]
    for tag in ("valid", "train"):
        assert curves.series[tag].to_dict() == simple.series[tag].to_dict()


def test_console_format_of_reset_logging():
    curves = parse_log_text(CONSOLE_JSON)
    assert curves.series["train_inner"].values["loss"] == [0.5534, 0.3954]
    assert curves.series["train"].updates == [10]
    assert curves.series["train"].values["loss_visible"] == [0.5616]


def test_wav2vec2_terms_and_tqdm_epoch_summaries():
    curves = parse_log_text(HYDRA_W2V_SIMPLE)
    assert curves.terms == [
        "loss",
        "loss_0",
        "loss_1",
        "loss_2",
        "prob_perplexity",
        "code_perplexity",
        "temp",
        "accuracy",
    ]
    assert curves.series["valid"].values["loss_2"] == [3.182]
    tqdm = parse_log_text(HYDRA_TQDM)
    assert list(tqdm.series) == ["train"] and tqdm.formats == ["pipes"]
    assert tqdm.series["train"].updates == [6] and tqdm.series["train"].values["loss"] == [8.881]


def test_other_lines_are_not_progress():
    assert parse_line("[2026-12-02 10:51:26,012][fairseq_cli.train][INFO] - {'_name': None,") is None
    assert parse_line("end of epoch 1 (average epoch stats below)") is None
    assert parse_line('{"epoch": 1, "loss": "0.1"}') is None  # no update number
    tag, update, stats, fmt = parse_line(LOG_FILE_JSON_EPOCH_END.splitlines()[0])
    assert (tag, update, fmt) == ("valid", 30, "json") and stats["loss"] == 0.2247


def test_resumed_run_continues_and_restart_from_scratch_keeps_the_last_run():
    resumed = parse_log_text(RESUMED)
    assert resumed.formats == ["simple", "pipes", "json"]
    assert resumed.series["train_inner"].updates == [5, 10, 15, 20, 25, 30]
    assert resumed.series["train_inner"].values["loss"] == [0.5665, 0.3783, 0.3052, 0.2808, 0.2671, 0.2602]
    assert resumed.series["valid"].updates == [20, 24, 30]
    restarted = parse_log_text(LOG_FILE_SIMPLE + RESUMED)  # same directory, trained again from scratch
    assert restarted.series["train_inner"].to_dict() == resumed.series["train_inner"].to_dict()
    assert restarted.series["valid"].updates == [20, 24, 30]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   \n\n",
        "Start iterating over samples\nnot a progress line\n",
        '{"epoch": 1, "update": 0.2, "num_updates": "x"}\n{"broken": ',
        "epoch 001:      5 / 24 lr=0.1, ups=3, num_updates=5\n",
    ],
)
def test_malformed_or_empty_log_raises_a_clear_error(text):
    with pytest.raises(LossLogError, match="empty|no training progress line|no loss term"):
        parse_log_text(text, source="run.log")


def test_missing_log(tmp_path):
    with pytest.raises(LossLogError, match="no training log at"):
        read_log(str(tmp_path / "absent.log"))


def test_write_loss_curve_png_and_json(tmp_path):
    log = tmp_path / "hydra_train.log"
    log.write_text(HYDRA_W2V_SIMPLE)
    png = tmp_path / "out" / "curve.png"
    curves = write_loss_curve(str(log), str(png), title="wav2vec2")
    width, height = _png_size(png)
    assert width > 600 and height > 400
    saved = json.loads((tmp_path / "out" / "curve.json").read_text())
    assert saved["terms"] == curves.terms and saved["source"] == str(log)
    assert saved["series"]["train_inner"] == {
        "num_updates": [2, 4],
        **{t: v for t, v in curves.series["train_inner"].to_dict().items() if t != "num_updates"},
    }
    assert saved["series"]["train_inner"]["loss"] == [10.473, 8.701]


def test_one_point_series_plots(tmp_path):
    png = plot_loss_curves(parse_log_text(HYDRA_TQDM), str(tmp_path / "tqdm.png"))
    assert _png_size(tmp_path / "tqdm.png")[0] > 0 and png.endswith("tqdm.png")


def test_cli_loss_curve(tmp_path, capsys):
    log = tmp_path / "train.log"
    log.write_text(LOG_FILE_SIMPLE)
    out = tmp_path / "redrawn.png"
    assert cli_main(["loss-curve", "--log", str(log), "--out", str(out)]) == 0
    _png_size(out)
    assert json.loads((tmp_path / "redrawn.json").read_text())["series"]["valid"]["num_updates"] == [24, 30]
    assert str(out) in capsys.readouterr().out
    empty = tmp_path / "empty.log"
    empty.write_text("")
    assert cli_main(["loss-curve", "--log", str(empty), "--out", str(tmp_path / "x.png")]) == 1
    err = capsys.readouterr().err
    assert "is empty" in err and "Traceback" not in err
    assert not (tmp_path / "x.png").exists()
