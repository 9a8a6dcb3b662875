"""Zero-shot classification: the prompt-ensemble classifier and the four ELEVATER metrics.

The classifier follows CLIP / ELEVATER: every class name is filled into every prompt template, the template
embeddings are L2-normalised, averaged over the templates and re-normalised, giving one weight column per
class. Logits are ``100 * image @ W`` and the metrics see the softmax probabilities, as ELEVATER's
``clip_zeroshot_evaluator`` does.

Metrics (all return a fraction in [0, 1]; the benchmarks report percent):

- :func:`top1_accuracy`: a prediction is correct iff the true class's score is **strictly** above every other
  class's score (the project-wide tie policy: a tie is not a success; NaN scores are failures).
- :func:`mean_per_class_accuracy`: balanced accuracy, i.e. the mean over the classes that occur in the labels
  of the per-class top-1 accuracy (sklearn ``balanced_accuracy_score`` semantics, same tie rule as above).
- :func:`eleven_point_map`: multi-label 11-point interpolated average precision per class, averaged over
  classes (ELEVATER ``MeanAveragePrecisionNPointsEvaluator(11)``): the precision/recall curve is taken at the
  distinct score thresholds, plus the conventional end point (precision 1, recall 0); the interpolated
  precision at recall level ``t`` is the best precision among points with recall >= ``t``. Because of the end
  point the level-0 precision is always 1, exactly as in ELEVATER; a class without positives gets 1/11.
- :func:`roc_auc`: binary ROC-AUC of the class-1 probability (the Mann-Whitney statistic, ties count 1/2),
  as sklearn ``roc_auc_score(y, p[:, 1])``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

TextEncoder = Callable[[Sequence[str]], torch.Tensor]

METRICS = ("accuracy", "mean-per-class", "11point_mAP", "roc_auc")


def fill_templates(classnames: Sequence[str], templates: Sequence[str]) -> list[str]:
    """All prompts, class-major: ``[t.format(c) for c in classnames for t in templates]`` (``C * T`` strings)."""
    return [t.format(c) for c in classnames for t in templates]


def classifier_from_embeddings(text_emb: torch.Tensor) -> torch.Tensor:
    """Zero-shot weights from per-template embeddings.

    Args:
        text_emb: ``[C, T, D]`` text embeddings (class c, template t); need not be normalised.

    Returns:
        ``[D, C]`` float32: per class, the L2-normalised mean of the L2-normalised template embeddings.
    """
    if text_emb.ndim != 3:
        raise ValueError(f"expected text embeddings [C, T, D], got {tuple(text_emb.shape)}")
    emb = torch.nn.functional.normalize(text_emb.float(), dim=-1)  # [C, T, D]
    mean = torch.nn.functional.normalize(emb.mean(dim=1), dim=-1)  # [C, D]
    return mean.t().contiguous()  # [D, C]


def build_classifier(encode_texts: TextEncoder, classnames: Sequence[str], templates: Sequence[str]) -> torch.Tensor:
    """Embed every (class, template) prompt with ``encode_texts`` and build the ``[D, C]`` classifier."""
    if not classnames or not templates:
        raise ValueError("build_classifier needs at least one class name and one template")
    prompts = fill_templates(classnames, templates)
    emb = encode_texts(prompts)  # [C * T, D]
    return classifier_from_embeddings(emb.reshape(len(classnames), len(templates), -1))


def zeroshot_probs(image_emb: torch.Tensor, classifier: torch.Tensor, scale: float = 100.0) -> torch.Tensor:
    """Softmax over ``scale * image_emb @ classifier``: ``[N, D] x [D, C] -> [N, C]`` probabilities."""
    logits = scale * image_emb.float() @ classifier.float()  # [N, C]
    return logits.softmax(dim=-1)


# ----- metrics ----------------------------------------------------------------------------------------------
def _strict_top1(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Bool ``[N]``: the labelled class scores strictly above every other class (NaN -> False)."""
    scores = scores.float()
    labels = labels.long()
    target = scores.gather(1, labels[:, None]).squeeze(1)  # [N]
    others = scores.clone()
    others.scatter_(1, labels[:, None], float("-inf"))
    return target > others.max(dim=1).values


def _check(scores: torch.Tensor, labels: torch.Tensor) -> None:
    if scores.ndim != 2 or labels.ndim != 1 or labels.shape[0] != scores.shape[0]:
        raise ValueError(f"expected scores [N, C] and labels [N], got {tuple(scores.shape)} / {tuple(labels.shape)}")
    if scores.shape[0] == 0:
        raise ValueError("no samples to score")


