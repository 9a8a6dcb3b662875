"""Time forward + backward of the FSC-CLIP loss at the paper's shapes (fp32, CPU by default).

Usage:
    python benchmarks/loss.py --out loss_bench.json            # the six paper shapes
    python benchmarks/loss.py --shapes 256x49 --repeats 5 --out FILE.json
    python benchmarks/loss.py --reference path/to/loss.py:Local_HNLoss --threads 1 --no-loop

For each shape it reports, on identical random inputs (K = 3 negatives per image, ~10% missing, captions
of ``--lengths`` valid tokens (default 4-76) in a 77-token context, padding masked):

- ``fsc_loss_ms``: CLIP + global HN + local HN (LHN) loss, forward + backward (median of repeats);
- ``clip_loss_ms``: plain CLIP loss, forward + backward;
- ``loop_ms``: a straightforward implementation that follows the method text literally (explicit
  token-grouped features ``Z`` ``[n, L, D]``, a Python loop over negative types with boolean indexing),
  i.e. the structure of the authors' code, for comparison on the same machine;
- ``ref_ms`` (with ``--reference FILE.py:NAME``): any loss with the authors' call signature (see
  :func:`load_reference`), on the same inputs converted to their layout, timed interleaved with ours
  (one call of each in turn, so that load from other processes hits both alike); ``ref_over_fsc`` and
  ``ref_peak_over_fsc`` are the speed and memory ratios; ``ref_loss_rel_diff_all_negatives`` checks that
  the two compute the same loss (``ref_loss_rel_diff``, with ~10% of the negatives missing, differs by
  design: see :func:`_relative_difference`);
- ``peak_mb`` / ``loop_peak_mb`` / ``ref_peak_mb``: peak resident memory above the inputs during one
  forward + backward (``input_grad_mb`` of it is the gradient w.r.t. the inputs, which any implementation
  must return);
- ``peak_alloc_mb`` / ``ref_peak_alloc_mb`` (CPU): the same peak counted exactly, tensor by tensor
  (PyTorch's MemTracker, 512-byte blocks as the CUDA allocator), independent of the heap's state;
  ``ref_alloc_over_fsc`` is the memory ratio from these counts;
- ``*_cpu_ms``: process CPU time of the same steps (less sensitive to other load on a shared machine);
- ``loadavg``: the 1-minute load average before and after the timed runs (the machine may be shared).

Peak memory: tracemalloc cannot see torch's allocations and CUDA-style allocator counters do not exist
on CPU, so memory is measured in a separate fresh subprocess with ``MALLOC_MMAP_THRESHOLD_=65536``
(large tensors are mmap'd and returned to the OS when freed, so RSS follows live tensor memory): we read
the kernel's peak-RSS counter (``VmHWM`` in /proc/self/status, reset through /proc/self/clear_refs)
minus the RSS before the step. Timings come from another subprocess with the normal allocator. On a
CUDA device ``torch.cuda.max_memory_allocated`` is used instead.
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

L, D, K = 77, 512, 3
PAPER_SHAPES = ((64, 49), (128, 49), (256, 49), (64, 196), (128, 196), (256, 196))
LENGTHS = (4, 76)  # valid tokens per caption incl. end-of-text (start-of-text is never valid)


def make_inputs(batch: int, patches: int, device: str, seed: int = 0) -> dict:
    gen = torch.Generator().manual_seed(seed)

    def randn(*shape, normalize=False):
        x = torch.randn(*shape, generator=gen)
        return (F.normalize(x, dim=-1) if normalize else x).to(device).requires_grad_()

    low, high = min(LENGTHS[0], L - 1), min(LENGTHS[1], L - 1)
    lengths = torch.randint(low, high + 1, (batch, 1 + K), generator=gen)  # valid tokens incl. end-of-text
    positions = torch.arange(L)
    token_mask = (positions >= 1) & (positions <= lengths[..., None])  # [B, 1+K, L], start-of-text off
    return {
        "image_features": randn(batch, D, normalize=True),
        "text_features": randn(batch, D, normalize=True),
        "neg_text_features": randn(batch, K, D, normalize=True),
        "neg_mask": (torch.rand(batch, K, generator=gen) > 0.1).to(device),
        "logit_scale": torch.tensor(100.0, device=device, requires_grad=True),
        "image_tokens": randn(batch, patches, D),
        "text_tokens": randn(batch, L, D),
        "text_mask": token_mask[:, 0].to(device),
        "neg_text_tokens": randn(batch, K, L, D),
        "neg_text_mask": token_mask[:, 1:].to(device),
    }


def loop_loss(x: dict, gamma: float = 2.0, eps: float = 0.02) -> torch.Tensor:
    """The method text, literally: explicit Z per caption, a Python loop over negative types."""
    from fsc_clip.losses.local import patch_weights
    from fsc_clip.losses.scr import scr_loss

    def local_score(patches, tokens, mask):  # [n, Np, D], [n, L, D], [n, L] -> [n]
        weights = patch_weights(torch.einsum("nld,npd->nlp", tokens, patches).detach())
        z = F.normalize(torch.einsum("nlp,npd->nld", weights, patches), dim=-1)  # [n, L, D]
        r = x["logit_scale"] * (z * F.normalize(tokens, dim=-1)).sum(-1)
        return torch.logsumexp(r.masked_fill(~mask, float("-inf")), dim=-1)

    scale, img, txt = x["logit_scale"], x["image_features"], x["text_features"]
    logits = scale * img @ txt.T
    labels = torch.arange(len(img), device=img.device)
    clip = (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2
    valid = torch.cat([torch.ones_like(x["neg_mask"][:, :1]), x["neg_mask"]], dim=1)
    glob = scale * torch.einsum("bd,bcd->bc", img, torch.cat([txt[:, None], x["neg_text_features"]], dim=1))
    columns = [local_score(x["image_tokens"], x["text_tokens"], x["text_mask"])]
    for k in range(K):  # one pass per negative type, host-synchronising boolean indexing
        keep = x["neg_mask"][:, k]
        score = torch.zeros(len(img), device=img.device)
        if int(keep.sum().item()) > 0:
            s = local_score(x["image_tokens"][keep], x["neg_text_tokens"][keep, k], x["neg_text_mask"][keep, k])
            score = score.masked_scatter(keep, s)
        columns.append(score)
    local = scr_loss(torch.stack(columns, dim=1), valid, gamma, eps).mean()
    return clip + 0.5 * scr_loss(glob, valid, gamma, eps).mean() + 0.2 * local


# The authors' FSC-CLIP recipe (README of ytaek-oh/fsc-clip @ 604015db3f009a8f7485f1fb7e21d8343c67664a:
# --neg-loss-name focal_loss --focal-gamma 2.0 --neg-label-smoothing 0.02 --neg-loss-weight 0.5
# --local-neg-weight 0.2), as keyword arguments of their loss class (src/training/losses/factory.py).
AUTHORS_FSC_KWARGS = {
    "apply_global_neg_loss": True, "neg_loss_weight": 0.5, "neg_loss_name": "focal_loss", "focal_gamma": 2.0,
    "neg_label_smoothing": 0.02, "local_neg_weight": 0.2, "sim_normalizer": "minmax", "sim_sparsify": False,
}  # fmt: skip


def load_reference(spec: str, batch: int):
    """The callable named by ``FILE.py:NAME``, ready to call with the authors' keyword arguments.

    The call signature is the authors' ``Local_HNLoss.forward``: ``image_features [B, D]``,
    ``image_tokens [B, Np, D]``, ``text_features [B + N, D]`` (positives, then the N present negatives
    type by type), ``text_tokens [B + N, L, D]``, ``attn_mask [B + N, L]`` (> 0 on tokens that count),
    ``neg_text_masks [K·B]`` (type-major), ``logit_scale``, ``output_dict=True``; it returns a dict of
    loss terms (summed) or a scalar. If NAME is a class, it is built with ``local_batch_size=B`` and
    :data:`AUTHORS_FSC_KWARGS` (their ``Local_HNLoss``); the file must import without its package.
    """
    path, _, name = spec.rpartition(":")
    if not path or not Path(path).is_file():
        raise SystemExit(f"--reference {spec!r}: expected an existing FILE.py:NAME")
    module_spec = importlib.util.spec_from_file_location("loss_reference", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    if not hasattr(module, name):
        raise SystemExit(f"--reference {spec!r}: {path} defines no {name!r}")
    obj = getattr(module, name)
    return obj(local_batch_size=batch, **AUTHORS_FSC_KWARGS) if inspect.isclass(obj) else obj


def to_authors_layout(x: dict) -> dict:
    """Our inputs in the authors' packed layout (present negatives appended type by type), as new leaves."""
    keep = x["neg_mask"].T.reshape(-1)  # [K·B] type-major, as their neg_text_masks

    def leaf(t):
        return t.detach().clone().requires_grad_()

    negs = x["neg_text_features"].transpose(0, 1).reshape(-1, D)[keep]  # [N, D]
    neg_tokens = x["neg_text_tokens"].transpose(0, 1).reshape(-1, L, D)[keep]  # [N, L, D]
    neg_attn = x["neg_text_mask"].transpose(0, 1).reshape(-1, L)[keep]
    return {
        "image_features": leaf(x["image_features"]),
        "image_tokens": leaf(x["image_tokens"]),
        "text_features": leaf(torch.cat([x["text_features"], negs])),
        "text_tokens": leaf(torch.cat([x["text_tokens"], neg_tokens])),
        "attn_mask": torch.cat([x["text_mask"], neg_attn]).long(),
        "neg_text_masks": keep.long(),
        "logit_scale": leaf(x["logit_scale"]),
    }


