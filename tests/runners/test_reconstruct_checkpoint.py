"""The framework-free parts of the reconstruct command (physioclr_ext.runners.reconstruct_checkpoint): which windows,
which lead names, and the refusal of models without ``reconstruct``."""

import json

import pytest

from physioclr_ext.runners.reconstruct_checkpoint import (
    ReconstructError,
    ReconstructionUnsupportedError,
    check_reconstructs,
    preprocess_leads,
    resolve_lead_names,
    select_windows,
)

LEADS = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]


def write_manifest(tmp_path, paths, records=None):
    (tmp_path / "test.tsv").write_text(str(tmp_path) + "\n" + "".join(f"{p}\t2500\n" for p in paths))
    if records is not None:
        rows = ["path,record,patient,window"] + [f"{p},{r},{r},{k}" for k, (p, r) in enumerate(zip(paths, records))]
        (tmp_path / "windows.csv").write_text("\n".join(rows) + "\n")
    return str(tmp_path / "test.tsv")


def test_first_window_of_each_record_in_manifest_order(tmp_path):
    paths = ["mat/213_0.mat", "mat/213_1.mat", "mat/100_0.mat", "mat/213_2.mat", "mat/106_0.mat", "mat/106_1.mat"]
    manifest = write_manifest(tmp_path, paths, ["213", "213", "100", "213", "106", "106"])
    chosen = select_windows(manifest, 2)
    assert [(w.path, w.record, w.name) for w in chosen] == [
        ("mat/213_0.mat", "213", "213"),
        ("mat/100_0.mat", "100", "100"),
    ]
    assert [w.record for w in select_windows(manifest, 10)] == ["213", "100", "106"]


def test_without_windows_csv_the_first_windows_named_by_stem(tmp_path):
    manifest = write_manifest(tmp_path, ["mat/a_0.mat", "mat/a_1.mat", "mat/b 2.mat"])
    assert [w.name for w in select_windows(manifest, 3)] == ["a_0", "a_1", "b_2"]


def test_record_names_are_made_file_safe(tmp_path):
    manifest = write_manifest(tmp_path, ["mat/x_0.mat"], ["../p/q r"])
    assert select_windows(manifest, 1)[0].name == "p_q_r"


def test_lead_names_from_preprocess_json(tmp_path):
    assert preprocess_leads(str(tmp_path)) is None
    (tmp_path / "preprocess.json").write_text(json.dumps({"window": {"leads": LEADS}}))
    assert preprocess_leads(str(tmp_path)) == LEADS


def test_resolve_lead_names():
    assert resolve_lead_names(12, None, LEADS, list(range(12))) == LEADS
    assert resolve_lead_names(2, None, LEADS, [1, 6]) == ["II", "V1"]  # task.leads_to_load "['II','V1']"
    assert resolve_lead_names(2, ["MLII", "V5"], LEADS, list(range(12))) == ["MLII", "V5"]
    assert resolve_lead_names(3, None, LEADS, list(range(12))) is None  # does not fit: plot defaults
    assert resolve_lead_names(12, None, None, None) is None
    with pytest.raises(ReconstructError, match="2 names, the model sees 12"):
        resolve_lead_names(12, ["I", "II"], LEADS, None)


def test_a_model_without_reconstruct_is_refused_with_the_names_of_those_that_have_it():
    class Encoder:
        pass

    class MAE:
        def reconstruct(self, x):
            return x

    check_reconstructs(MAE(), "ecg_mae", "mae.pt")
    with pytest.raises(
        ReconstructionUnsupportedError, match=r"'ecg_contrastive' of c\.pt has no reconstruct\(\)"
    ) as err:
        check_reconstructs(Encoder(), "ecg_contrastive", "c.pt")
    assert "ecg_mae" in str(err.value) and "st_mem" in str(err.value)


def test_the_subcommand_parses_without_fairseq_signals():
    from physioclr_ext.evaluation.cli import build_parser
    from physioclr_ext.runners import evaluation_commands
    from physioclr_ext.runners.evaluation_commands import COMMANDS

    args = build_parser(evaluation_commands).parse_args(
        ["reconstruct", "--checkpoint", "c.pt", "--manifest", "d/test.tsv", "--out", "o"]
    )
    assert "reconstruct" in COMMANDS
    assert (args.n_records, args.seed, args.mask_ratio, args.lead_names) == (4, 0, None, None)
    args = build_parser(evaluation_commands).parse_args(
        [
            "reconstruct",
            "--checkpoint",
            "c.pt",
            "--manifest",
            "m",
            "--out",
            "o",
            "--n-records",
            "2",
            "--mask-ratio",
            "0.5",
            "--lead-names",
            "II,V1",
        ]
    )
    assert (args.n_records, args.mask_ratio, args.lead_names) == (2, 0.5, "II,V1")
