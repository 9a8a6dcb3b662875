"""Training-step throughput and peak memory: CLIP vs NegCLIP vs FSC-CLIP on the same model and batch.

Usage:
    python benchmarks/train_step.py --out train_step.json                       # fsc-demo, batch 64, CPU
    python benchmarks/train_step.py --model ViT-B-32 --batch-size 16 --out FILE.json
    python benchmarks/train_step.py --model ViT-B-32 --batch-size 256 --precision amp --out FILE.json  # on a GPU
    python benchmarks/train_step.py --model fsc-tiny-siglip --methods siglip,negsiglip,fsc-siglip --out FILE.json

One full optimizer step as ``fsc-clip train`` runs it (:func:`fsc_clip.training.step.train_step`: one image
forward, one text forward over positives + K = 3 negatives per image, loss, backward, AdamW step), on
synthetic captions tokenised by the model's tokenizer (~10% of negatives missing) and random images.
Data loading is excluded. Each method runs in a fresh subprocess so that its memory peak is its own.

Method ``open_clip`` is open_clip's own training step — ``open_clip_train.train.train_one_epoch`` (installed
with open_clip_torch) called on the same model, batch (in memory, positives only, never trimmed: its pipeline
does not trim), precision and AdamW, with its ``ClipLoss``; per-step times come from its loop fetching the
next batch. ``ours_over_open_clip`` is our CLIP step time over it (with ``--no-trim``: the trainer's overhead
alone; trimmed: what a user gets).

Reported per method: ``samples_per_s``, ``step_ms`` (median), ``peak_mb`` and ``ratio_to_clip`` (step
time / step time of the family's no-negatives baseline, ``clip`` or ``siglip``); ``fsc_over_negclip`` is the
FSC-CLIP / NegCLIP step-time ratio, ``fsc_siglip_over_siglip`` and ``fsc_over_negsiglip`` the SigLIP-family
ones. Peak memory: on CUDA ``torch.cuda.max_memory_allocated``; on CPU the kernel's peak-RSS counter
(``VmHWM``, reset via ``/proc/self/clear_refs``) minus the RSS before the timed steps, with
``MALLOC_MMAP_THRESHOLD_`` lowered so freed tensors return to the OS (RSS then tracks live memory).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

METHODS = {
    "clip": "clip",
    "negclip": "negclip",
    "fsc-clip": "fsc-clip",
    "open_clip": "clip",
    "clip|open_clip": "clip",
    "siglip": "siglip",
    "negsiglip": "negsiglip",
    "fsc-siglip": "fsc-siglip",
}
DEFAULT_METHODS = "clip,negclip,fsc-clip,open_clip,clip|open_clip"
#: Methods whose recipe has no negatives in its data (with them, "clip" would be NegCLIP).
NO_NEGATIVES = ("clip", "clip|open_clip", "siglip")
#: (numerator, denominator, record key): step-time ratios reported on the numerator's record.
RATIOS = (
    ("fsc-clip", "negclip", "fsc_over_negclip"),
    ("fsc-siglip", "negsiglip", "fsc_over_negsiglip"),
    ("fsc-siglip", "siglip", "fsc_siglip_over_siglip"),
)
COLORS = ["red", "blue", "green", "yellow", "black", "white", "brown", "orange"]
THINGS = ["dog", "cat", "car", "horse", "man", "woman", "table", "bird", "boat", "chair"]
PLACES = ["park", "street", "kitchen", "beach", "field", "room"]


def _captions(n: int, seed: int) -> tuple[list[str], list[list[str | None]]]:
    """Captions and K = 3 negatives each (swap, replace, 2-gram shuffle); ~10% of negatives missing."""
    rng = random.Random(seed)
    caps, negs = [], []
    for _ in range(n):
        c1, c2 = rng.sample(COLORS, 2)
        t1, t2 = rng.sample(THINGS, 2)
        place = rng.choice(PLACES)
        cap = f"a {c1} {t1} next to a {c2} {t2} in the {place}"
        words = cap.split()
        pairs = [" ".join(words[i : i + 2]) for i in range(0, len(words), 2)]
        rng.shuffle(pairs)
        row: list[str | None] = [
            f"a {c2} {t1} next to a {c1} {t2} in the {place}",
            f"a {c1} {rng.choice([t for t in THINGS if t not in (t1, t2)])} next to a {c2} {t2} in the {place}",
            " ".join(pairs),
        ]
        negs.append([s if rng.random() > 0.1 else None for s in row])
        caps.append(cap)
    return caps, negs


def _batch(lm, batch_size: int, seed: int):
    import torch

    from fsc_clip.data import Batch

    caps, negs = _captions(batch_size, seed)
    texts = lm.tokenizer(caps)  # [B, L]
    k = len(negs[0])
    flat = [n or "" for row in negs for n in row]
    neg_texts = lm.tokenizer(flat).view(batch_size, k, -1)  # [B, K, L]
    neg_mask = torch.tensor([[n is not None for n in row] for row in negs])  # [B, K]
    neg_texts[~neg_mask] = 0
    size = lm.model.visual.image_size
    size = size if isinstance(size, int) else size[0]
    g = torch.Generator().manual_seed(seed)
    images = torch.randn(batch_size, 3, size, size, generator=g)
    return Batch(images, texts, neg_texts, neg_mask, torch.arange(batch_size))


def _rss_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    else:
        with contextlib.suppress(OSError):
            Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS


def worker(args: argparse.Namespace) -> dict:
    """Time ``args.repeats`` optimizer steps of one method (runs in its own process)."""
    import torch

    from fsc_clip.losses import LossConfig, build_loss
    from fsc_clip.models import load_model
    from fsc_clip.training.config import ModelConfig, OptimConfig, TrainConfig
    from fsc_clip.training.distributed import DistInfo, resolve_device
    from fsc_clip.training.loop import autocast_factory, configure_logit_bias, uses_negatives
    from fsc_clip.training.optim import build_optimizer
    from fsc_clip.training.step import FeatureEncoder, StepContext, train_step

    torch.manual_seed(0)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device, 0)
    lm = load_model(args.model, None)
    model = lm.model.to(device).train()
    loss_fn = build_loss(LossConfig(loss_name=METHODS[args.worker]))
    configure_logit_bias(model, TrainConfig(model=ModelConfig(name=args.model, pretrained=None)), loss_fn)
    optim_cfg = OptimConfig(lr=1e-5, precision=args.precision)
    optimizer = build_optimizer(model, optim_cfg)
    ctx = StepContext(
        encoder=FeatureEncoder(model),
        loss_fn=loss_fn,
        optimizer=optimizer,
        scaler=torch.amp.GradScaler(device.type, enabled=args.precision == "amp" and device.type == "cuda"),
        autocast=autocast_factory(args.precision, device),
        dist=DistInfo(device=device),
        logit_scale=model.logit_scale,
        needs_dense=loss_fn.needs_dense,
        use_negatives=uses_negatives(loss_fn),
        params=[p for p in model.parameters() if p.requires_grad],
    )
    batch = _batch(lm, args.batch_size, seed=0)
    if args.worker == "open_clip":
        return _open_clip_worker(args, lm, model, optimizer, batch, device)
    if args.worker in NO_NEGATIVES:
        batch = dataclasses.replace(batch, neg_texts=None, neg_mask=None)
    if not args.no_trim:  # as the training collate does: drop trailing padding shared by the whole batch
        from fsc_clip.models import trim_tokens

        texts, neg_texts = trim_tokens(batch.texts, batch.neg_texts)
        batch = dataclasses.replace(batch, texts=texts, neg_texts=neg_texts)

    if args.worker == "clip|open_clip":
        return _interleaved_worker(args, lm, model, ctx, batch, device)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(args.warmup):  # allocator, optimizer state, lazy inits
        train_step(ctx, [batch])
    sync()
    base_mb = _rss_mb("VmRSS") if device.type != "cuda" else torch.cuda.memory_allocated() / 2**20
    _reset_peak(device)
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        train_step(ctx, [batch])
        sync()
        times.append(time.perf_counter() - start)
    if device.type == "cuda":
        peak_mb = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak_mb = _rss_mb("VmHWM") - base_mb
    step_s = statistics.median(times)
    return {
        "method": args.worker,
        "model": args.model,
        "batch_size": args.batch_size,
        "negatives_per_image": 0 if batch.neg_texts is None else int(batch.neg_texts.shape[1]),
        "text_length": int(batch.texts.shape[1]),
        "precision": args.precision,
        "device": str(device),
        "step_ms": step_s * 1000,
        "samples_per_s": args.batch_size / step_s,
        "peak_mb": peak_mb,
        "peak_mb_kind": "cuda max_memory_allocated" if device.type == "cuda" else "peak RSS above pre-step RSS",
        "repeats": args.repeats,
        "threads": torch.get_num_threads(),
    }


class _InMemoryLoader:
    """The one batch, ``n`` times, as open_clip_train's DataInfo.dataloader; records when each is fetched."""

    def __init__(self, batch, n: int) -> None:
        self.batch, self.num_batches, self.num_samples = batch, n, n * len(batch[0])
        self.fetched: list[float] = []

    def __iter__(self):
        for _ in range(self.num_batches):
            self.fetched.append(time.perf_counter())
            yield self.batch


