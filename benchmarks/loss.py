"""Time forward + backward of the FSC-CLIP loss at the paper's shapes (fp32, CPU by default).

Usage:
    python benchmarks/loss.py --out loss_bench.json            # both paper shapes
    python benchmarks/loss.py --shapes 256x49 --repeats 5 --out FILE.json

For each shape it reports, on identical random inputs (K = 3 negatives per image, ~10% missing, captions
of 8-20 valid tokens in a 77-token context):

- ``fsc_loss_ms``: CLIP + global HN + local HN (LHN) loss, forward + backward (median of repeats);
- ``clip_loss_ms``: plain CLIP loss, forward + backward;
- ``loop_ms``: a straightforward implementation that follows the method text literally (explicit
  token-grouped features ``Z`` ``[n, L, D]``, a Python loop over negative types with boolean indexing),
  i.e. the structure of the authors' code, for comparison on the same machine;
- ``peak_mb`` / ``loop_peak_mb``: peak resident memory above the inputs during one forward + backward
  (``input_grad_mb`` of it is the gradient w.r.t. the inputs, which any implementation must return);
- ``*_cpu_ms``: process CPU time of the same steps (less sensitive to other load on a shared machine).

Peak memory: tracemalloc cannot see torch's allocations and CUDA-style allocator counters do not exist
on CPU, so memory is measured in a separate fresh subprocess with ``MALLOC_MMAP_THRESHOLD_=65536``
(large tensors are mmap'd and returned to the OS when freed, so RSS follows live tensor memory): we read
the kernel's peak-RSS counter (``VmHWM`` in /proc/self/status, reset through /proc/self/clear_refs)
minus the RSS before the step. Timings come from another subprocess with the normal allocator. On a
CUDA device ``torch.cuda.max_memory_allocated`` is used instead.
"""

from __future__ import annotations

import argparse
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
PAPER_SHAPES = ((256, 49), (128, 196))


def make_inputs(batch: int, patches: int, device: str, seed: int = 0) -> dict:
    gen = torch.Generator().manual_seed(seed)

    def randn(*shape, normalize=False):
        x = torch.randn(*shape, generator=gen)
        return (F.normalize(x, dim=-1) if normalize else x).to(device).requires_grad_()

    lengths = torch.randint(min(8, L - 1), min(21, L), (batch, 1 + K), generator=gen)  # valid tokens incl. end-of-text
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


def _time_ms(step, repeats: int, device: str) -> tuple[float, float]:
    """Median wall-clock and process-CPU milliseconds of ``step`` (after one warm-up call).

    CPU time is reported too because on a shared machine wall-clock time mostly measures the share
    of the cores this process got; with one thread, CPU time ≈ the compute the step really needs.
    """
    step()  # warm-up
    wall, cpu = [], []
    for _ in range(repeats):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start, start_cpu = time.perf_counter(), time.process_time()
        step()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        wall.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
    return statistics.median(wall), statistics.median(cpu)


def measure(batch: int, patches: int, repeats: int, device: str, loop: bool, what: str) -> dict:
    """Benchmark one shape in this process: ``what`` = "time" or "memory"."""
    from fsc_clip.losses import FSCCLIPLoss

    x = make_inputs(batch, patches, device)
    leaves = [v for v in x.values() if v.requires_grad]
    fsc, clip = FSCCLIPLoss(0.5, 0.2), FSCCLIPLoss(0.0, 0.0)

    def backward(total):
        torch.autograd.grad(total, leaves, allow_unused=True)

    def fsc_step():
        backward(sum(fsc(**x).values()))

    def clip_step():
        backward(clip(x["image_features"], x["text_features"], None, None, x["logit_scale"])["clip_loss"])

    def loop_step():
        backward(loop_loss(x))

    record: dict = {"B": batch, "Np": patches, "L": L, "D": D, "K": K, "device": device}
    record["threads"] = torch.get_num_threads()
    if what == "memory":
        record["peak_mb"] = round(_peak_mb(fsc_step, device), 1)
        if loop:
            record["loop_peak_mb"] = round(_peak_mb(loop_step, device), 1)
        return record
    record["input_grad_mb"] = round(sum(v.numel() * v.element_size() for v in leaves) / 2**20, 1)
    record["fsc_loss_ms"], record["fsc_loss_cpu_ms"] = (round(t, 1) for t in _time_ms(fsc_step, repeats, device))
    record["clip_loss_ms"], record["clip_loss_cpu_ms"] = (round(t, 2) for t in _time_ms(clip_step, repeats, device))
    record["fsc_over_clip"] = round(record["fsc_loss_ms"] / record["clip_loss_ms"], 1)
    if loop:
        record["loop_ms"], record["loop_cpu_ms"] = (round(t, 1) for t in _time_ms(loop_step, repeats, device))
        record["loop_over_fsc"] = round(record["loop_ms"] / record["fsc_loss_ms"], 2)
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
        cmd += ["--context-length", str(args.context_length)]
        env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536") if what == "memory" else dict(os.environ)
        out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
        record.update(json.loads(out.strip().splitlines()[-1]))
    return record


def _print_table(records: list[dict]) -> None:
    cols = ["B", "Np", "threads", "fsc_loss_ms", "fsc_loss_cpu_ms", "clip_loss_ms", "fsc_over_clip", "peak_mb"]
    cols += ["input_grad_mb", "loop_ms", "loop_cpu_ms", "loop_peak_mb"]
    cols = [c for c in cols if any(c in r for r in records)]
    print(" | ".join(f"{c:>15}" for c in cols))
    for r in records:
        print(" | ".join(f"{r.get(c, ''):>15}" for c in cols))


def main(argv: list[str] | None = None) -> int:
    global L
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write the JSON list of records here")
    parser.add_argument("--shapes", nargs="+", default=[f"{b}x{p}" for b, p in PAPER_SHAPES], help="BxNp ...")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--context-length", type=int, default=L, help="text context L (77 = CLIP's)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--no-loop", dest="loop", action="store_false", help="skip the per-type loop baseline")
    parser.add_argument("--anchor-model", default=None, help="also time this open_clip model (e.g. ViT-B-32)")
    parser.add_argument("--anchor-batch", type=int, default=2, help="images per anchor-model step")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--measure", default="time", choices=["time", "memory"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    L = args.context_length
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.worker:
        batch, patches = map(int, args.worker.split("x"))
        print(json.dumps(measure(batch, patches, args.repeats, args.device, args.loop, args.measure)))
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
        args.out.write_text(json.dumps(records, indent=2) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
