"""Checkpoint inspection without fairseq-signals: the lead selection a classifier was trained with, and the
fine-tuning config the data's labels need."""

import json

import pytest
import torch

from physioclr_ext.runners.checkpoints import CheckpointError, label_finetune_config, lead_overrides, main


def _save(path, task):
    torch.save({"cfg": {"model": {"_name": "ecg_ssl_classifier"}, "task": task}, "model": {}}, path)


def test_lead_overrides_repeat_the_training_selection(tmp_path, capsys):
    path = tmp_path / "lead2.pt"
    _save(path, {"leads_to_load": "[1]", "enable_padding_leads": True})  # stored as fairseq-signals' string
    assert lead_overrides(str(path)) == ["+task.leads_to_load='[1]'", "task.enable_padding_leads=true"]
    assert main(["lead-overrides", str(path)]) == 0
    assert capsys.readouterr().out.split() == ["+task.leads_to_load='[1]'", "task.enable_padding_leads=true"]


def test_every_lead_gives_no_override(tmp_path):
    path = tmp_path / "all.pt"
    _save(path, {"leads_to_load": None})
    assert lead_overrides(str(path)) == []
    _save(path, {})
    assert lead_overrides(str(path)) == []


def _data(tmp_path, scheme):
    data = tmp_path / scheme
    data.mkdir()
    (data / "preprocess.json").write_text(json.dumps({"labels": {"scheme": scheme, "names": ["A", "B", "C"]}}))
    return str(data)


def test_class_index_labels_choose_the_multiclass_config(tmp_path):
    """A one-class-per-record labels CSV (or AAMI) gives class indices: the BCE default config cannot fit
    them (target (B,) against logits (B, K)), its _multiclass variant (cross_entropy) can."""
    multiclass, aami, multilabel = (_data(tmp_path, s) for s in ("multiclass", "aami", "multilabel"))
    assert label_finetune_config("ecg_ssl_classifier_tiny", multiclass) == "ecg_ssl_classifier_multiclass_tiny"
    assert label_finetune_config("ecg_ssl_classifier", aami) == "ecg_ssl_classifier_multiclass"
    assert label_finetune_config("ecg_ssl_classifier_tiny", multilabel) == "ecg_ssl_classifier_tiny"
    assert label_finetune_config("ecg_ssl_classifier_tiny", str(tmp_path)) == "ecg_ssl_classifier_tiny"  # no json
    with pytest.raises(CheckpointError, match="no physioclr_classifier_multiclass_tiny.yaml: pass --config"):
        label_finetune_config("physioclr_classifier_tiny", multiclass)


def test_finetune_config_command_reads_the_data_labels(tmp_path, capsys):
    path = tmp_path / "pt.pt"
    torch.save({"cfg": {"model": {"_name": "ecg_contrastive"}}, "model": {}}, path)
    data = _data(tmp_path, "multiclass")
    assert main(["finetune-config", str(path), "--tiny", "--data", data]) == 0
    assert capsys.readouterr().out.strip() == "ecg_ssl_classifier_multiclass_tiny"
    torch.save({"cfg": {"model": {"_name": "wav2vec2_physioCLR"}}, "model": {}}, path)
    assert main(["finetune-config", str(path), "--data", data]) == 2
    assert "multiclass labels" in capsys.readouterr().err
