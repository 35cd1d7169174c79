import numpy as np
import pytest

from physioclr_ext.preprocess.labels import (
    LabelSpace,
    beats_to_aami,
    map_snomed,
    order_label_names,
    window_aami_class,
    window_beats,
)


def test_beat_symbols_to_aami_ignore_non_beats():
    symbols = list("NLRejAaJSVEF/fQ") + ["+", "~", "|", '"', "x", "!"]
    assert beats_to_aami(symbols) == list("NNNNNSSSSVVFQQQ")


@pytest.mark.parametrize(
    "classes, expected",
    [
        ([], None),
        (["N", "N"], "N"),
        (["N", "S", "S", "V"], "S"),  # most frequent non-N class
        (["N", "S", "V"], "V"),  # tie: V beats S
        (["F", "S"], "F"),  # tie: F beats S
        (["Q", "S"], "S"),  # tie: S beats Q
        (["N"] * 10 + ["Q"], "Q"),  # any non-N beat makes the window abnormal
    ],
)
def test_window_aami_rule(classes, expected):
    assert window_aami_class(classes) == expected


def test_window_beats_uses_half_open_span():
    samples = np.array([10, 100, 199, 200, 250])
    symbols = ["N", "V", "+", "A", "N"]
    assert window_beats(samples, symbols, 100, 200) == ["V"]  # "+" is no beat
    assert window_beats(samples, symbols, 200, 300) == ["S", "N"]
    assert window_beats(samples, symbols, 300, 400) == []


def test_binary_and_aami_encoding():
    binary = LabelSpace("binary", ("arrhythmia",))
    aami = LabelSpace("aami", ("N", "S", "V", "F", "Q"))
    assert binary.encode_window("N") == [0.0] and binary.encode_window("Q") == [1.0]
    assert aami.encode_window("V") == [2.0]
    assert aami.positives([2.0]) == [0, 0, 1, 0, 0]


def test_snomed_mapping_merges_equivalent_codes_in_table_order():
    assert map_snomed(["59118001", "426783006", "999999"]) == ["RBBB", "NSR"]
    assert map_snomed(["713427006", "59118001"]) == ["RBBB"]
    assert map_snomed(["17338001"]) == map_snomed(["427172004"]) == ["PVC"]
    assert map_snomed(["63593006"]) == ["PAC"] and map_snomed(["164909002"]) == ["LBBB"]


def test_snomed_table_has_the_26_scored_classes():
    from physioclr_ext.preprocess.labels import SNOMED_CLASSES, SNOMED_TO_NAME

    assert len(SNOMED_CLASSES) == 26 and len(SNOMED_TO_NAME) == 30


def test_label_order_and_multilabel_encoding():
    names = order_label_names({"Zeta", "SB", "AF"}, ("AF", "NSR", "SB"), use_table=False)
    assert names == ["AF", "SB", "Zeta"]
    assert order_label_names(set(), ("AF", "NSR"), use_table=True) == ["AF", "NSR"]
    space = LabelSpace("multilabel", tuple(names))
    assert space.encode_record(["SB"]) == [0.0, 1.0, 0.0]
    assert space.width == 3
