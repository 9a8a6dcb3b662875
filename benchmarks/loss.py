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
- ``peak_mb`` / ``loop_peak_mb``: peak resident memory above the inputs during one forward + backward.

Peak memory: tracemalloc cannot see torch's allocations and CUDA-style allocator counters do not exist
on CPU, so each shape runs in a fresh subprocess with ``MALLOC_MMAP_THRESHOLD_=65536`` (large tensors
are mmap'd and returned to the OS when freed, so RSS follows live tensor memory) and we read the
kernel's peak-RSS counter (``VmHWM`` in /proc/self/status, reset through /proc/self/clear_refs) minus
the RSS before the step. On a CUDA device ``torch.cuda.max_memory_allocated`` is used instead.
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

    lengths = torch.randint(8, 21, (batch, 1 + K), generator=gen)  # valid tokens incl. end-of-text
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


def _time_ms(step, repeats: int, device: str) -> float:
    step()  # warm-up
    times = []
    for _ in range(repeats):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        step()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def measure(batch: int, patches: int, repeats: int, device: str, loop: bool) -> dict:
    """Benchmark one shape in this process."""
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

    record = {"B": batch, "Np": patches, "L": L, "D": D, "K": K, "device": device, "threads": torch.get_num_threads()}
    record["peak_mb"] = round(_peak_mb(fsc_step, device), 1)
    record["fsc_loss_ms"] = round(_time_ms(fsc_step, repeats, device), 1)
    record["clip_loss_ms"] = round(_time_ms(clip_step, repeats, device), 2)
    record["fsc_over_clip"] = round(record["fsc_loss_ms"] / record["clip_loss_ms"], 1)
    if loop:
        record["loop_peak_mb"] = round(_peak_mb(loop_step, device), 1)
        record["loop_ms"] = round(_time_ms(loop_step, repeats, device), 1)
        record["loop_over_fsc"] = round(record["loop_ms"] / record["fsc_loss_ms"], 2)
    return record


def _run_isolated(batch: int, patches: int, args: argparse.Namespace) -> dict:
    """Run one shape in a fresh interpreter so that peak-RSS numbers are not polluted by earlier shapes."""
    cmd = [sys.executable, __file__, "--worker", f"{batch}x{patches}", "--repeats", str(args.repeats)]
    cmd += ["--device", args.device] + ([] if args.loop else ["--no-loop"])
    cmd += ["--threads", str(args.threads)] if args.threads else []
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536")
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def _print_table(records: list[dict]) -> None:
    cols = ["B", "Np", "fsc_loss_ms", "clip_loss_ms", "fsc_over_clip", "peak_mb", "loop_ms", "loop_peak_mb"]
    cols = [c for c in cols if any(c in r for r in records)]
    print(" | ".join(f"{c:>13}" for c in cols))
    for r in records:
        print(" | ".join(f"{r.get(c, ''):>13}" for c in cols))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write the JSON list of records here")
    parser.add_argument("--shapes", nargs="+", default=[f"{b}x{p}" for b, p in PAPER_SHAPES], help="BxNp ...")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--no-loop", dest="loop", action="store_false", help="skip the per-type loop baseline")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.worker:
        batch, patches = map(int, args.worker.split("x"))
        print(json.dumps(measure(batch, patches, args.repeats, args.device, args.loop)))
        return 0
    records = [_run_isolated(*map(int, shape.split("x")), args) for shape in args.shapes]
    _print_table(records)
    if args.out:
        args.out.write_text(json.dumps(records, indent=2) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
