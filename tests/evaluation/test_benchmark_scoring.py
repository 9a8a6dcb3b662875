"""Benchmark-specific sub-score rules on hand-made outcomes: VL-CheckList per-source means, ARO macro averages."""

from __future__ import annotations

import pytest

from fsc_clip.evaluation.base import ImageRef, ImageToTextItem
from fsc_clip.evaluation.benchmarks.aro import ARO, excluded_relations
from fsc_clip.evaluation.benchmarks.vl_checklist import VLCheckList


def _items(spec):
    """spec: list of (subset, category, [outcomes])."""
    items, correct = [], []
    for subset, cat, outs in spec:
        for o in outs:
            items.append(ImageToTextItem(ImageRef("x.jpg"), ["p", "n"], 0, subset, cat))
            correct.append(o)
    return items, {"correct": correct}


def test_vl_checklist_mean_over_sources_of_mean_over_files():
    items, outcomes = _items(
        [
            ("Object_Location_center", "vg/vg_obj", [True, True, False, False]),  # 50
            ("Object_Location_center", "vg/vg_subj", [True]),  # 100 -> vg = 75
            ("Object_Location_center", "swig/swig_agent", [True, False, False, False]),  # 25
            ("Object_Location_center", "swig/swig_item", [False]),  # 0
            ("Object_Location_center", "swig/swig_destination", [True, True]),  # 100
            ("Object_Location_center", "swig/swig_tool", [False, False]),  # 0 -> swig = 31.25
            ("Object_Location_center", "hake/hake", [True, True]),  # 100
            ("Attribute_state", "vg/vg", [True, False]),  # 50
            ("Attribute_state", "vaw/vaw", [True, True, True, False]),  # 75
        ]
    )
    scores, counts = VLCheckList().score(items, outcomes)
    assert scores["vl_checklist::Object_Location_center"] == pytest.approx((75 + 31.25 + 100) / 3)
    assert scores["vl_checklist::Attribute_state"] == pytest.approx(62.5)
    assert counts == {"vl_checklist::Object_Location_center": 16, "vl_checklist::Attribute_state": 6}


def test_aro_macro_and_pooled_rules():
    excluded = sorted(excluded_relations())[0]
    items, outcomes = _items(
        [
            ("VG_Relation", "on", [True, False]),  # 50
            ("VG_Relation", "eating", [True]),  # 100
            ("VG_Relation", excluded, [False, False, False]),  # dropped
            ("VG_Attribute", "red_blue", [True] * 20 + [False] * 5),  # 80, kept (25 items)
            ("VG_Attribute", "big_small", [False] * 24),  # dropped (< 25)
            ("COCO_Order", "", [True, False, False, False]),  # pooled 25
            ("Flickr30k_Order", "", [True, True, False]),
        ]
    )
    scores, counts = ARO().score(items, outcomes)
    assert list(scores) == ["aro::VG_Relation", "aro::VG_Attribute", "aro::Flickr30k_Order", "aro::COCO_Order"]
    assert scores["aro::VG_Relation"] == pytest.approx(75.0)
    assert scores["aro::VG_Attribute"] == pytest.approx(80.0)
    assert scores["aro::COCO_Order"] == pytest.approx(25.0)
    assert scores["aro::Flickr30k_Order"] == pytest.approx(200 / 3)
    assert counts["aro::VG_Relation"] == 3 and counts["aro::VG_Attribute"] == 25
    assert ARO.aggregate(scores) == pytest.approx((75 + 80 + 25 + 200 / 3) / 4)
