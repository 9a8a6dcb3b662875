"""Task scorers on hand-made score matrices with known answers, including ties and NaN."""

from __future__ import annotations

import math

import pytest
import torch

from fsc_clip.evaluation.base import GroupItem, ImageRef, ImageToTextItem, TextToImageItem
from fsc_clip.evaluation.tasks import macro_accuracy, pooled_accuracy
from fsc_clip.evaluation.tasks.group import group_outcomes
from fsc_clip.evaluation.tasks.multiple_choice import multiple_choice_correct


def test_multiple_choice_known_answers():
    scores = torch.tensor(
        [
            [0.9, 0.1, 0.2],  # label 0 wins
            [0.3, 0.5, 0.1],  # label 0 loses
            [0.3, 0.5, 0.1],  # label 1 wins
            [0.2, 0.2, 0.1],  # tie at the top between label and another: failure
            [0.2, 0.2, 0.2],  # all tied: failure
            [0.1, 0.4, 0.4],  # tie between two wrong ones above the label: failure
            [0.5, 0.4, 0.4],  # tie among the wrong ones below the label: success
            [float("nan"), 0.1, 0.2],  # NaN: failure
        ]
    )
    labels = torch.tensor([0, 0, 1, 0, 2, 0, 0, 0])
    got = multiple_choice_correct(scores, labels).tolist()
    assert got == [True, False, True, False, False, False, True, False]


def test_multiple_choice_single_candidate_and_shapes():
    assert multiple_choice_correct(torch.tensor([[0.3]]), torch.tensor([0])).tolist() == [True]
    with pytest.raises(ValueError):
        multiple_choice_correct(torch.zeros(3), torch.zeros(3, dtype=torch.long))


def test_multiple_choice_matches_bruteforce():
    g = torch.Generator().manual_seed(0)
    scores = torch.randint(0, 4, (200, 5), generator=g).float()  # many ties on purpose
    labels = torch.randint(0, 5, (200,), generator=g)
    got = multiple_choice_correct(scores, labels).tolist()
    want = [all(s[int(lbl)] > s[j] for j in range(5) if j != int(lbl)) for s, lbl in zip(scores.tolist(), labels)]
    assert got == want


def test_group_outcomes_known_answers():
    # s[m, caption, image]
    s = torch.tensor(
        [
            [[0.9, 0.1], [0.2, 0.8]],  # perfect: text, image, group
            [[0.9, 0.95], [0.2, 0.96]],  # text ok (0.9>0.2, 0.96>0.95); image: c0 prefers i1 -> fail
            [[0.5, 0.1], [0.6, 0.7]],  # text: i0 prefers c1 -> fail; image: 0.5>0.1 and 0.7>0.6 -> ok
            [[0.5, 0.5], [0.1, 0.9]],  # tie c0i0 == c0i1: image fails; text: 0.5>0.1, 0.9>0.5 ok
            [[0.5, 0.5], [0.5, 0.5]],  # all tied: all fail
        ]
    )
    out = group_outcomes(s)
    assert out["text"].tolist() == [True, True, False, True, False]
    assert out["image"].tolist() == [True, False, True, False, False]
    assert out["group"].tolist() == [True, False, False, False, False]
    with pytest.raises(ValueError):
        group_outcomes(torch.zeros(2, 3, 2))


def _ref() -> ImageRef:
    return ImageRef("x.jpg")


def test_pooled_and_macro_accuracy():
    items = [
        ImageToTextItem(_ref(), ["a", "b"], 0, "s1", "c1"),
        ImageToTextItem(_ref(), ["a", "b"], 0, "s1", "c1"),
        ImageToTextItem(_ref(), ["a", "b"], 0, "s1", "c2"),
        TextToImageItem("t", [_ref(), _ref()], 0, "s2"),
        GroupItem((_ref(), _ref()), ("a", "b"), "g"),
        GroupItem((_ref(), _ref()), ("a", "b"), ""),
    ]
    outcomes = {
        "correct": [True, False, True, True, None, None],
        "text": [None] * 4 + [True, False],
        "image": [None] * 4 + [False, True],
        "group": [None] * 4 + [False, False],
    }
    scores, counts = pooled_accuracy("b", items, outcomes)
    assert scores["b::s1"] == pytest.approx(200 / 3)
    assert scores["b::s2"] == 100.0
    assert scores["b::g::text"] == 100.0 and scores["b::g::image"] == 0.0 and scores["b::g::group"] == 0.0
    assert scores["b::text"] == 0.0 and scores["b::image"] == 100.0
    assert counts["b::s1"] == 3 and counts["b::g::group"] == 1
    macro, mcounts = macro_accuracy("b", items[:3], {"correct": outcomes["correct"][:3]})
    assert macro["b::s1"] == pytest.approx((50.0 + 100.0) / 2)
    macro2, _ = macro_accuracy("b", items[:3], {"correct": outcomes["correct"][:3]}, min_count=2)
    assert macro2["b::s1"] == 50.0
    assert not math.isnan(macro["b::s1"]) and mcounts["b::s1"] == 3
