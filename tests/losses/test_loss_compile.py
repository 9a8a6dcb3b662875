"""The loss has no host synchronisation or data-dependent Python control flow: it traces as one graph."""

from __future__ import annotations

import pytest
import torch
from loss_inputs import grads_of, make_inputs

from fsc_clip.losses import FSCCLIPLoss, FSCSigLIPLoss


@pytest.mark.parametrize("loss_cls", [FSCCLIPLoss, FSCSigLIPLoss])
def test_full_loss_compiles_without_graph_breaks(loss_cls):
    x = make_inputs(0)
    if loss_cls.uses_logit_bias:
        x["logit_bias"] = torch.tensor(-3.0, dtype=torch.float64)
    x = {k: (v.detach().float().requires_grad_() if v.is_floating_point() else v) for k, v in x.items()}
    loss_fn = loss_cls(1.0, 1.0, negclip=True)
    eager = loss_fn(**x)
    # fullgraph=True raises on any graph break (.item(), boolean-mask indexing, loops over data values).
    compiled = torch.compile(loss_fn, backend="aot_eager", fullgraph=True)(**x)
    assert set(compiled) == set(eager)
    for name in eager:
        torch.testing.assert_close(compiled[name], eager[name])
    want, got = grads_of(sum(eager.values()), x), grads_of(sum(compiled.values()), x)
    for name in want:
        torch.testing.assert_close(got[name], want[name])