def _open_clip_epoch(args: argparse.Namespace, model, optimizer, device):
    """``train(loader)``: one call of open_clip_train's ``train_one_epoch`` over ``loader``'s batches."""
    import types

    import open_clip
    import torch
    from open_clip_train.train import train_one_epoch

    model.output_dict = True  # open_clip_train creates its models with output_dict=True
    loss = open_clip.loss.ClipLoss(cache_labels=True, rank=0, world_size=1)
    oc_args = types.SimpleNamespace(
        device=str(device),
        precision=args.precision,
        accum_freq=1,
        distill=False,
        grad_clip_norm=None,
        horovod=False,
        skip_scheduler=True,
        log_every_n_steps=10**9,
        world_size=1,
        rank=1,
        local_rank=1,
    )  # fmt: skip  rank 1: no progress logging (it would need the whole args namespace)
    scaler = torch.amp.GradScaler(device.type) if args.precision == "amp" and device.type == "cuda" else None

    def train(loader) -> None:
        data = {"train": types.SimpleNamespace(dataloader=loader, set_epoch=lambda epoch: None)}
        train_one_epoch(model, data, loss, 0, optimizer, scaler, None, None, oc_args)

    return train


def _open_clip_step(args: argparse.Namespace, model, optimizer, batch, device):
    """One open_clip training step on ``batch`` (a one-batch epoch of ``train_one_epoch``)."""
    train = _open_clip_epoch(args, model, optimizer, device)
    pair = (batch.images, batch.texts)
    return lambda: train(_InMemoryLoader(pair, 1))


