"""``train(cfg)``: build model, loss, data and optimiser from a :class:`TrainConfig`, then run the loop.

The loop is deliberately plain: for each epoch, position the loader (``set_epoch(epoch, start_batch)``
so that a resumed run skips exactly the batches already done), group ``accum_freq`` batches into one
optimizer step (:func:`fsc_clip.training.step.train_step`), log, checkpoint, and evaluate at epoch ends.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from fsc_clip.config import ConfigError, to_dict
from fsc_clip.errors import UserError
from fsc_clip.fileio import write_text
from fsc_clip.training import hooks
from fsc_clip.training.checkpoint import (
    load_newest_valid,
    resolve_resume,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from fsc_clip.training.config import TrainConfig
from fsc_clip.training.distributed import (
    DistInfo,
    barrier,
    broadcast_object,
    cleanup_distributed,
    gather_objects,
    init_distributed,
    main_rank_first,
)
from fsc_clip.training.logger import RunLogger, trim_metrics
from fsc_clip.training.optim import build_optimizer, lr_at, set_lr
from fsc_clip.training.rundir import check_resume_config, prepare_run_dir
from fsc_clip.training.step import FeatureEncoder, StepContext, iter_groups, train_step

logger = logging.getLogger(__name__)


@dataclass
class Position:
    """Where the run stands: epochs finished (= 0-based epoch in progress), its loader batches consumed, steps done.

    Internal and 0-based; whatever the user sees (console, ``metrics.jsonl``, ``epoch_N.pt``) numbers epochs
    from 1, see :func:`describe_position`.
    """

    epoch: int = 0
    batch_in_epoch: int = 0
    step: int = 0


def describe_position(pos: Position) -> str:
    """The position in user-facing (1-based) epoch numbers."""
    if pos.batch_in_epoch == 0:
        return f"epoch {pos.epoch} finished, step {pos.step}; continuing with epoch {pos.epoch + 1}"
    return f"in epoch {pos.epoch + 1} after {pos.batch_in_epoch} of its batches, step {pos.step}"


def seed_everything(seed: int) -> None:
    """Seed torch, numpy and Python's ``random``."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def autocast_factory(precision: str, device: torch.device) -> Any:
    """Context-manager factory for the forward pass. ``amp`` on CPU autocasts to bfloat16 (no fp16 scaler there)."""
    if precision == "fp32":
        return contextlib.nullcontext
    dtype = torch.bfloat16 if precision == "amp_bf16" or device.type != "cuda" else torch.float16
    return functools.partial(torch.autocast, device_type=device.type, dtype=dtype)


def uses_negatives(loss_fn: Any) -> bool:
    """Whether the loss does anything with negatives (NegCLIP columns or HN terms), so they are worth encoding.

    ``clip`` does not *need* negatives but appends them as NegCLIP columns when the data provides them.
    """
    weights = getattr(loss_fn, "global_weight", 0.0), getattr(loss_fn, "local_weight", 0.0)
    return bool(getattr(loss_fn, "needs_negatives", False) or getattr(loss_fn, "negclip", False) or max(weights) > 0)


def run_dir_for(cfg: TrainConfig, info: DistInfo) -> Path:
    """``<output>/<name>``; an unnamed run gets ``<time>-<loss>-<model>`` (chosen on rank 0, shared)."""
    name = cfg.name
    if name is None:
        if cfg.resume == "auto":
            raise ConfigError("--resume auto needs a fixed run name: pass --name (or set name: in the config)")
        stamp = time.strftime("%Y%m%d-%H%M%S")
        name = str(broadcast_object(f"{stamp}-{cfg.loss.loss_name}-{cfg.model.name.replace('/', '_')}", info))
    return Path(cfg.output) / name


def checked_run_dir(cfg: TrainConfig, info: DistInfo) -> Path:
    """The run folder, checked on the main rank before any work (writable; not an existing run unless
    ``resume``/``overwrite``); every rank raises the same error if the check fails."""
    run_dir = run_dir_for(cfg, info)
    outcome: tuple[str, str] | None = None
    if info.is_main:
        try:
            message = prepare_run_dir(run_dir, cfg.output, cfg.resume, cfg.overwrite)
            outcome = ("ok", message or "")
        except UserError as err:
            outcome = ("error", str(err))
    shared = broadcast_object(outcome, info)
    assert isinstance(shared, tuple)
    status, text = str(shared[0]), str(shared[1])
    if status == "error":
        raise ConfigError(text)
    if text:
        logger.warning(text)
    return run_dir


