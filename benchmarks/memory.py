"""Peak accelerator memory of one training step, computed from the shapes alone (no accelerator needed).

Usage:
    python benchmarks/memory.py --out benchmarks/results/memory_estimate.json     # the paper configurations
    python benchmarks/memory.py --model ViT-B-32 --batch 256 --loss fsc-clip --precision amp_bf16 --trim

How: the real training step (``fsc_clip.training.step.train_step``: the ``FeatureEncoder``, the loss from the
loss registry, backward, ``build_optimizer``'s AdamW step) runs under ``FakeTensorMode`` — tensors carry
shapes, dtypes and devices but no data, so nothing is computed or allocated — inside PyTorch's
``MemTracker`` (``torch.distributed._tools.mem_tracker``), which follows every storage the step creates and
frees (through weak references) and records the peak of their total, rounded to the CUDA caching
allocator's 512-byte blocks. The step is a steady-state one (AdamW's state allocated before it). The
peak is split into parameters, gradients, optimizer state (with the optimizer step's temporaries when the
peak falls in the step), activations (forward outputs, including the tensors autograd saves) and
temporaries (backward); ``saved_mb`` additionally counts the unique storages
that autograd saves for backward (``torch.autograd.graph.saved_tensors_hooks``). This is what
``torch.cuda.max_memory_allocated`` reports; the allocator's cache/fragmentation (``memory_reserved``) and
the CUDA context (~0.5 GB) come on top.

Two things cannot run without data and are fed from the real batch that the estimator builds on the CPU:
the local loss's packing plan (``fsc_clip.losses.local._plan_chunks``, which reads the token counts) and the
non-finite-loss check (``any_rank``, one boolean; assumed False). Fake tensors live on the CPU device (a
fake CUDA device needs a CUDA runtime), so the CUDA defaults are set by hand (``--cpu`` turns them off): AdamW's
``foreach`` kernels and the local loss's accelerator chunk size. CPU and CUDA autocast cast the same
matmul/linear ops to bf16. open_clip's attention runs as ``scaled_dot_product_attention``; on CPU it
dispatches to ``_scaled_dot_product_flash_attention_for_cpu`` (checked, fp32 and bf16; saves the logsumexp,
no L×L matrix), as CUDA's flash / memory-efficient kernels do.

Assumptions (flags): captions of ``--caption-tokens`` tokens including start/end-of-text (default 8-32:
COCO-like captions), K = 3 negatives per image with lengths from the same range, all present; QuickGELU (the OpenAI
weights FSC-CLIP fine-tunes); ``--trim`` cuts the text batch to its longest caption as the collate does.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

MIB = 2**20
# MemTracker's categories (torch.distributed._tools.mem_tracker._MemRefType values) -> record keys
_CATEGORY = {"Parameter": "param", "Buffer": "buffer", "Gradient": "grad", "Activation": "act", "Temp": "temp",
             "Optstate": "opt", "Other": "other", "Total": "total"}  # fmt: skip
PAPER_MODELS = (("ViT-B-32", 256), ("ViT-B-16", 128))
PAPER_LOSSES = ("clip", "negclip", "fsc-clip")


@dataclass(frozen=True)
class StepSpec:
    """One training-step configuration to estimate (or measure)."""

    model: str = "ViT-B-32"
    batch: int = 256
    loss: str = "fsc-clip"  # a name in fsc_clip.losses.LOSSES; "clip" is trained without negatives
    precision: str = "amp_bf16"  # "fp32" or "amp_bf16"
    trim: bool = False
    grad_checkpointing: bool = False
    negatives: int = 3
    caption_tokens: tuple[int, int] = (8, 32)  # min-max tokens per caption incl. start/end-of-text
    quick_gelu: bool = True
    gpu: bool = True  # CUDA defaults: AdamW foreach kernels, the local loss's accelerator chunk size
    seed: int = 0

    def label(self) -> str:
        flags = [self.precision] + ["trim"] * self.trim + ["ckpt"] * self.grad_checkpointing
        return f"{self.model} B={self.batch} {self.loss} {'+'.join(flags)}"


def build_model(spec: StepSpec, device: str = "meta") -> nn.Module:
    """The open_clip model as the trainer builds it (fp32 weights, train mode, optional checkpointing)."""
    import open_clip

    from fsc_clip.models.configs import register_model_configs

    register_model_configs()
    with torch.device(device):
        model = open_clip.create_model(spec.model, pretrained=None, device=device, force_quick_gelu=spec.quick_gelu)
    if spec.grad_checkpointing:
        model.set_grad_checkpointing(True)
    return model.train()


def _to_fake(model: nn.Module) -> nn.Module:
    """Replace the meta parameters/buffers by fake CPU tensors (call inside the FakeTensorMode)."""
    for module in model.modules():
        for name, p in list(module._parameters.items()):
            if p is not None:
                module._parameters[name] = nn.Parameter(torch.empty(p.shape, dtype=p.dtype), p.requires_grad)
        for name, b in list(module._buffers.items()):
            if b is not None:
                module._buffers[name] = torch.zeros(b.shape, dtype=b.dtype)
    return model


def make_batch(spec: StepSpec, model: nn.Module) -> Any:
    """A real CPU batch in the collate's layout: random ids, captions of random length, start/end tokens."""
    from fsc_clip.data.batch import Batch
    from fsc_clip.models.dense import trim_tokens

    gen = torch.Generator().manual_seed(spec.seed)
    context = int(model.positional_embedding.shape[0])
    image_size = model.visual.image_size
    size = image_size if isinstance(image_size, int) else image_size[0]
    with_negs = spec.loss != "clip"
    captions = spec.batch * (1 + (spec.negatives if with_negs else 0))
    low, high = (min(v, context) for v in spec.caption_tokens)
    lengths = torch.randint(low, high + 1, (captions, 1), generator=gen)
    positions = torch.arange(context)
    ids = torch.randint(1, 49406, (captions, context), generator=gen)
    ids = torch.where(positions == 0, 49406, torch.where(positions == lengths - 1, 49407, ids))  # SOT, EOT
    ids = ids.masked_fill(positions >= lengths, 0)  # [captions, L] padded with 0 as open_clip's tokenizer
    texts, negs = ids[: spec.batch], ids[spec.batch :].view(spec.batch, -1, context) if with_negs else None
    if spec.trim:
        texts, negs = trim_tokens(texts, negs)
    return Batch(
        images=torch.randn(spec.batch, 3, size, size, generator=gen),
        texts=texts,
        neg_texts=negs,
        neg_mask=torch.ones(spec.batch, spec.negatives, dtype=torch.bool) if with_negs else None,
        indices=torch.arange(spec.batch),
    )