def reference_total(reference, inputs: dict) -> torch.Tensor:
    out = reference(**inputs, output_dict=True)
    return sum(out.values()) if isinstance(out, dict) else out


@torch.no_grad()
def _relative_difference(fsc, reference, x: dict, ref_x: dict) -> float:
    """|ours − theirs| / |theirs| of the total loss. Where a negative is missing the authors' code still puts
    a zero-vector logit into the softmax and we leave it out (docs/losses.md, "Where we are more correct than
    the reference implementation"), so only the value with every negative present must agree to float32
    rounding."""
    ours, theirs = sum(fsc(**x).values()).item(), reference_total(reference, ref_x).item()
    return float(f"{abs(ours - theirs) / abs(theirs):.2e}")


def _rss_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _peak_mb(step, device: str) -> float:
    """Peak memory (MiB) of one call of ``step`` above what is resident before it."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        step()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - base) / 2**20
    base = _rss_kb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    step()
    return (_rss_kb("VmHWM") - base) / 1024


def _allocated_peak_mb(step, inputs: dict) -> float:
    """Peak of the live tensor bytes (as a CUDA caching allocator counts them: 512-byte blocks) that one call
    of ``step`` adds to ``inputs``: every storage created and freed is followed by PyTorch's MemTracker. Exact
    and independent of the process's heap state, unlike the peak RSS."""
    from torch.distributed._tools.mem_tracker import MemTracker

    tracker = MemTracker()
    tracker.track_external(*[t for t in inputs.values() if isinstance(t, torch.Tensor)])
    with tracker:
        base = next(iter(tracker.get_tracker_snapshot("current").values()))["Total"]
        step()
    return (next(iter(tracker.get_tracker_snapshot("peak").values()))["Total"] - base) / 2**20


