"""The data decides its own shape (``runners.data_shape``), without fairseq-signals: small ``preprocess.json``
files written here, the repository's real configs, and checkpoints saved as plain dicts."""

import json
from pathlib import Path

import pytest
import torch

from physioclr_ext.runners.data_shape import (
    CANONICAL,
    DataShapeError,
    main,
    parse_overrides,
    plan_shape,
    read_data_shape,
    shape_overrides,
)

REPO = Path(__file__).resolve().parents[2]
PRETRAIN = REPO / "configs" / "pretraining"
FINETUNE = REPO / "configs" / "finetuning"
HYBRID = ["rr", "qrs", "p", "t", "st", "a", "b", "c", "d", "e", "f"]  # 11 rows after the leads


def _data(tmp_path, leads, rate=500, length=2500, hybrid=(), pairs=4, name=None):
    out = tmp_path / (name or f"d{len(leads)}_{rate}_{length}")
    out.mkdir(exist_ok=True)
    meta = {
        "window": {"sample_rate": rate, "length_samples": length, "hop_samples": length, "leads": list(leads)},
        "splits": {"train": {"windows": 10, "cmsc_pairs": pairs}},
    }
    if hybrid:
        meta["hybrid"] = {"channels": list(leads) + list(hybrid), "n_channels": len(leads) + len(hybrid)}
    (out / "preprocess.json").write_text(json.dumps(meta))
    return str(out)


def _as_dict(overrides):
    return {k.lstrip("+"): v for k, _, v in (o.partition("=") for o in overrides)}


def _checkpoint(path, model, task):
    torch.save({"cfg": {"model": model, "task": task}, "model": {}}, path)
    return str(path)


def test_the_issue_case_single_lead_300_hz(tmp_path):
    """`--leads I --sample-rate 300` data: wav2vec2 failed with `sample rate: [[300]], need 500`, then index 6."""
    data = _data(tmp_path, ["I"], rate=300, length=3000)
    got = shape_overrides(str(PRETRAIN / "wav2vec2_tiny.yaml"), data)
    assert got == ["model.in_d=1", "task.sample_rate=300", "task.leads_to_load='[0]'"]
    physio = _as_dict(shape_overrides(str(PRETRAIN / "physioclr_tiny.yaml"), data))
    assert physio == {"model.in_d": "1", "task.sample_rate": "300", "task.leads_to_load": "'[0]'"}


def test_read_data_shape_and_a_directory_without_it(tmp_path):
    shape = read_data_shape(_data(tmp_path, ["II", "V1"], rate=360, length=3600, hybrid=HYBRID))
    assert shape.channels == ("II", "V1", *HYBRID) and shape.sample_rate == 360 and shape.length == 3600
    assert read_data_shape(str(tmp_path / "nothing")) is None
    plan = plan_shape(str(PRETRAIN / "ecg_mae_tiny.yaml"), str(tmp_path / "nothing"))
    assert plan.overrides == [] and "no preprocess.json" in plan.notes[0]


@pytest.mark.parametrize("n_leads", [1, 2, 12])
@pytest.mark.parametrize("config", sorted(p.name for p in PRETRAIN.glob("*.yaml")))
def test_every_pretraining_config_takes_the_data_or_says_why(tmp_path, config, n_leads):
    """Invariant over every config and lead count: the task reads the data's rate and existing rows only,
    and the model's channel field equals the number of rows loaded; else one line naming a fix."""
    leads = {1: ["II"], 2: ["II", "V1"], 12: list(CANONICAL)}[n_leads]
    data = _data(tmp_path, leads, rate=250, length=1250)
    try:
        got = _as_dict(shape_overrides(str(PRETRAIN / config), data))
    except DataShapeError as exc:
        assert config.startswith(("clocs_cmlc", "clocs_cmsmlc")) and n_leads == 1, exc
        assert "\n" not in str(exc) and "--leads" in str(exc)
        return
    rows = json.loads(got["task.leads_to_load"].strip("'"))
    assert got["task.sample_rate"] == "250" and rows and max(rows) < n_leads and len(set(rows)) == len(rows)
    for key in ("model.in_channels", "model.in_d", "model.num_leads"):
        if key in got:
            assert int(got[key]) == len(rows), (key, got)
    if "model.seq_len" in got:
        assert int(got["model.seq_len"]) <= 1250