def step_context(spec: StepSpec, model: nn.Module) -> Any:
    """The trainer's StepContext (as ``_Trainer._step_context``), single process, default optimizer settings."""
    from fsc_clip.losses import build_loss
    from fsc_clip.training.config import OptimConfig
    from fsc_clip.training.distributed import DistInfo
    from fsc_clip.training.loop import autocast_factory, uses_negatives
    from fsc_clip.training.optim import build_optimizer
    from fsc_clip.training.step import FeatureEncoder, StepContext

    loss_fn = build_loss({"loss-name": spec.loss})
    cfg = OptimConfig(batch_size=spec.batch, precision=spec.precision)
    optimizer = build_optimizer(model, cfg)
    if spec.gpu:
        for group in optimizer.param_groups:
            group["foreach"] = True
    device = torch.device("cpu")
    return StepContext(
        encoder=FeatureEncoder(model),
        loss_fn=loss_fn,
        optimizer=optimizer,
        scaler=torch.amp.GradScaler("cpu", enabled=False),
        autocast=autocast_factory(spec.precision, device),
        dist=DistInfo(rank=0, world_size=1, local_rank=0, device=device),
        logit_scale=getattr(model, "logit_scale", None),
        needs_dense=bool(loss_fn.needs_dense),
        use_negatives=uses_negatives(loss_fn),
        grad_clip_norm=cfg.grad_clip_norm,
        params=[p for p in model.parameters() if p.requires_grad],
    )