def top1_accuracy(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of samples whose labelled class has the strictly highest score. ``scores [N, C]``, ``labels [N]``."""
    _check(scores, labels)
    return _strict_top1(scores, labels).float().mean().item()


def mean_per_class_accuracy(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """Balanced accuracy: mean over the classes present in ``labels`` of their top-1 accuracy."""
    _check(scores, labels)
    correct = _strict_top1(scores, labels).double()  # [N]
    labels = labels.long()
    n_cls = max(int(labels.max()) + 1, scores.shape[1])
    hits = torch.zeros(n_cls, dtype=torch.float64).index_add_(0, labels, correct)
    counts = torch.zeros(n_cls, dtype=torch.float64).index_add_(0, labels, torch.ones_like(correct))
    present = counts > 0
    return (hits[present] / counts[present]).mean().item()


def _precision_recall(scores: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Precision and recall at each distinct score threshold (descending), plus the end point (1, 0)."""
    order = torch.argsort(scores, descending=True, stable=True)
    s, y = scores[order], targets[order].double()
    tps = torch.cumsum(y, 0)
    fps = torch.cumsum(1.0 - y, 0)
    # keep the last index of each run of equal scores: a threshold admits all tied samples at once
    last = torch.ones_like(s, dtype=torch.bool)
    last[:-1] = s[1:] != s[:-1]
    tps, fps = tps[last], fps[last]
    precision = tps / (tps + fps)
    recall = tps / tps[-1] if tps[-1] > 0 else torch.full_like(tps, float("nan"))
    one, zero = torch.ones(1, dtype=torch.float64), torch.zeros(1, dtype=torch.float64)
    return torch.cat([precision, one]), torch.cat([recall, zero])


def average_precision_n_points(scores: torch.Tensor, targets: torch.Tensor, n_points: int = 11) -> float:
    """N-point interpolated AP of one class: mean over recall levels ``linspace(0, 1, n)`` of max precision
    among curve points with recall >= level (0 if none). The end point (1, 0) makes level 0 always 1.

    Args:
        scores: ``[N]`` scores of the class.
        targets: ``[N]`` binary ground truth (0/1 or bool).
    """
    precision, recall = _precision_recall(scores.double(), targets)
    levels = torch.linspace(0.0, 1.0, n_points, dtype=torch.float64)
    ok = recall[None, :] >= levels[:, None]  # [n_points, P]; NaN recall -> False
    interp = torch.where(ok, precision[None, :], torch.zeros_like(precision)[None, :]).max(dim=1).values
    return interp.mean().item()


def eleven_point_map(scores: torch.Tensor, targets: torch.Tensor) -> float:
    """Multi-label mean over classes of the 11-point interpolated AP. ``scores [N, C]``, ``targets [N, C]`` 0/1."""
    if scores.shape != targets.shape or scores.ndim != 2:
        raise ValueError(
            f"expected scores and multi-hot targets [N, C], got {tuple(scores.shape)} / {tuple(targets.shape)}"
        )
    aps = [average_precision_n_points(scores[:, c], targets[:, c], 11) for c in range(scores.shape[1])]
    return sum(aps) / len(aps)


def roc_auc(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """Binary ROC-AUC of ``scores[:, 1]`` (or of a 1-D ``scores``) against ``labels`` in {0, 1}.

    Computed as the Mann-Whitney U statistic with average ranks, so tied scores count 1/2.
    """
    pos_score = scores[:, 1] if scores.ndim == 2 else scores
    pos_score = pos_score.double()
    y = labels.long()
    n_pos, n_neg = int((y == 1).sum()), int((y == 0).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("ROC-AUC needs both positive and negative samples")
    order = torch.argsort(pos_score, stable=True)
    sorted_s = pos_score[order]
    ranks = torch.empty_like(pos_score)
    ranks[order] = torch.arange(1, len(pos_score) + 1, dtype=torch.float64)
    # average the ranks of tied scores
    uniq, inverse = torch.unique_consecutive(sorted_s, return_inverse=True)
    sums = torch.zeros(len(uniq), dtype=torch.float64).index_add_(0, inverse, ranks[order])
    cnts = torch.zeros(len(uniq), dtype=torch.float64).index_add_(0, inverse, torch.ones_like(sorted_s))
    ranks[order] = (sums / cnts)[inverse]
    u = ranks[y == 1].sum().item() - n_pos * (n_pos + 1) / 2.0
    return u / (n_pos * n_neg)


def compute_metric(metric: str, probs: torch.Tensor, labels: torch.Tensor) -> float:
    """Dispatch on the ELEVATER metric name (``accuracy``, ``mean-per-class``, ``11point_mAP``, ``roc_auc``).

    Args:
        metric: Metric name.
        probs: ``[N, C]`` class probabilities (or any scores).
        labels: ``[N]`` class indices, or ``[N, C]`` multi-hot targets for ``11point_mAP``.
    """
    if metric == "accuracy":
        return top1_accuracy(probs, labels)
    if metric == "mean-per-class":
        return mean_per_class_accuracy(probs, labels)
    if metric == "11point_mAP":
        return eleven_point_map(probs, labels)
    if metric == "roc_auc":
        return roc_auc(probs, labels)
    raise ValueError(f"unknown zero-shot metric {metric!r}; choose one of {', '.join(METRICS)}")