def _open_clip_worker(args: argparse.Namespace, lm, model, optimizer, batch, device) -> dict:
    """open_clip_train's ``train_one_epoch`` on the in-memory batch (see the module docstring)."""
    import torch

    pair = (batch.images, batch.texts)  # untrimmed [B, 77] ids, as open_clip's collate gives them
    train = _open_clip_epoch(args, model, optimizer, device)

    def epoch(n: int) -> list[float]:
        loader = _InMemoryLoader(pair, n)
        train(loader)
        if device.type == "cuda":
            torch.cuda.synchronize()
        ends = [*loader.fetched[1:], time.perf_counter()]
        return [end - start for start, end in zip(loader.fetched, ends)]

    epoch(args.warmup)
    base_mb = _rss_mb("VmRSS") if device.type != "cuda" else torch.cuda.memory_allocated() / 2**20
    _reset_peak(device)
    times = epoch(args.repeats)
    peak_mb = torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else _rss_mb("VmHWM") - base_mb
    step_s = statistics.median(times)
    return {
        "method": "open_clip", "model": args.model, "batch_size": args.batch_size, "negatives_per_image": 0,
        "text_length": int(batch.texts.shape[1]), "precision": args.precision, "device": str(device),
        "step_ms": step_s * 1000, "samples_per_s": args.batch_size / step_s, "peak_mb": peak_mb,
        "peak_mb_kind": "cuda max_memory_allocated" if device.type == "cuda" else "peak RSS above pre-step RSS",
        "repeats": args.repeats, "threads": torch.get_num_threads(),
    }  # fmt: skip