def test_user_overrides_win_and_are_checked_against_the_rows(tmp_path):
    data = _data(tmp_path, ["I"], rate=300)
    user = ["task.sample_rate=null", "model.in_d=12"]
    got = shape_overrides(str(PRETRAIN / "wav2vec2_tiny.yaml"), data, user)
    assert got == ["task.leads_to_load='[0]'"]
    with pytest.raises(DataShapeError, match=r"row 6 .*1 lead \(I\)"):
        shape_overrides(str(PRETRAIN / "wav2vec2_tiny.yaml"), data, ["task.leads_to_load='[6]'"])
    two = _data(tmp_path, ["II", "V1"])
    got = _as_dict(shape_overrides(str(PRETRAIN / "ecg_mae_tiny.yaml"), two, ["task.leads_to_load='[1]'"]))
    assert got == {"model.in_channels": "1", "task.sample_rate": "500"}


def test_parse_overrides_reads_hydra_values():
    assert parse_overrides(["+task.leads_to_load='[0,1]'", "model.leads=[II,V1]", "x=3", "flag"]) == {
        "task.leads_to_load": "[0,1]",
        "model.leads": ["II", "V1"],
        "x": 3,
    }


def test_ecg_jepa_lead_table(tmp_path):
    """8 rows I, II, V1-V6: a subset maps to its rows, 12 leads load the 8, other leads stop."""
    config = str(PRETRAIN / "ecg_jepa_tiny.yaml")
    got = _as_dict(shape_overrides(config, _data(tmp_path, ["II", "V1"], rate=250)))
    assert got["model.leads"] == "[1,2]" and got["task.leads_to_load"] == "'[0,1]'"
    assert "model.seq_len" not in got and "task.max_sample_size" not in got  # 2500 samples: as configured
    plan = plan_shape(config, _data(tmp_path, list(CANONICAL), rate=250))
    got = _as_dict(plan.overrides)
    assert got["task.leads_to_load"] == "'[0,1,6,7,8,9,10,11]'" and got["model.leads"] == "null"
    assert any("III, aVR, aVL, aVF" in n for n in plan.notes)
    with pytest.raises(DataShapeError, match=r"III.*model.num_leads=2 model.leads=null"):
        shape_overrides(config, _data(tmp_path, ["II", "III"], rate=250))
    got = _as_dict(shape_overrides(config, _data(tmp_path, ["II", "III"], rate=250), ["model.num_leads=2"]))
    assert got["task.leads_to_load"] == "'[0,1]'" and "model.leads" not in got
    hybrid = _as_dict(shape_overrides(config, _data(tmp_path, list(CANONICAL[:1]) + ["II"], hybrid=HYBRID)))
    assert hybrid["model.num_leads"] == "13" and hybrid["model.leads"] == "null"


def test_window_lengths_that_need_a_model_change(tmp_path):
    """ECG-JEPA: whole patches, cropped by the task; ST-MEM: shorter crop; MAE: position table; CLOCS: input."""
    odd = _data(tmp_path, ["I"], rate=250, length=1234)
    got = _as_dict(shape_overrides(str(PRETRAIN / "ecg_jepa_tiny.yaml"), odd))
    assert got["model.seq_len"] == "1200" and got["task.max_sample_size"] == "1200"
    assert _as_dict(shape_overrides(str(PRETRAIN / "st_mem_vit_s_tiny.yaml"), odd))["model.seq_len"] == "1200"
    long = _data(tmp_path, ["I"], rate=500, length=10000)
    got = _as_dict(shape_overrides(str(PRETRAIN / "st_mem_vit_s_tiny.yaml"), long))
    assert "model.seq_len" not in got  # long enough: the model crops its 2250 itself
    assert _as_dict(shape_overrides(str(PRETRAIN / "ecg_mae_tiny.yaml"), long))["model.max_patches"] == "80"
    assert (
        _as_dict(shape_overrides(str(PRETRAIN / "clocs_cmsc_tiny.yaml"), odd))["model.encoder_args.input_length"]
        == "1234"
    )
    tiny = _data(tmp_path, ["I"], rate=100, length=40)
    for config, fix in (("ecg_mae_tiny", "model.patch_size"), ("st_mem_vit_s_tiny", "model.patch_size")):
        with pytest.raises(DataShapeError, match=fix):
            shape_overrides(str(PRETRAIN / f"{config}.yaml"), tiny)
    with pytest.raises(DataShapeError, match="too short for the CLOCS CNN"):
        shape_overrides(str(PRETRAIN / "clocs_cmsc_tiny.yaml"), tiny)


