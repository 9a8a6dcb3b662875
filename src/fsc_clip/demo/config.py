"""Typed configuration of ``fsc-clip demo``; the presets (full / quick) are package data (``demo.yaml``)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from fsc_clip.config import ConfigError, apply_overrides, from_dict
from fsc_clip.data.synthetic import WorldConfig


@dataclass
class StageConfig:
    """One training stage (pre-training or each fine-tuning run).

    Attributes:
        steps: Optimizer steps.
        batch_size: Image-caption pairs per step.
        lr: Peak learning rate (linear warm-up, cosine decay).
        warmup: Warm-up steps.
        wd: AdamW weight decay.
    """

    steps: int = 100
    batch_size: int = 128
    lr: float = 1e-4
    warmup: int = 10
    wd: float = 0.1

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 2 or self.lr <= 0 or self.warmup < 0:
            raise ConfigError(f"invalid demo stage {self}: need steps >= 1, batch_size >= 2, lr > 0, warmup >= 0")


@dataclass
class MethodConfig:
    """One fine-tuning method of the comparison.

    Attributes:
        name: Row name in the report (also the run and result folder name).
        loss: ``LossConfig`` fields (``loss_name`` and any others; the rest keep their defaults, which are the
            paper's FSC-CLIP recipe).
        negatives: Hard-negative style of the data pipeline (``None``: none).
        lora_rank: LoRA rank (0: full fine-tuning).
        lr_mult: Multiplier of the fine-tuning learning rate (LoRA adapters usually want a larger one).
    """

    name: str
    loss: dict[str, Any] = field(default_factory=lambda: {"loss_name": "clip"})
    negatives: str | None = None
    lora_rank: int = 0
    lr_mult: float = 1.0


@dataclass
class DemoConfig:
    """Everything ``fsc-clip demo`` does.

    Attributes:
        seed: Seeds the world and every training run.
        model: open_clip architecture trained from scratch (``fsc-demo``: a tiny ViT/Transformer CLIP).
        world: Size and caption mix of the synthetic world.
        pretrain: Pre-training from scratch with the CLIP loss on the whole training split.
        finetune: Each fine-tuning run, starting from the pre-trained model.
        finetune_rows: Fine-tuning uses the first N rows of the training split (0: all of them). Many distinct
            compositions keep the hard negatives from being memorised (on 2,500 rows for 30 epochs, NegCLIP ranked
            captions above their swaps 97 % of the time on its training rows but 60 % on held-out rows).
        negatives_per_type: Precomputed hard-negative candidates per type and caption.
        eval_batch_size: Images / texts per forward pass during evaluation.
        methods: The fine-tuning methods compared (all against the pre-trained base model).
        seeds: Fine-tuning seeds per method (``seed``, ``seed + 1``, ...; same world and base): > 1 adds a
            mean ± std table over seeds.
    """

    seed: int = 0
    model: str = "fsc-demo"
    world: WorldConfig = field(default_factory=WorldConfig)
    pretrain: StageConfig = field(default_factory=lambda: StageConfig(steps=900, lr=5e-4, warmup=40))
    finetune: StageConfig = field(default_factory=StageConfig)
    finetune_rows: int = 2500
    negatives_per_type: int = 2
    eval_batch_size: int = 256
    methods: list[MethodConfig] = field(default_factory=list)
    seeds: int = 1

    def __post_init__(self) -> None:
        if self.seeds < 1:
            raise ConfigError(f"demo seeds must be >= 1, got {self.seeds}")
        names = [m.name for m in self.methods]
        if len(set(names)) != len(names) or "base" in names:
            raise ConfigError(f"demo method names must be unique and not 'base', got {names}")
        if 0 < self.finetune_rows < self.finetune.batch_size:
            raise ConfigError(f"finetune_rows ({self.finetune_rows}) must be >= finetune.batch_size")


def _presets() -> dict[str, Any]:
    import yaml

    path = resources.files("fsc_clip").joinpath("resources").joinpath("synthetic").joinpath("demo.yaml")
    text = path.read_text(encoding="utf-8")
    return yaml.safe_load(text)


def _deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in top.items():
        out[key] = _deep_merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def demo_config(quick: bool = False, seed: int = 0, overrides: list[str] | None = None) -> DemoConfig:
    """The packaged preset (``full``, or ``quick`` on top of it) with a seed and dotted ``key=value`` overrides."""
    presets = _presets()
    data = presets["full"] if not quick else _deep_merge(presets["full"], presets["quick"])
    data = _deep_merge(data, {"seed": seed, "world": {"seed": seed}})
    data = apply_overrides(data, list(overrides or []))
    return from_dict(DemoConfig, data)
