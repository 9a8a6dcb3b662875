"""Zero-shot metrics on hand-made scores with known values, and the prompt-ensemble classifier."""

from __future__ import annotations

import pytest
import torch

from fsc_clip.evaluation.tasks.zeroshot import (
    average_precision_n_points,
    build_classifier,
    classifier_from_embeddings,
    compute_metric,
    eleven_point_map,
    fill_templates,
    mean_per_class_accuracy,
    roc_auc,
    top1_accuracy,
    zeroshot_probs,
)

T = torch.tensor


def test_top1_accuracy_counts_ties_as_failures():
    scores = T([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5], [0.3, 0.7]])
    labels = T([0, 1, 0, 0])
    assert top1_accuracy(scores, labels) == pytest.approx(0.5)  # the tie (row 3) is a miss


def test_top1_accuracy_nan_is_failure():
    assert top1_accuracy(T([[float("nan"), 0.1], [0.9, 0.1]]), T([0, 0])) == pytest.approx(0.5)


def test_mean_per_class_accuracy_is_balanced():
    scores = T([[0.9, 0.1], [0.2, 0.8], [0.1, 0.9], [0.3, 0.7]])
    labels = T([0, 0, 0, 1])  # class 0: 1/3 correct, class 1: 1/1
    assert mean_per_class_accuracy(scores, labels) == pytest.approx((1 / 3 + 1) / 2)
    assert top1_accuracy(scores, labels) == pytest.approx(0.5)


def test_mean_per_class_ignores_absent_classes():
    scores = T([[0.9, 0.1, 0.0], [0.2, 0.8, 0.0]])
    labels = T([0, 0])  # classes 1 and 2 never occur
    assert mean_per_class_accuracy(scores, labels) == pytest.approx(0.5)


def test_roc_auc_known_values():
    # the classic example: AUC 0.75
    assert roc_auc(T([0.1, 0.4, 0.35, 0.8]), T([0, 0, 1, 1])) == pytest.approx(0.75)
    # 2-column probabilities use column 1; a tied (pos, neg) pair counts 1/2 -> 3.5 / 4
    probs = T([[0.5, 0.5], [0.5, 0.5], [0.8, 0.2], [0.1, 0.9]])
    assert roc_auc(probs, T([1, 0, 0, 1])) == pytest.approx(0.875)
    with pytest.raises(ValueError):
        roc_auc(T([0.1, 0.2]), T([1, 1]))


def test_eleven_point_ap_known_value():
    # curve: (p=1, r=.5), (.5, .5), (2/3, 1), (.5, 1), end (1, 0) -> levels 0..0.5 give 1, 0.6..1 give 2/3
    ap = average_precision_n_points(T([0.9, 0.8, 0.7, 0.6]), T([1, 0, 1, 0]))
    assert ap == pytest.approx((6 * 1 + 5 * 2 / 3) / 11)
    # all positives ranked first -> AP 1; ties admit all tied samples together
    assert average_precision_n_points(T([0.9, 0.8, 0.1]), T([1, 1, 0])) == pytest.approx(1.0)
    tied = average_precision_n_points(T([0.5, 0.5]), T([1, 0]))  # one point (p=.5, r=1) + end point
    assert tied == pytest.approx((1 + 10 * 0.5) / 11)
    # no positives: only the end point counts (level 0) -> 1/11, as ELEVATER's sklearn-based code gives
    assert average_precision_n_points(T([0.3, 0.2]), T([0, 0])) == pytest.approx(1 / 11)


def test_eleven_point_map_averages_classes():
    scores = T([[0.9, 0.2], [0.8, 0.9], [0.7, 0.1], [0.6, 0.3]])
    targets = T([[1, 0], [0, 1], [1, 0], [0, 0]])
    expected = ((6 + 5 * 2 / 3) / 11 + 1.0) / 2  # class 1: its only positive is ranked first
    assert eleven_point_map(scores, targets) == pytest.approx(expected)
    assert compute_metric("11point_mAP", scores, targets) == pytest.approx(expected)


def test_compute_metric_dispatch_and_unknown():
    scores, labels = T([[0.9, 0.1], [0.2, 0.8]]), T([0, 0])
    assert compute_metric("accuracy", scores, labels) == pytest.approx(0.5)
    assert compute_metric("mean-per-class", scores, labels) == pytest.approx(0.5)
    assert compute_metric("roc_auc", scores, T([0, 1])) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="unknown zero-shot metric"):
        compute_metric("top5", scores, labels)


def test_classifier_from_embeddings_matches_loop():
    g = torch.Generator().manual_seed(0)
    emb = torch.randn(3, 4, 5, generator=g) * torch.rand(3, 4, 1, generator=g)  # unnormalised [C, T, D]
    w = classifier_from_embeddings(emb)
    assert w.shape == (5, 3)
    for c in range(3):
        acc = sum(emb[c, t] / emb[c, t].norm() for t in range(4)) / 4
        torch.testing.assert_close(w[:, c], acc / acc.norm())


def test_build_classifier_equals_direct_computation(tiny_model):
    from fsc_clip.models import encode

    classes, templates = ["dog", "red car", "tree"], ["a photo of a {}.", "a {} in the wild.", "{}"]
    model, tok = tiny_model.model, tiny_model.tokenizer

    def encode_texts(texts):
        with torch.no_grad():
            return encode(model, texts=tok(list(texts))).text

    w = build_classifier(encode_texts, classes, templates)  # one batched call
    assert fill_templates(classes, templates)[:2] == ["a photo of a dog.", "a dog in the wild."]
    direct = []
    for c in classes:  # one prompt at a time, plain arithmetic
        vecs = [encode_texts([t.format(c)])[0] for t in templates]
        mean = sum(v / v.norm() for v in vecs) / len(vecs)
        direct.append(mean / mean.norm())
    torch.testing.assert_close(w, torch.stack(direct, dim=1), atol=1e-5, rtol=1e-5)
    probs = zeroshot_probs(torch.nn.functional.normalize(torch.randn(4, w.shape[0]), dim=-1), w)
    torch.testing.assert_close(probs.sum(dim=1), torch.ones(4))
