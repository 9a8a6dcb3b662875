"""Deliberately naive float64 reference of the FSC-CLIP losses: Python loops over samples, negatives and
tokens, written straight from the paper's equations (docs/losses.md) and independent of the vectorised code under
test."""

from __future__ import annotations

import torch
from torch import Tensor


def _log_softmax_at(logits: list[Tensor], index: int) -> Tensor:
    return logits[index] - torch.logsumexp(torch.stack(logits), dim=0)


def naive_clip(img: Tensor, txt: Tensor, scale: Tensor, negs: Tensor | None = None, mask: Tensor | None = None):
    """Symmetric InfoNCE; with ``negs`` the valid negatives are extra image→text columns."""
    batch = img.shape[0]
    i2t, t2i = [], []
    for i in range(batch):
        row = [scale * torch.dot(img[i], txt[j]) for j in range(batch)]
        if negs is not None:
            for j in range(batch):
                for k in range(negs.shape[1]):
                    if bool(mask[j, k]):
                        row.append(scale * torch.dot(img[i], negs[j, k]))
        i2t.append(-_log_softmax_at(row, i))
        col = [scale * torch.dot(txt[i], img[j]) for j in range(batch)]
        t2i.append(-_log_softmax_at(col, i))
    return (torch.stack(i2t).mean() + torch.stack(t2i).mean()) / 2


def _log_sigmoid(x: Tensor) -> Tensor:
    """``log σ(x) = −log(1 + e^{−x})``, written out (float64, moderate |x|: no stability tricks needed)."""
    return -torch.log1p(torch.exp(-x))


def naive_sigmoid(img, txt, scale, bias, negs=None, mask=None):
    """Sigmoid (SigLIP) loss: every (image, caption) pair is a binary problem, label +1 for the matched pair and
    −1 otherwise; each valid negative of any image is a −1 pair for every image. Sum / number of images."""
    batch = img.shape[0]
    total = torch.zeros((), dtype=img.dtype)
    for i in range(batch):
        for j in range(batch):
            label = 1.0 if i == j else -1.0
            total = total - _log_sigmoid(label * (scale * torch.dot(img[i], txt[j]) + bias))
        if negs is None:
            continue
        for j in range(batch):
            for k in range(negs.shape[1]):
                if bool(mask[j, k]):
                    total = total - _log_sigmoid(-(scale * torch.dot(img[i], negs[j, k]) + bias))
    return total / batch


def naive_scr_row(logits: list[Tensor], gamma: float, eps: float) -> Tensor:
    """SCR loss of one row whose *valid* logits are ``logits`` (positive first)."""
    n = len(logits) - 1
    total = torch.zeros((), dtype=logits[0].dtype)
    for c in range(len(logits)):
        target = (1 - eps) + eps / (1 + n) if c == 0 else eps / (1 + n)
        log_p = _log_softmax_at(logits, c)
        total = total + target * (-((1 - torch.exp(log_p)) ** gamma) * log_p)
    return total


def _mean_or_zero(values: list[Tensor], like: Tensor) -> Tensor:
    return torch.stack(values).mean() if values else torch.zeros((), dtype=like.dtype)


def naive_global(img, txt, negs, mask, scale, gamma, eps):
    rows = []
    for i in range(img.shape[0]):
        logits = [scale * torch.dot(img[i], txt[i])]
        for k in range(negs.shape[1]):
            if bool(mask[i, k]):
                logits.append(scale * torch.dot(img[i], negs[i, k]))
        if len(logits) > 1:
            rows.append(naive_scr_row(logits, gamma, eps))
    return _mean_or_zero(rows, img)


def naive_weights(sims: list[float], normalizer: str, sparsify: bool) -> list[float]:
    """Patch weights of one token from plain Python floats (no gradient by construction)."""
    num = len(sims)
    if normalizer == "softmax":
        top = max(sims)
        exps = [float(torch.exp(torch.tensor(s - top, dtype=torch.float64))) for s in sims]
        return [e / sum(exps) for e in exps]
    low, high = min(sims), max(sims)
    if high == low:
        return [1.0 / num] * num
    w = [(s - low) / (high - low) for s in sims]
    if sparsify:
        w = [0.0 if x < 1.0 / num else x for x in w]
    return [x / sum(w) for x in w]


def naive_local_score(patches, tokens, token_mask, scale, normalizer, sparsify):
    """S(i, c) for one image (``patches`` [Np, D]) and one caption (``tokens`` [L, D]); None if no token."""
    scores = []
    for t in range(tokens.shape[0]):
        if not bool(token_mask[t]):
            continue
        sims = [float(torch.dot(tokens[t].detach(), patches[p].detach())) for p in range(patches.shape[0])]
        weights = naive_weights(sims, normalizer, sparsify)
        z = sum(weights[p] * patches[p] for p in range(patches.shape[0]))
        z = z / torch.clamp(torch.linalg.vector_norm(z), min=1e-12)
        u = tokens[t] / torch.clamp(torch.linalg.vector_norm(tokens[t]), min=1e-12)
        scores.append(scale * torch.dot(z, u))
    if not scores:
        return None
    return torch.logsumexp(torch.stack(scores), dim=0)


def naive_local(img_tok, txt_tok, txt_mask, neg_tok, neg_tok_mask, mask, scale, gamma, eps, normalizer, sparsify):
    rows = []
    for i in range(img_tok.shape[0]):
        pos = naive_local_score(img_tok[i], txt_tok[i], txt_mask[i], scale, normalizer, sparsify)
        if pos is None:
            continue
        logits = [pos]
        for k in range(neg_tok.shape[1]):
            if not bool(mask[i, k]):
                continue
            score = naive_local_score(img_tok[i], neg_tok[i, k], neg_tok_mask[i, k], scale, normalizer, sparsify)
            if score is not None:
                logits.append(score)
        if len(logits) > 1:
            rows.append(naive_scr_row(logits, gamma, eps))
    return _mean_or_zero(rows, img_tok)