def _time_ms(steps: dict, repeats: int, device: str) -> dict[str, tuple[float, float]]:
    """Median wall-clock and process-CPU milliseconds of each step, the steps interleaved (after one warm-up
    call of each): on a shared machine, a burst of outside load then slows all of them alike.

    CPU time is reported too because on a shared machine wall-clock time mostly measures the share
    of the cores this process got; with one thread, CPU time ≈ the compute the step really needs.
    """
    for step in steps.values():
        step()  # warm-up
    wall: dict[str, list[float]] = {name: [] for name in steps}
    cpu: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            start, start_cpu = time.perf_counter(), time.process_time()
            step()
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            wall[name].append((time.perf_counter() - start) * 1000)
            cpu[name].append((time.process_time() - start_cpu) * 1000)
    return {name: (statistics.median(wall[name]), statistics.median(cpu[name])) for name in steps}


def measure(batch: int, patches: int, repeats: int, device: str, loop: bool, what: str, reference: str | None) -> dict:
    """Benchmark one shape in this process: ``what`` = "time" or "memory"."""
    from fsc_clip.losses import FSCCLIPLoss

    x = make_inputs(batch, patches, device)
    leaves = [v for v in x.values() if v.requires_grad]
    fsc, clip = FSCCLIPLoss(0.5, 0.2), FSCCLIPLoss(0.0, 0.0)
    steps = {
        "fsc_loss": lambda: torch.autograd.grad(sum(fsc(**x).values()), leaves, allow_unused=True),
        "clip_loss": lambda: torch.autograd.grad(
            clip(x["image_features"], x["text_features"], None, None, x["logit_scale"])["clip_loss"],
            leaves,
            allow_unused=True,
        ),
    }
    if loop:
        steps["loop"] = lambda: torch.autograd.grad(loop_loss(x), leaves, allow_unused=True)
    ref_x: dict = {}
    record: dict = {"B": batch, "Np": patches, "L": L, "D": D, "K": K, "lengths": list(LENGTHS), "device": device}
    if reference:
        ref_fn, ref_x = load_reference(reference, batch), to_authors_layout(x)
        ref_leaves = [v for v in ref_x.values() if v.requires_grad]
        steps["ref"] = lambda: torch.autograd.grad(reference_total(ref_fn, ref_x), ref_leaves, allow_unused=True)
        record["reference"] = reference
        record["ref_loss_rel_diff"] = _relative_difference(fsc, ref_fn, x, ref_x)
        full = dict(x, neg_mask=torch.ones_like(x["neg_mask"]))  # see _relative_difference
        record["ref_loss_rel_diff_all_negatives"] = _relative_difference(fsc, ref_fn, full, to_authors_layout(full))
    record["threads"] = torch.get_num_threads()
    if what == "memory":
        del steps["clip_loss"]
        for name, step in steps.items():
            prefix = "" if name == "fsc_loss" else f"{name}_"
            record[f"{prefix}peak_mb"] = round(_peak_mb(step, device), 1)
            if not device.startswith("cuda"):
                inputs = ref_x if name == "ref" else x
                record[f"{prefix}peak_alloc_mb"] = round(_allocated_peak_mb(step, inputs), 1)
        if reference:
            record["ref_peak_over_fsc"] = round(record["ref_peak_mb"] / record["peak_mb"], 2)
            if "peak_alloc_mb" in record:
                record["ref_alloc_over_fsc"] = round(record["ref_peak_alloc_mb"] / record["peak_alloc_mb"], 2)
        return record
    record["input_grad_mb"] = round(sum(v.numel() * v.element_size() for v in leaves) / 2**20, 1)
    record["loadavg_before"] = round(os.getloadavg()[0], 2)
    for name, (wall, cpu) in _time_ms(steps, repeats, device).items():
        record[f"{name}_ms"], record[f"{name}_cpu_ms"] = round(wall, 2), round(cpu, 2)
    record["loadavg_after"] = round(os.getloadavg()[0], 2)
    record["fsc_over_clip"] = round(record["fsc_loss_ms"] / record["clip_loss_ms"], 1)
    for name in ("loop", "ref"):
        if name in steps:
            record[f"{name}_over_fsc"] = round(record[f"{name}_ms"] / record["fsc_loss_ms"], 2)
            record[f"{name}_over_fsc_cpu"] = round(record[f"{name}_cpu_ms"] / record["fsc_loss_cpu_ms"], 2)
    return record