def test_lfbt_takes_its_leads_by_name_or_one_encoder_per_data_lead(tmp_path):
    config = str(PRETRAIN / "lfbt_tiny.yaml")
    twelve = _as_dict(shape_overrides(config, _data(tmp_path, list(CANONICAL))))
    assert twelve["task.leads_to_load"] == "'[1,2,6,7,8,9,10,11]'" and "model.leads" not in twelve
    one = _as_dict(shape_overrides(config, _data(tmp_path, ["I"])))
    assert one["model.leads"] == "[I]" and one["task.leads_to_load"] == "'[0]'"


def test_clocs_modes_need_what_they_contrast(tmp_path):
    with pytest.raises(DataShapeError, match="CMLC contrasts the leads"):
        shape_overrides(str(PRETRAIN / "clocs_cmlc_tiny.yaml"), _data(tmp_path, ["II"]))
    with pytest.raises(DataShapeError, match=r"CMSMLC contrasts the leads .*1 lead \(II\)"):  # 2 views, needs 4+
        shape_overrides(str(PRETRAIN / "clocs_cmsmlc_tiny.yaml"), _data(tmp_path, ["II"]))
    with pytest.raises(DataShapeError, match="CMSMLC"):  # the user's one row, out of two leads
        shape_overrides(
            str(PRETRAIN / "clocs_cmsmlc_tiny.yaml"), _data(tmp_path, ["II", "V1"]), ["task.leads_to_load='[1]'"]
        )
    with pytest.raises(DataShapeError, match="adjacent window pairs"):
        shape_overrides(str(PRETRAIN / "clocs_cmsc_tiny.yaml"), _data(tmp_path, ["II"], pairs=0))
    got = _as_dict(shape_overrides(str(PRETRAIN / "clocs_cmlc_tiny.yaml"), _data(tmp_path, ["II", "V1"])))
    assert "model.in_channels" not in got  # single-lead views whatever the lead count


def _pretrained(tmp_path, leads, rate=500, length=2500, model=None, rows=None):
    data = _data(tmp_path, leads, rate=rate, length=length, name="pretrain_data")
    task = {"data": data, "sample_rate": rate, "leads_to_load": rows, "enable_padding_leads": False}
    return _checkpoint(tmp_path / "pre.pt", model or {"_name": "ecg_mae", "in_channels": 2, "patch_size": 125}, task)


def test_finetuning_loads_the_checkpoint_leads_in_its_order(tmp_path):
    ckpt = _pretrained(tmp_path, ["II", "V1", "V5"], rows="[0,1]")
    data = _data(tmp_path, list(CANONICAL))
    got = shape_overrides(str(FINETUNE / "ecg_ssl_classifier_tiny.yaml"), data, checkpoint=ckpt)
    assert got == ["task.sample_rate=500", "task.leads_to_load='[1,6]'"]


def test_finetuning_says_what_differs_from_the_checkpoint(tmp_path):
    config = str(FINETUNE / "ecg_ssl_classifier_tiny.yaml")
    ckpt = _pretrained(tmp_path, ["II", "V1"])
    with pytest.raises(DataShapeError, match=r"trained at 500 Hz .* 300 Hz: .*--sample-rate 500"):
        shape_overrides(config, _data(tmp_path, ["II", "V1"], rate=300), checkpoint=ckpt)
    assert shape_overrides(config, _data(tmp_path, ["II", "V1"], rate=300), ["task.sample_rate=300"], ckpt)
    with pytest.raises(DataShapeError, match=r"lacks V1: preprocess with --leads II V1"):
        shape_overrides(config, _data(tmp_path, ["II"]), checkpoint=ckpt)
    st_mem = _pretrained(tmp_path, list(CANONICAL), model={"_name": "st_mem", "num_leads": 12, "seq_len": 2250})
    with pytest.raises(DataShapeError, match=r"needs 2250 or more .*--window-seconds 4.5"):
        shape_overrides(config, _data(tmp_path, list(CANONICAL), length=2000), checkpoint=st_mem)
    jepa = _pretrained(
        tmp_path, ["I", "II"], model={"_name": "ecg_jepa", "num_leads": 8, "leads": [0, 1], "seq_len": 2500}
    )
    plan = plan_shape(config, _data(tmp_path, ["II", "I"], length=5000), checkpoint=jepa)
    assert _as_dict(plan.overrides) == {
        "task.sample_rate": "500",
        "task.leads_to_load": "'[1,0]'",
        "task.max_sample_size": "2500",
    }