@contextlib.contextmanager
def data_dependent_parts_from(batch: Any, model: nn.Module, gpu: bool) -> Iterator[None]:
    """Feed the two data-dependent decisions of a step from the real ``batch`` (see the module docstring);
    ``gpu``: the local loss chunks its tokens as on an accelerator."""
    import fsc_clip.losses.local as local
    import fsc_clip.training.step as step
    from fsc_clip.models.dense import text_token_mask

    context = int(model.positional_embedding.shape[0])

    def full(ids: torch.Tensor) -> torch.Tensor:  # dense text outputs are padded back to the context
        return torch.nn.functional.pad(ids, (0, context - ids.shape[-1]))

    masks = [text_token_mask(full(batch.texts), model).unsqueeze(1)]  # [B, 1, L]
    if batch.neg_texts is not None:
        neg = full(batch.neg_texts)
        masks.append(text_token_mask(neg.flatten(0, 1), model).view(neg.shape) & batch.neg_mask.unsqueeze(-1))
    real_mask = torch.cat(masks, dim=1)  # [B, 1+K, L] as local_scores concatenates its groups
    plan, any_rank = local._plan_chunks, step.any_rank
    sizes = [1] + ([batch.neg_texts.shape[1]] if batch.neg_texts is not None else [])
    budgets = [local.ACCELERATOR_CHUNK_TOKENS] if gpu else sorted(set(local.CHUNK_TOKENS["cpu"].values()))
    # Computed here, before any fake mode, from the real token counts: one plan per budget the loss may ask for.
    chunks = {budget: plan(real_mask, sizes, budget) for budget in budgets}
    mean_tokens, real_mean = local._valid_tokens_per_image, local._valid_tokens_per_image(real_mask)

    def plan_from_real(token_mask: torch.Tensor, group_sizes: list[int], chunk_tokens: int) -> list[Any]:
        assert tuple(token_mask.shape) == tuple(real_mask.shape) and list(group_sizes) == sizes
        # the fake tensors live on the CPU: for a GPU estimate the loss asks the CPU budget, so ignore it there
        return chunks[local.ACCELERATOR_CHUNK_TOKENS] if gpu else chunks[chunk_tokens]

    local._plan_chunks, step.any_rank = plan_from_real, lambda *_: False
    local._valid_tokens_per_image = lambda token_mask: real_mean
    try:
        yield
    finally:
        local._plan_chunks, step.any_rank, local._valid_tokens_per_image = plan, any_rank, mean_tokens


def _batch_tensors(batch: Any) -> list[torch.Tensor]:
    return [t for t in (batch.images, batch.texts, batch.neg_texts, batch.neg_mask) if t is not None]


class SavedTensorCounter:
    """Unique storages (and their bytes) that autograd saves for backward while active."""

    def __init__(self) -> None:
        self.storages: dict[int, int] = {}

    def pack(self, tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        self.storages[storage._cdata] = storage.nbytes()
        return tensor

    @property
    def mib(self) -> float:
        return sum(self.storages.values()) / MIB


def _create_optimizer_state(ctx: Any) -> None:
    """One optimizer step on zero gradients: allocates AdamW's state as the first real step would."""
    for p in ctx.params:
        p.grad = torch.zeros_like(p)
    ctx.optimizer.step()
    ctx.optimizer.zero_grad(set_to_none=True)


def estimate(spec: StepSpec) -> dict[str, Any]:
    """Peak memory of a steady-state training step of ``spec`` (MiB), split by category."""
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.distributed._tools.mem_tracker import MemTracker

    from fsc_clip.training.step import train_step

    meta_model = build_model(spec, "meta")
    batch = make_batch(spec, meta_model)
    counter = SavedTensorCounter()
    with data_dependent_parts_from(batch, meta_model, spec.gpu), FakeTensorMode(allow_non_fake_inputs=True):
        model = _to_fake(meta_model)
        ctx = step_context(spec, model)
        _create_optimizer_state(ctx)  # a steady-state step: AdamW's moments exist before it starts
        tracker = MemTracker()
        tracker.track_external(model, ctx.optimizer)
        with tracker, torch.autograd.graph.saved_tensors_hooks(counter.pack, lambda t: t):
            train_step(ctx, [batch])
        peak = next(iter(tracker.get_tracker_snapshot("peak").values()))
    record = {**asdict(spec), "label": spec.label(), "text_length": int(batch.texts.shape[1])}
    record.update({f"{_CATEGORY[getattr(k, 'value', k)]}_mb": round(v / MIB, 1) for k, v in peak.items() if v})
    record["batch_mb"] = round(sum(t.numel() * t.element_size() for t in _batch_tensors(batch)) / MIB, 1)
    record["peak_gb"] = round(peak["Total"] / 1e9, 2)
    record["saved_mb"] = round(counter.mib, 1)
    return record


def _rss_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def measure_cpu_step(spec: StepSpec) -> float:
    """Peak memory (MiB) that a real steady-state CPU step of ``spec`` adds to what is resident before it.

    Run it in a fresh process with ``MALLOC_MMAP_THRESHOLD_=65536`` (see :func:`measure_cpu_step_isolated`):
    every tensor above 64 KiB is then its own mmap, returned to the OS when freed, so the resident set
    follows the live tensors and the kernel's peak-RSS counter (VmHWM, reset via /proc/self/clear_refs)
    is their peak. Allocator statistics would be exact too, but CPU tensors have none (no caching allocator).
    """
    from fsc_clip.training.step import train_step

    torch.manual_seed(spec.seed)
    model = build_model(spec, "cpu")
    ctx = step_context(spec, model)
    batch = make_batch(spec, model)
    train_step(ctx, [batch])  # the optimizer state is created in the first step, as in the estimate
    base = _rss_kb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := current RSS
    train_step(ctx, [batch])
    return (_rss_kb("VmHWM") - base) / 1024


def measure_cpu_step_isolated(spec: StepSpec) -> float:
    """:func:`measure_cpu_step` in a fresh interpreter with the mmap threshold set (Linux only)."""
    code = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); import memory; "
        "spec = memory.StepSpec(**json.loads(sys.argv[2])); print(memory.measure_cpu_step(spec))"
    )
    spec_json = json.dumps({**asdict(spec), "caption_tokens": list(spec.caption_tokens)})
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    cmd = [sys.executable, "-c", code, str(Path(__file__).parent), spec_json]
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    return float(out.strip().splitlines()[-1])