def model_anchor_ms(model_name: str, batch: int, repeats: int, device: str) -> dict:
    """Forward + backward of a randomly initialised open_clip model on ``batch`` images and ``batch·(1+K)``
    captions of 77 tokens (what one FSC-CLIP step encodes), in ms per image-with-its-captions."""
    import open_clip

    model = open_clip.create_model(model_name, pretrained=None, device=device)
    size = model.visual.image_size
    size = size if isinstance(size, int) else size[0]
    images = torch.randn(batch, 3, size, size, device=device)
    texts = torch.randint(1, 49000, (batch * (1 + K), L), device=device)

    def step():
        model.zero_grad(set_to_none=True)
        image = model.encode_image(images, normalize=True)
        text = model.encode_text(texts, normalize=True)
        (image.sum() + text.sum()).backward()

    wall, cpu = _time_ms(step, repeats, device)
    return {"model": model_name, "model_batch": batch, "model_ms_per_sample": round(wall / batch, 1),
            "model_cpu_ms_per_sample": round(cpu / batch, 1)}  # fmt: skip


def _run_isolated(batch: int, patches: int, args: argparse.Namespace) -> dict:
    """Run one shape in fresh interpreters: timings with the normal allocator, peak memory with
    ``MALLOC_MMAP_THRESHOLD_`` (which would slow the timed runs down with page faults)."""
    record: dict = {}
    for what in ("time", "memory"):
        cmd = [sys.executable, __file__, "--worker", f"{batch}x{patches}", "--measure", what]
        cmd += ["--repeats", str(args.repeats), "--device", args.device] + ([] if args.loop else ["--no-loop"])
        cmd += ["--threads", str(args.threads)] if args.threads else []
        cmd += ["--context-length", str(args.context_length), "--lengths", args.lengths]
        cmd += ["--reference", args.reference] if args.reference else []
        env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536") if what == "memory" else dict(os.environ)
        out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
        record.update(json.loads(out.strip().splitlines()[-1]))
    return record


