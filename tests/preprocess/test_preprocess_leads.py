import numpy as np
import pytest

from physioclr_ext.preprocess.leads import CANONICAL_LEADS, canonical_lead_name, parse_lead_list, select_leads


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("MLII", "II"),
        ("avr", "aVR"),
        ("AVF", "aVF"),
        ("v1", "V1"),
        ("Lead III", "III"),
        ("i", "I"),
        ("ABP", None),
        ("V7", None),
    ],
)
def test_canonical_lead_name(raw, expected):
    assert canonical_lead_name(raw) == expected


def test_parse_lead_list_keeps_order_and_rejects_unknown():
    assert parse_lead_list(None) == CANONICAL_LEADS
    assert parse_lead_list("all") == CANONICAL_LEADS
    assert parse_lead_list("v1, mlii") == ("V1", "II")
    with pytest.raises(ValueError):
        parse_lead_list("II,V9")
    with pytest.raises(ValueError):
        parse_lead_list("II,MLII")


def test_select_leads_orders_and_zero_fills_mitbih_channels():
    signal = np.vstack([np.full(5, 1.0), np.full(5, 2.0)])  # MLII, V1
    out, present, missing = select_leads(signal, ["MLII", "V1"], CANONICAL_LEADS)
    assert out.shape == (12, 5)
    np.testing.assert_array_equal(out[1], 1.0)
    np.testing.assert_array_equal(out[6], 2.0)
    assert present.tolist() == [lead in ("II", "V1") for lead in CANONICAL_LEADS]
    assert missing == [lead for lead in CANONICAL_LEADS if lead not in ("II", "V1")]
    np.testing.assert_array_equal(out[~present], 0.0)


def test_select_leads_subset_in_requested_order():
    signal = np.arange(12 * 3, dtype=float).reshape(12, 3)
    names = [n.lower() for n in CANONICAL_LEADS]
    out, present, missing = select_leads(signal, names, ("V6", "I"))
    np.testing.assert_array_equal(out, signal[[11, 0]])
    assert present.all() and missing == []