def test_checkpoint_without_its_data_uses_the_model_config(tmp_path):
    """Imported weights: LFBT names its leads, a 12-channel model the 12 standard leads, others only count."""
    task = {"data": None, "sample_rate": 500, "leads_to_load": None}
    lfbt = _checkpoint(tmp_path / "lfbt.pt", {"_name": "lfbt", "leads": ["II", "III", "V1"]}, task)
    got = _as_dict(
        shape_overrides(
            str(FINETUNE / "ecg_ssl_classifier_tiny.yaml"), _data(tmp_path, list(CANONICAL)), checkpoint=lfbt
        )
    )
    assert got["task.leads_to_load"] == "'[1,2,6]'"
    w2v = _checkpoint(tmp_path / "w2v.pt", {"_name": "wav2vec2", "in_d": 2}, task)
    with pytest.raises(DataShapeError, match="takes 2 channels"):
        shape_overrides(str(FINETUNE / "ecg_transformer_classifier_tiny.yaml"), _data(tmp_path, ["I"]), checkpoint=w2v)


def test_inference_repeats_the_fine_tuning_rows(tmp_path):
    """A fine-tuned classifier: its task's rows (lead II of the demo, padded to 12) or, by name, in new data."""
    data = _data(tmp_path, list(CANONICAL), name="ft_data")
    padded = {"data": data, "sample_rate": 500, "leads_to_load": "[1]", "enable_padding_leads": True}
    model = {"_name": "ecg_ssl_classifier", "pretrained_model_cfg": {"_name": "wav2vec2", "in_d": 12}}
    ckpt = _checkpoint(tmp_path / "ft.pt", model, padded)
    config = str(REPO / "configs" / "inference" / "classifier.yaml")
    assert shape_overrides(config, data, checkpoint=ckpt) == [
        "task.enable_padding_leads=true",
        "+task.sample_rate=500",
        "+task.leads_to_load='[1]'",
    ]
    no_json = tmp_path / "plain"
    no_json.mkdir()
    assert shape_overrides(config, str(no_json), checkpoint=ckpt) == [
        "+task.leads_to_load='[1]'",
        "task.enable_padding_leads=true",
    ]


def test_command_line(tmp_path, capsys):
    data = _data(tmp_path, ["I"], rate=300)
    assert (
        main(
            ["overrides", "--config", str(PRETRAIN / "ecg_mae_tiny.yaml"), "--data", data, "--", "model.in_channels=1"]
        )
        == 0
    )
    out = capsys.readouterr()
    assert out.out.split() == ["task.sample_rate=300", "task.leads_to_load='[0]'"]
    assert "shape: data: 1 lead (I), 300 Hz" in out.err
    assert main(["overrides", "--config", str(PRETRAIN / "clocs_cmlc_tiny.yaml"), "--data", data]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: clocs CMLC") and err.count("\n") == 1


def test_length_defaults_are_the_core_configs():
    """A YAML that leaves a size out gets the model's own default, which the rules assume."""
    from physioclr_ext.modules.clocs_encoder import ClocsCNNConfig
    from physioclr_ext.modules.ecg_jepa import ECGJEPAConfig
    from physioclr_ext.modules.ecg_mae import ECGMAEConfig
    from physioclr_ext.modules.ecg_vqvae import ECGVQVAEConfig
    from physioclr_ext.modules.st_mem import STMEMConfig
    from physioclr_ext.runners.data_shape import length_need

    assert length_need({"_name": "st_mem"}).minimum == STMEMConfig().seq_len
    assert length_need({"_name": "ecg_jepa"}).crop == ECGJEPAConfig().seq_len
    assert length_need({"_name": "ecg_vqvae"}).minimum == ECGVQVAEConfig().signal_len
    mae = length_need({"_name": "ecg_mae"})
    assert (mae.minimum, mae.crop) == (
        ECGMAEConfig().patch_size,
        ECGMAEConfig().patch_size * ECGMAEConfig().max_patches,
    )
    clocs = length_need({"_name": "ecg_contrastive", "encoder": "clocs_cnn"})
    assert clocs.minimum == clocs.crop == ClocsCNNConfig().input_length
    assert (STMEMConfig().patch_size, ECGJEPAConfig().patch_size) == (75, 50)  # _fit_seq_len's defaults