def _interleaved_worker(args: argparse.Namespace, lm, model, ctx, batch, device) -> dict:
    """Our CLIP step and open_clip's, alternately on the same model and optimizer, in one process: outside load
    then slows both alike, so their ratio is fair on a shared machine (memory is not separable here)."""
    import torch

    from fsc_clip.training.step import train_step

    full = _batch(lm, args.batch_size, seed=0)  # open_clip's untrimmed positives
    theirs = _open_clip_step(args, model, ctx.optimizer, full, device)
    ours = {"ours": lambda: train_step(ctx, [batch]), "open_clip": theirs}
    times: dict[str, list[float]] = {name: [] for name in ours}
    for i in range(args.warmup + args.repeats):
        for name, step in ours.items():
            start = time.perf_counter()
            step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            if i >= args.warmup:
                times[name].append(time.perf_counter() - start)
    ms = {name: statistics.median(t) * 1000 for name, t in times.items()}
    return {
        "method": "clip|open_clip", "model": args.model, "batch_size": args.batch_size,
        "text_length": int(batch.texts.shape[1]), "open_clip_text_length": int(full.texts.shape[1]),
        "precision": args.precision, "device": str(device), "ours_ms": ms["ours"], "open_clip_ms": ms["open_clip"],
        "ours_over_open_clip": ms["ours"] / ms["open_clip"], "repeats": args.repeats,
        "threads": torch.get_num_threads(), "loadavg": round(os.getloadavg()[0], 2),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="JSON file for the records")
    parser.add_argument("--model", default="fsc-demo")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--precision", default=None, help="fp32 | amp | amp_bf16 (default: amp on CUDA, else fp32)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads (1: stable on a shared 2-core machine; 0: default)"
    )
    parser.add_argument(
        "--methods",
        default=DEFAULT_METHODS,
        help=f"comma-separated, from {sorted(METHODS)} (the siglip ones need a SigLIP model)",
    )
    parser.add_argument(
        "--no-trim", action="store_true", help="feed full-context token tensors (77) instead of the trimmed batch"
    )
    parser.add_argument("--worker", choices=list(METHODS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.precision is None:
        import torch

        args.precision = "amp" if args.device != "cpu" and torch.cuda.is_available() else "fp32"
    if args.worker:
        print("RESULT " + json.dumps(worker(args)), flush=True)
        return
    records = []
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "HF_HUB_OFFLINE": "1"}
    for method in args.methods.split(","):
        cmd = [sys.executable, __file__, "--worker", method, "--out", args.out, "--model", args.model]
        cmd += ["--batch-size", str(args.batch_size), "--precision", args.precision, "--device", args.device]
        cmd += ["--repeats", str(args.repeats), "--warmup", str(args.warmup), "--threads", str(args.threads)]
        cmd += ["--no-trim"] if args.no_trim else []
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        if proc.returncode != 0 or not lines:
            sys.exit(f"{method} failed:\n{proc.stderr[-3000:]}")
        records.append(json.loads(lines[-1][len("RESULT ") :]))
    by_method = {r["method"]: r for r in records}
    clip = by_method.get("clip") or by_method.get("siglip")  # the family's no-negatives baseline
    for rec in records:
        rec["ratio_to_clip"] = rec["step_ms"] / clip["step_ms"] if clip and "step_ms" in rec else None
        rec["machine"] = f"{platform.machine()}, {os.cpu_count()} CPU cores"
        rec["loadavg"] = round(os.getloadavg()[0], 2)
        rec["trimmed"] = not args.no_trim
    if "clip|open_clip" in by_method:
        print(f"ours / open_clip (interleaved): {by_method['clip|open_clip']['ours_over_open_clip']:.3f}")
    if clip and "open_clip" in by_method:
        clip["ours_over_open_clip"] = clip["step_ms"] / by_method["open_clip"]["step_ms"]
    for num, den, key in RATIOS:
        if num in by_method and den in by_method:
            by_method[num][key] = by_method[num]["step_ms"] / by_method[den]["step_ms"]
            print(f"{key}: {by_method[num][key]:.3f}")
    from fsc_clip.fileio import write_json

    write_json(args.out, records)
    print(f"{'method':<10} {'step ms':>9} {'samples/s':>10} {'peak MB':>9} {'× base':>7}")
    for r in (r for r in records if "step_ms" in r):
        ratio = f"{r['ratio_to_clip']:.2f}" if r["ratio_to_clip"] is not None else "-"
        print(f"{r['method']:<10} {r['step_ms']:>9.1f} {r['samples_per_s']:>10.1f} {r['peak_mb']:>9.1f} {ratio:>7}")


if __name__ == "__main__":
    main()