def build_model(cfg: TrainConfig, device: torch.device) -> tuple[Any, dict[str, Any] | None]:
    """Load the model and make the configured parameters trainable (LoRA, locked towers, checkpointing).

    Returns the :class:`~fsc_clip.models.LoadedModel` and the LoRA settings to record (None = full).
    """
    from fsc_clip.models import load_model

    m = cfg.model
    lm = load_model(m.name, m.pretrained, device="cpu", precision="fp32", force_quick_gelu=m.quick_gelu)
    model = lm.model
    lora = None
    if m.lora_rank > 0:
        from fsc_clip.models import lora as lora_lib

        lora_lib.apply_lora(model, rank=m.lora_rank, alpha=m.lora_alpha)  # freezes all but the adapters
        lora = lora_lib.lora_config(model)  # {"rank", "alpha", "targets"}, recorded in checkpoints
    if m.lock_image:
        model.lock_image_tower(unlocked_groups=0, freeze_bn_stats=False)
    if m.lock_text:
        model.lock_text_tower(unlocked_layers=0, freeze_layer_norm=True)
    if m.grad_checkpointing:
        model.set_grad_checkpointing(True)
    model.to(device)
    model.train()
    return lm, lora


def configure_logit_bias(model: Any, cfg: TrainConfig, loss_fn: Any) -> None:
    """Make a SigLIP-family model's ``logit_bias`` trainable only when the loss uses it and the recipe allows it.

    Raises:
        ConfigError: a sigmoid loss on a model without ``logit_bias`` (a CLIP-family model).
    """
    bias = getattr(model, "logit_bias", None)
    uses = bool(getattr(loss_fn, "uses_logit_bias", False))
    if bias is None:
        if uses:
            raise ConfigError(
                f"loss {cfg.loss.loss_name!r} is a sigmoid (SigLIP) loss but {cfg.model.name} has no logit_bias; "
                "use a SigLIP-family model (e.g. ViT-B-16-SigLIP2) or a softmax loss (clip / negclip / fsc-clip)"
            )
        return
    if not uses and bias.requires_grad:
        logger.info("%s: logit_bias frozen (loss %s does not use it)", cfg.model.name, cfg.loss.loss_name)
    bias.requires_grad_(uses and not cfg.model.lock_logit_bias and cfg.model.lora_rank == 0)


def train(cfg: TrainConfig) -> Path:
    """Run (or resume) training as configured; returns the run directory.

    Works as a single process or under ``torchrun`` (one process per device, DDP).

    Raises:
        ConfigError: inconsistent settings (e.g. a loss that needs negatives without data negatives).
        NonFiniteLossError: the loss became NaN/inf; every rank stops at the same step.
    """
    info = init_distributed(cfg.device)
    try:
        return _Trainer(cfg, info).run()
    finally:
        cleanup_distributed()


