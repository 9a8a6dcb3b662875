"""Typed configuration of a training run: one dataclass per concern, composed into :class:`TrainConfig`.

The data section (:class:`fsc_clip.data.DataConfig`) and the loss section
(:class:`fsc_clip.losses.LossConfig`) are owned by their packages; this module adds the model,
optimisation, logging, checkpoint and evaluation sections and the run-level fields. YAML recipes in
``configs/`` are exactly these fields (``fsc-clip train --config X.yaml --set optim.lr=1e-5``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from fsc_clip.config import ConfigError, load_config, read_yaml
from fsc_clip.data import DataConfig
from fsc_clip.losses import LossConfig


@dataclass
class ModelConfig:
    """Which model to fine-tune and which of its parameters train.

    Attributes:
        name: open_clip architecture (``ViT-B-32``, ``ViT-B-32-quickgelu``, ``fsc-tiny``, ``hf-hub:org/repo``).
        pretrained: open_clip tag (``openai``), local weights file, our run checkpoint/dir, or null (random init).
        quick_gelu: Force QuickGELU (true), force GELU (false) or decide from the tag (null; OpenAI weights need it).
        lora_rank: LoRA rank; 0 means full fine-tuning.
        lora_alpha: LoRA scaling numerator (null: equal to the rank, i.e. scale 1).
        lock_image: Freeze the image tower.
        lock_text: Freeze the text tower.
        lock_logit_bias: Freeze the learnable logit bias of sigmoid-loss (SigLIP-family) models. A softmax loss
            never uses the bias, so it is frozen for those losses whatever this says (DDP would otherwise see a
            parameter without gradient).
        grad_checkpointing: Trade compute for memory inside both transformers.
        augment: Use open_clip's training augmentation (random resized crop); false uses the eval transform.
    """

    name: str = "ViT-B-32"
    pretrained: str | None = "openai"
    quick_gelu: bool | None = None
    lora_rank: int = 0
    lora_alpha: float | None = None
    lock_image: bool = False
    lock_text: bool = False
    lock_logit_bias: bool = False
    grad_checkpointing: bool = False
    augment: bool = True

    def __post_init__(self) -> None:
        if self.lora_rank < 0:
            raise ConfigError(f"model.lora_rank must be >= 0 (0 = full fine-tuning), got {self.lora_rank}")
        if self.lock_image and self.lock_text:
            raise ConfigError("model.lock_image and model.lock_text are both true: nothing would train")


@dataclass
class OptimConfig:
    """Optimiser, schedule and step arithmetic (the paper's ViT-B/32 defaults, FSC-CLIP appendix).

    Attributes:
        lr: Peak learning rate after warm-up.
        wd: AdamW weight decay (not applied to norms, biases, logit scale or 1-d embeddings).
        beta1: AdamW beta1.
        beta2: AdamW beta2.
        eps: AdamW epsilon.
        warmup: Linear warm-up steps (optimizer steps).
        schedule: ``cosine`` decay to 0 after warm-up, or ``const``.
        epochs: Number of passes over the training data.
        batch_size: Per-process micro-batch size (global batch = batch_size × accum_freq × world size).
        accum_freq: Micro-batches per optimizer step; contrastive-correct (features of all micro-batches
            are negatives for each other, exactly as one big batch).
        grad_clip_norm: Clip the global gradient norm to this value (null: no clipping).
        precision: ``amp`` (fp16 + GradScaler on CUDA; bf16 autocast on CPU), ``amp_bf16`` or ``fp32``.
        lora_lr_mult: Learning-rate multiplier for LoRA parameters.
        max_steps: Stop after this many optimizer steps in total (null: run all epochs).
    """

    lr: float = 5e-6
    wd: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.98
    eps: float = 1e-6
    warmup: int = 50
    schedule: Literal["cosine", "const"] = "cosine"
    epochs: int = 5
    batch_size: int = 256
    accum_freq: int = 1
    grad_clip_norm: float | None = None
    precision: Literal["amp", "amp_bf16", "fp32"] = "amp"
    lora_lr_mult: float = 1.0
    max_steps: int | None = None

    def __post_init__(self) -> None:
        checks = {
            "optim.lr": self.lr > 0,
            "optim.wd": self.wd >= 0,
            "optim.warmup": self.warmup >= 0,
            "optim.epochs": self.epochs >= 1,
            "optim.batch_size": self.batch_size >= 1,
            "optim.accum_freq": self.accum_freq >= 1,
            "optim.lora_lr_mult": self.lora_lr_mult > 0,
            "optim.grad_clip_norm": self.grad_clip_norm is None or self.grad_clip_norm > 0,
            "optim.max_steps": self.max_steps is None or self.max_steps >= 1,
        }
        bad = [key for key, ok in checks.items() if not ok]
        if bad:
            raise ConfigError(f"invalid value for {', '.join(bad)} (got {self})")


@dataclass
class LoggingConfig:
    """Console, JSONL and TensorBoard logging.

    Attributes:
        every_n_steps: Write a metrics.jsonl record (and refresh the bar's numbers) every N steps.
        progress: Show a tqdm progress bar on rank 0 (``--no-progress`` turns it off).
        tensorboard: Also write TensorBoard events under ``<run>/tensorboard``. ``null`` (default): when the
            ``tensorboard`` package is installed (extra ``fsc-clip[tensorboard]``); ``true``: the same, but warn
            once when it is not installed; ``false``: never.
    """

    every_n_steps: int = 10
    progress: bool = True
    tensorboard: bool | None = None

    def __post_init__(self) -> None:
        if self.every_n_steps < 1:
            raise ConfigError(f"logging.every_n_steps must be >= 1, got {self.every_n_steps}")


@dataclass
class CheckpointConfig:
    """When checkpoints are written and which are kept.

    Attributes:
        every_n_epochs: Write ``epoch_N.pt`` every N epochs (the last epoch is always written); 0 = never.
        every_n_steps: Refresh ``latest.pt`` every N optimizer steps (mid-epoch resume points); 0 = never.
        keep_last_epochs: Keep only the newest N ``epoch_N.pt`` files (null: keep all).
    """

    every_n_epochs: int = 1
    every_n_steps: int = 500
    keep_last_epochs: int | None = None

    def __post_init__(self) -> None:
        if self.every_n_epochs < 0 or self.every_n_steps < 0:
            raise ConfigError("checkpoint.every_n_epochs and checkpoint.every_n_steps must be >= 0")
        if self.keep_last_epochs is not None and self.keep_last_epochs < 1:
            raise ConfigError(f"checkpoint.keep_last_epochs must be >= 1 or null, got {self.keep_last_epochs}")


@dataclass
class EvalConfig:
    """Periodic evaluation with :func:`fsc_clip.evaluation.runner.evaluate` (rank 0 only).

    Attributes:
        benchmarks: Benchmark names (``fsc-clip list benchmarks``); empty disables the hook.
        data_root: Folder holding the benchmarks' files.
        every_n_epochs: Evaluate after every N epochs (and after the last one).
        batch_size: Evaluation batch size.
    """

    benchmarks: list[str] = field(default_factory=list)
    data_root: str | None = None
    every_n_epochs: int = 1
    batch_size: int = 64

    def __post_init__(self) -> None:
        if self.every_n_epochs < 1 or self.batch_size < 1:
            raise ConfigError("eval.every_n_epochs and eval.batch_size must be >= 1")


@dataclass
class TrainConfig:
    """A complete, reproducible training run.

    Attributes:
        model: What to fine-tune.
        data: Training data (owned by :mod:`fsc_clip.data`).
        loss: Loss recipe (owned by :mod:`fsc_clip.losses`).
        optim: Optimiser and schedule.
        logging: Progress bar, metrics.jsonl, TensorBoard.
        checkpoint: Checkpoint cadence and retention.
        eval: Periodic evaluation hook.
        seed: Global seed (model init, data order, negatives, augmentation).
        output: Parent folder of run directories.
        name: Run directory name under ``output`` (null: derived from loss, model and the start time).
        device: ``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda`` or ``cuda:N``.
        resume: ``auto`` (latest valid checkpoint of this run if any), a checkpoint path or run dir, or null.
            Needed to write into a run folder that already holds a run.
        overwrite: Start afresh in a run folder that already holds a run: the old folder is moved aside to
            ``<name>.old-<time>`` (never deleted).
    """

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    seed: int = 0
    output: str = "runs"
    name: str | None = None
    device: str = "auto"
    resume: str | None = None
    overwrite: bool = False

    def __post_init__(self) -> None:
        if self.device != "auto" and self.device != "cpu" and not self.device.startswith("cuda"):
            raise ConfigError(f"device must be auto, cpu, cuda or cuda:N, got {self.device!r}")
        if self.name is not None and (not self.name or "/" in self.name):
            raise ConfigError(f"name must be a non-empty folder name without '/', got {self.name!r}")


INHERIT_KEY = "inherit"


def _merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def read_recipe(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Read a YAML recipe; ``inherit: other.yaml`` (relative to the file) is loaded first and deep-merged under it.

    Raises:
        ConfigError: missing file, invalid YAML, or an inheritance cycle.
    """
    path = Path(path).resolve()
    if path in _seen:
        raise ConfigError(f"{path}: inheritance cycle through {[str(p) for p in _seen]}")
    data = read_yaml(path)
    base = data.pop(INHERIT_KEY, None)
    if base is None:
        return data
    return _merge(read_recipe(path.parent / str(base), (*_seen, path)), data)


def load_train_config(path: str | Path | None = None, overrides: list[str] | None = None) -> TrainConfig:
    """Resolve a :class:`TrainConfig` from an optional recipe file plus dotted ``key=value`` overrides."""
    return load_config(TrainConfig, path, overrides, reader=read_recipe)
