"""Checkpoint inspection without fairseq-signals: the lead selection a classifier was trained with."""

import torch

from physioclr_ext.runners.checkpoints import lead_overrides, main


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