def step_increment_mb(record: dict[str, Any]) -> float:
    """What the estimated step adds to the memory resident before it: the peak minus the parameters, buffers,
    optimizer state and input batch (all allocated before a steady-state step starts)."""
    before = sum(record.get(k, 0.0) for k in ("param_mb", "buffer_mb", "opt_mb", "batch_mb"))
    return record["total_mb"] - before


def validate(spec: StepSpec) -> dict[str, Any]:
    """Estimated vs measured step increment of a real CPU step (``spec.gpu`` must be False)."""
    record = estimate(spec)
    estimated, measured = step_increment_mb(record), measure_cpu_step_isolated(spec)
    return {"label": spec.label(), "estimated_step_mb": round(estimated, 1), "measured_step_mb": round(measured, 1),
            "ratio": round(estimated / measured, 3)}  # fmt: skip


def paper_specs(precisions: tuple[str, ...] = ("fp32", "amp_bf16")) -> list[StepSpec]:
    """ViT-B/32 at B = 256 and ViT-B/16 at B = 128 × CLIP/NegCLIP/FSC-CLIP × trim × checkpointing × precision."""
    specs = []
    for (model, batch), loss, precision, trim, ckpt in itertools.product(
        PAPER_MODELS, PAPER_LOSSES, precisions, (False, True), (False, True)
    ):
        specs.append(StepSpec(model, batch, loss, precision, trim, ckpt))
    return specs


def _print_table(records: list[dict[str, Any]]) -> None:
    cols = ["label", "text_length", "peak_gb", "total_mb", "param_mb", "grad_mb", "opt_mb", "act_mb", "temp_mb"]
    cols.append("saved_mb")
    print(" | ".join(cols))
    for r in records:
        print(" | ".join(str(r.get(c, "")) for c in cols), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write the JSON list of records here")
    parser.add_argument("--model", help="one configuration instead of the paper grid (with the flags below)")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--loss", default="fsc-clip", choices=PAPER_LOSSES)
    parser.add_argument("--precision", default="amp_bf16", choices=["fp32", "amp_bf16"])
    parser.add_argument("--trim", action="store_true", help="cut the text batch to its longest caption")
    parser.add_argument("--grad-checkpointing", action="store_true")
    parser.add_argument("--caption-tokens", default="8-32", help="MIN-MAX tokens per caption incl. SOT/EOT")
    parser.add_argument("--cpu", action="store_true", help="CPU defaults (AdamW without foreach, CPU loss chunks)")
    parser.add_argument("--validate", action="store_true", help="estimate vs a real CPU step of --model (CPU defaults)")
    args = parser.parse_args(argv)
    base = StepSpec(
        caption_tokens=tuple(map(int, args.caption_tokens.split("-"))),  # type: ignore[arg-type]
        gpu=not args.cpu,
    )
    if args.model:
        specs = [replace(base, model=args.model, batch=args.batch, loss=args.loss, precision=args.precision,
                         trim=args.trim, grad_checkpointing=args.grad_checkpointing)]  # fmt: skip
    else:
        specs = [replace(s, caption_tokens=base.caption_tokens, gpu=base.gpu) for s in paper_specs()]
    if args.validate:
        result = validate(replace(specs[0], gpu=False))
        print(json.dumps(result))
        return 0
    records = []
    for spec in specs:
        records.append(estimate(spec))
        _print_table(records[-1:])
    if args.out:
        from fsc_clip.fileio import write_json

        write_json(args.out, records)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