def _print_table(records: list[dict]) -> None:
    cols = ["B", "Np", "threads", "fsc_loss_ms", "fsc_loss_cpu_ms", "clip_loss_ms", "fsc_over_clip", "peak_mb"]
    cols += ["input_grad_mb", "loop_ms", "loop_cpu_ms", "loop_peak_mb", "ref_ms", "ref_cpu_ms", "ref_peak_mb"]
    cols += ["ref_over_fsc", "ref_over_fsc_cpu", "ref_peak_over_fsc", "peak_alloc_mb", "ref_peak_alloc_mb"]
    cols += ["ref_alloc_over_fsc", "loadavg_before"]
    cols = [c for c in cols if any(c in r for r in records)]
    print(" | ".join(f"{c:>15}" for c in cols))
    for r in records:
        print(" | ".join(f"{r.get(c, ''):>15}" for c in cols))


def main(argv: list[str] | None = None) -> int:
    global L, LENGTHS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write the JSON list of records here")
    parser.add_argument("--shapes", nargs="+", default=[f"{b}x{p}" for b, p in PAPER_SHAPES], help="BxNp ...")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--context-length", type=int, default=L, help="text context L (77 = CLIP's)")
    parser.add_argument("--lengths", default=f"{LENGTHS[0]}-{LENGTHS[1]}", help="MIN-MAX valid tokens per caption")
    parser.add_argument("--reference", help="FILE.py:NAME, a loss with the authors' signature, timed beside ours")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--no-loop", dest="loop", action="store_false", help="skip the per-type loop baseline")
    parser.add_argument("--anchor-model", default=None, help="also time this open_clip model (e.g. ViT-B-32)")
    parser.add_argument("--anchor-batch", type=int, default=2, help="images per anchor-model step")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--measure", default="time", choices=["time", "memory"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    L = args.context_length
    LENGTHS = tuple(map(int, args.lengths.split("-")))
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.worker:
        batch, patches = map(int, args.worker.split("x"))
        print(json.dumps(measure(batch, patches, args.repeats, args.device, args.loop, args.measure, args.reference)))
        return 0
    records = [_run_isolated(*map(int, shape.split("x")), args) for shape in args.shapes]
    _print_table(records)
    if args.anchor_model:
        anchor = model_anchor_ms(args.anchor_model, args.anchor_batch, max(1, args.repeats // 2), args.device)
        for r in records:
            r.update(anchor)
            r["model_ms_extrapolated"] = round(anchor["model_ms_per_sample"] * r["B"], 1)
            r["model_cpu_ms_extrapolated"] = round(anchor["model_cpu_ms_per_sample"] * r["B"], 1)
            r["fsc_loss_share_of_model_cpu"] = round(r["fsc_loss_cpu_ms"] / r["model_cpu_ms_extrapolated"], 4)
        print(
            f"{args.anchor_model} forward+backward (1 image + {1 + K} captions): "
            f"{anchor['model_ms_per_sample']} ms/sample wall, {anchor['model_cpu_ms_per_sample']} ms/sample CPU "
            f"(batch {args.anchor_batch}, extrapolated linearly to B)"
        )
    if args.out:
        from fsc_clip.fileio import write_json

        write_json(args.out, records)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