class _Trainer:
    """Holds the run's objects so that the loop methods stay short."""

    def __init__(self, cfg: TrainConfig, info: DistInfo) -> None:
        from fsc_clip.data import build_train_loader
        from fsc_clip.losses import build_loss

        self.cfg, self.info = cfg, info
        self.run_dir = checked_run_dir(cfg, info)  # before the (slow) model load: fail fast on a bad folder
        self.ckpt_dir = self.run_dir / "checkpoints"
        resume_from = self._find_resume()  # also before the model load: a damaged or mismatched run fails fast
        seed_everything(cfg.seed)  # identical initial weights on every rank (and across world sizes)
        with main_rank_first(info):  # a first download of pretrained weights happens once
            self.lm, self.lora = build_model(cfg, info.device)
        self.loss_fn = build_loss(cfg.loss, rank=info.rank, world_size=info.world_size)
        configure_logit_bias(self.lm.model, cfg, self.loss_fn)
        preprocess = self.lm.preprocess_train if cfg.model.augment else self.lm.preprocess_val
        self.loader = build_train_loader(
            cfg.data,
            tokenizer=self.lm.tokenizer,
            preprocess=preprocess,
            batch_size=cfg.optim.batch_size,
            seed=cfg.seed,
            rank=info.rank,
            world_size=info.world_size,
            pin_memory=info.device.type == "cuda",
        )
        self._check_negatives()
        self.steps_per_epoch = len(self.loader) // cfg.optim.accum_freq
        if self.steps_per_epoch < 1:
            raise ConfigError(
                f"{cfg.data.train_data}: {len(self.loader)} batch(es) per epoch per process is fewer than "
                f"optim.accum_freq={cfg.optim.accum_freq}; use more data or a smaller batch_size/accum_freq"
            )
        self.total_steps = self.steps_per_epoch * cfg.optim.epochs
        if cfg.optim.max_steps is not None:
            self.total_steps = min(self.total_steps, cfg.optim.max_steps)
        seed_everything(cfg.seed + info.rank)  # per-rank streams from here on (augmentation)
        self.optimizer = build_optimizer(self.lm.model, cfg.optim)
        fp16_scaler = cfg.optim.precision == "amp" and info.device.type == "cuda"
        self.scaler = torch.amp.GradScaler(info.device.type, enabled=fp16_scaler)
        self.pos, self.pending_rng = self._apply_resume(resume_from)
        self.ctx = self._step_context()
        self.skipped = 0

    def _check_negatives(self) -> None:
        if self.loss_fn.needs_negatives and not list(getattr(self.loader, "negative_types", []) or []):
            raise ConfigError(
                f"loss {self.cfg.loss.loss_name!r} needs hard negatives but {self.cfg.data.train_data} has none: "
                "add --add-random-text-hard-negatives fsc-clip (generated online) or --precomputed-negatives FILE, "
                "or train without negatives with --loss-name clip"
            )

    def _step_context(self) -> StepContext:
        encoder: torch.nn.Module = FeatureEncoder(self.lm.model)
        if self.info.distributed:
            ids = [self.info.device.index] if self.info.device.type == "cuda" else None
            encoder = torch.nn.parallel.DistributedDataParallel(encoder, device_ids=ids)
        params = [p for p in self.lm.model.parameters() if p.requires_grad]
        return StepContext(
            encoder=encoder,
            loss_fn=self.loss_fn,
            optimizer=self.optimizer,
            scaler=self.scaler,
            autocast=autocast_factory(self.cfg.optim.precision, self.info.device),
            dist=self.info,
            logit_scale=getattr(self.lm.model, "logit_scale", None),
            needs_dense=bool(self.loss_fn.needs_dense),
            use_negatives=uses_negatives(self.loss_fn),
            grad_clip_norm=self.cfg.optim.grad_clip_norm,
            params=params,
        )

    # ----------------------------------------------------------------------------------- resume / save
    def _find_resume(self) -> tuple[Path, dict[str, Any], bool] | None:
        """The newest valid checkpoint to resume from (None: fresh start), checked against this run's settings."""
        candidates = resolve_resume(self.cfg.resume, self.run_dir)
        if not candidates:
            return None
        path, ckpt, rejected = load_newest_valid(candidates)
        if self.info.is_main:
            for reason in rejected:
                logger.warning("Checkpoint rejected: %s", reason)
        check_resume_config(path, ckpt.get("config"), to_dict(self.cfg))
        return path, ckpt, bool(rejected)

    def _apply_resume(self, found: tuple[Path, dict[str, Any], bool] | None) -> tuple[Position, dict[str, Any] | None]:
        """Load the model, optimizer and scaler states; returns the position and this rank's RNG state."""
        if found is None:
            return Position(), None
        path, ckpt, fallback = found
        self.lm.model.load_state_dict(ckpt["state_dict"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if ckpt.get("scaler"):
            self.scaler.load_state_dict(ckpt["scaler"])
        pos = Position(int(ckpt["epoch"]), int(ckpt["batch_in_epoch"]), int(ckpt["step"]))
        rng = None
        if int(ckpt.get("world_size", 1)) == self.info.world_size and ckpt.get("rng"):
            rng = ckpt["rng"][self.info.rank]
        elif self.info.is_main:
            logger.warning(
                "%s was written by %s process(es), now %s: RNG streams and the mid-epoch position are approximate.",
                path,
                ckpt.get("world_size"),
                self.info.world_size,
            )
        if self.info.is_main:
            logger.info("Resuming from %s%s: %s.", path, " (fallback)" if fallback else "", describe_position(pos))
        return pos, rng

    def _save(self, epoch_file: int | None) -> None:
        """Checkpoint the current position (collective: every rank contributes its RNG state)."""
        rngs = gather_objects(rng_state(), self.info)
        if self.info.is_main:
            model_meta = {**self.lm.spec.to_dict(), "pretrained": self.cfg.model.pretrained, "lora": self.lora}
            ckpt = {
                "model": model_meta,
                "state_dict": self.lm.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
                "epoch": self.pos.epoch,
                "batch_in_epoch": self.pos.batch_in_epoch,
                "step": self.pos.step,
                "rng": rngs,
                "world_size": self.info.world_size,
                "config": to_dict(self.cfg),
            }
            save_checkpoint(ckpt, self.ckpt_dir, epoch_file, self.cfg.checkpoint.keep_last_epochs)
        barrier(self.info)

    # ----------------------------------------------------------------------------------- the loop
    def run(self) -> Path:
        cfg, info = self.cfg, self.info
        if info.is_main:
            write_text(self.run_dir / "config.yaml", yaml.safe_dump(to_dict(cfg), sort_keys=False))
            trim_metrics(self.run_dir / "metrics.jsonl", self.pos.step)  # drop a torn line and steps to be redone
        barrier(info)
        self.log = RunLogger(
            self.run_dir, info.is_main, self.total_steps, self.pos.step, cfg.logging.progress, cfg.logging.tensorboard
        )
        try:
            while self.pos.epoch < cfg.optim.epochs and self.pos.step < self.total_steps:
                finished = self._run_epoch()
                if not finished:
                    self._save(epoch_file=None)  # stopped by max_steps mid-epoch
                    break
                self._end_epoch()
        finally:
            self.log.close()
        return self.run_dir

    def _run_epoch(self) -> bool:
        """Train the rest of the current epoch; False when ``max_steps`` stopped it early."""
        cfg, pos, accum = self.cfg, self.pos, self.cfg.optim.accum_freq
        self.loader.set_epoch(pos.epoch, start_batch=pos.batch_in_epoch)
        if self.pending_rng is not None:  # resumed: continue every rank's RNG streams where they were saved
            set_rng_state(self.pending_rng)
            self.pending_rng = None
        batches = iter(self.loader)
        remaining = self.steps_per_epoch - pos.batch_in_epoch // accum
        for group in itertools.islice(iter_groups(batches, accum), remaining):
            base_lr = lr_at(pos.step, cfg.optim, self.total_steps)
            set_lr(self.optimizer, base_lr)
            out = train_step(self.ctx, group, inject_nan=hooks.inject_nan(pos.step + 1, self.info.rank))
            pos.step += 1
            pos.batch_in_epoch += accum
            self._after_step(out, group, base_lr)
            if pos.step >= self.total_steps and pos.batch_in_epoch // accum < self.steps_per_epoch:
                return False
        return True

    def _after_step(self, out: dict[str, Any], group: list[Any], base_lr: float) -> None:
        cfg, pos = self.cfg, self.pos
        self.skipped += sum(int(getattr(b, "n_skipped", 0)) for b in group)
        self.log.count(sum(len(b.texts) for b in group) * self.info.world_size)
        write = pos.step % cfg.logging.every_n_steps == 0 or pos.step == self.total_steps
        if write:
            metrics = {k: v for k, v in (getattr(self.loss_fn, "metrics", None) or {}).items()}
            record = {**out, **metrics, "lr": base_lr, "skipped_samples": self.skipped}
            self.log.step(pos.step, pos.epoch + 1, record, write=True)  # user-facing epochs count from 1
        else:
            self.log.step(pos.step, pos.epoch + 1, {}, write=False)
        every = cfg.checkpoint.every_n_steps
        if every and pos.step % every == 0 and pos.step < self.total_steps:
            self._save(epoch_file=None)
        hooks.maybe_kill(pos.step)

    def _end_epoch(self) -> None:
        cfg, pos = self.cfg, self.pos
        pos.epoch += 1
        pos.batch_in_epoch = 0
        last = pos.epoch >= cfg.optim.epochs or pos.step >= self.total_steps
        every = cfg.checkpoint.every_n_epochs
        keep_epoch = last or (every > 0 and pos.epoch % every == 0)
        self._save(epoch_file=pos.epoch if keep_epoch else None)
        if self.skipped:
            self.log.message(f"epoch {pos.epoch}: {self.skipped} bad sample(s) skipped so far")
        if cfg.eval.benchmarks and (last or pos.epoch % cfg.eval.every_n_epochs == 0):
            self._evaluate()

    def _evaluate(self) -> None:
        cfg, pos = self.cfg, self.pos
        if self.info.is_main:
            scores = hooks.run_evaluation(
                self.lm,
                cfg.eval.benchmarks,
                cfg.eval.data_root,
                self.run_dir / "eval" / f"epoch_{pos.epoch}",
                cfg.eval.batch_size,
                str(self.info.device),
                progress=cfg.logging.progress,
            )
            if scores is not None:
                self.log.write({"step": pos.step, "epoch": pos.epoch, "eval": scores})
                self.log.message(f"eval after epoch {pos.epoch}: {scores}")
        barrier(self.info)
