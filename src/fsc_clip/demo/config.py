"""Typed configuration of ``fsc-clip demo``: the presets (full / quick, ``demo.yaml``) and the studies.

A *study* chooses which fine-tuning runs the demo compares; the world, the pre-trained base and the fine-tuning
recipe are the preset's for every study. Studies are registered in :data:`STUDIES` (``methods``: the preset's
method list; ``ablation``: the paper's loss ablation, package data in ``studies.yaml``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from importlib import resources
from typing import Any

from fsc_clip.config import ConfigError, apply_overrides, from_dict
from fsc_clip.data.synthetic import WorldConfig
from fsc_clip.registry import Registry


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
class StudyConfig:
    """Which comparison the demo makes (the runs themselves are ``DemoConfig.methods``).

    Attributes:
        name: Registered study name (:data:`STUDIES`); also names the report folder (``report`` for ``methods``,
            ``report-<name>`` otherwise).
        description: One paragraph for the report and the console.
        reference: A method compared with every other run (paired intervals), besides the base (None: none).
        source: Where the published numbers come from.
        published: Method name -> the published headline numbers of its row (``Comp``, ``ZS``, ``I2T``, ``T2I``).
    """

    name: str = "methods"
    description: str = ""
    reference: str | None = None
    source: str = ""
    published: dict[str, dict[str, float]] = field(default_factory=dict)


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
        study: Which comparison this is (set by ``demo_config(study=...)``).
        data_workers: DataLoader worker processes of every training run. The batches, and so the results, are the
            same for any value. Measured on 2 idle cores: 2 torch threads without a worker were faster than 1
            thread + 1 worker (1.22x) and than 2 threads + 1 worker (1.07x); a worker may pay off on more cores.
        finetune_jobs: Fine-tuning runs trained at the same time, each in its own process with one torch thread
            (``fsc_clip.demo.parallel``); 0 = one per usable CPU core. Every run uses one thread whatever this
            is, so the results do not depend on it nor on the machine's core count.
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
    study: StudyConfig = field(default_factory=StudyConfig)
    data_workers: int = 0
    finetune_jobs: int = 0

    def __post_init__(self) -> None:
        if self.finetune_jobs < 0:
            raise ConfigError(f"demo finetune_jobs must be >= 0 (0: one per CPU core), got {self.finetune_jobs}")
        if self.data_workers < 0:
            raise ConfigError(f"demo data_workers must be >= 0, got {self.data_workers}")
        if self.seeds < 1:
            raise ConfigError(f"demo seeds must be >= 1, got {self.seeds}")
        names = [m.name for m in self.methods]
        if len(set(names)) != len(names) or "base" in names:
            raise ConfigError(f"demo method names must be unique and not 'base', got {names}")
        if self.study.reference is not None and self.study.reference not in names:
            raise ConfigError(f"study {self.study.name}: reference {self.study.reference!r} is not a method ({names})")
        if 0 < self.finetune_rows < self.finetune.batch_size:
            raise ConfigError(f"finetune_rows ({self.finetune_rows}) must be >= finetune.batch_size")


@dataclass
class AblationRow:
    """One loss configuration of an ablation, as the switches of the FSC-CLIP loss.

    Attributes:
        name: Run and row name.
        global_hn: The global hard-negative loss (``LossConfig.apply_global_neg_loss``).
        local_hn: The local hard-negative loss, LHN (``apply_local_neg_loss``).
        focal: SCR's focal loss (``neg_loss_name: focal_loss``; off: ``cross_entropy``).
        smoothing: SCR's label smoothing over the valid negatives (``neg_label_smoothing`` = ε; off: None).
        paper_row: The row's id in the published table (0: not a published row).
        paper: The published headline numbers of that row.
    """

    name: str
    global_hn: bool
    local_hn: bool
    focal: bool
    smoothing: bool
    paper_row: int = 0
    paper: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not (self.global_hn or self.local_hn):
            raise ConfigError(f"ablation row {self.name!r}: needs the global or the local hard-negative loss on")

    def loss(self, template: dict[str, Any]) -> dict[str, Any]:
        """``LossConfig`` fields: the template's loss (name, weights, γ, ε) with this row's four switches."""
        from fsc_clip.losses.config import LossConfig

        default_epsilon = next(f.default for f in fields(LossConfig) if f.name == "neg_label_smoothing")
        epsilon = template.get("neg_label_smoothing") or default_epsilon  # the template's ε, even if it is off there
        return {
            **template,
            "apply_global_neg_loss": self.global_hn,
            "apply_local_neg_loss": self.local_hn,
            "neg_loss_name": "focal_loss" if self.focal else "cross_entropy",
            "neg_label_smoothing": epsilon if self.smoothing else None,
        }


@dataclass
class AblationSpec:
    """A loss ablation (package data, ``studies.yaml``): rows that switch parts of a template method's loss.

    Attributes:
        description: What the study shows.
        template: The preset method every row starts from (negatives, LoRA, learning rate, loss weights, γ, ε).
        rows: The loss configurations.
        reference: The row compared with every other row (paired intervals), besides the base.
        source: Where the rows' published numbers come from.
    """

    description: str
    template: str
    rows: list[AblationRow]
    reference: str | None = None
    source: str = ""

    def __post_init__(self) -> None:
        names = [r.name for r in self.rows]
        if len(set(names)) != len(names):
            raise ConfigError(f"ablation rows must have unique names, got {names}")
        if self.reference is not None and self.reference not in names:
            raise ConfigError(f"ablation reference {self.reference!r} is not a row ({names})")


#: name -> builder(preset) -> ``{"methods": [...], "study": {...}}``: what a study puts into the preset's data.
STUDIES: Registry[Callable[[dict[str, Any]], dict[str, Any]]] = Registry("demo study")


@STUDIES.register("methods")
def _methods_study(preset: dict[str, Any]) -> dict[str, Any]:
    """The preset's methods (CLIP, NegCLIP, FSC-CLIP full and LoRA) against the base and the reference of
    ``studies.yaml`` (plain CLIP fine-tuning: what the hard negatives add beyond more training on the same data)."""
    description = "Fine-tuning methods compared on one world, one pre-trained base and one fine-tuning recipe."
    reference = (_resource_yaml("studies.yaml").get("methods") or {}).get("reference")
    names = [m.get("name") for m in preset.get("methods", [])]
    study = {"name": "methods", "description": description, "reference": reference if reference in names else None}
    return {"methods": preset.get("methods", []), "study": study}


@STUDIES.register("ablation")
def _ablation_study(preset: dict[str, Any]) -> dict[str, Any]:
    """The loss ablation of ``studies.yaml``: each row = the template method with its four loss switches."""
    spec = from_dict(AblationSpec, _resource_yaml("studies.yaml")["ablation"], prefix="studies.yaml: ablation.")
    templates = {m["name"]: m for m in preset.get("methods", [])}
    if spec.template not in templates:
        raise ConfigError(f"studies.yaml: ablation.template {spec.template!r} is not a method of the demo preset "
                          f"({', '.join(templates)})")  # fmt: skip
    template = templates[spec.template]
    _check_hard_negative_loss(spec.template, dict(template.get("loss") or {}))
    methods = [{**copy.deepcopy(template), "name": r.name, "loss": r.loss(dict(template.get("loss") or {}))}
               for r in spec.rows]  # fmt: skip
    study = {
        "name": "ablation",
        "description": " ".join(spec.description.split()),
        "reference": spec.reference,
        "source": " ".join(spec.source.split()),
        "published": {r.name: r.paper for r in spec.rows if r.paper},
    }
    return {"methods": methods, "study": study}


def _check_hard_negative_loss(name: str, loss: dict[str, Any]) -> None:
    """The template's loss must have the separate hard-negative terms, or the switches would change nothing."""
    from fsc_clip.losses.config import LossConfig

    both = from_dict(LossConfig, {**loss, "apply_global_neg_loss": True, "apply_local_neg_loss": True})
    if both.global_weight <= 0 or both.local_weight <= 0:
        raise ConfigError(
            f"studies.yaml: ablation.template {name!r} has loss {both.loss_name!r}, which has no separate global / "
            "local hard-negative losses with positive weights (use an fsc-clip method)"
        )


def _resource_yaml(name: str) -> dict[str, Any]:
    import yaml

    path = resources.files("fsc_clip").joinpath("resources").joinpath("synthetic").joinpath(name)
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _presets() -> dict[str, Any]:
    return _resource_yaml("demo.yaml")


def _deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in top.items():
        out[key] = _deep_merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def demo_config(
    quick: bool = False, seed: int = 0, overrides: list[str] | None = None, study: str = "methods"
) -> DemoConfig:
    """The packaged preset (``full``, or ``quick`` on top of it) for a study, with a seed and dotted ``key=value``
    overrides (applied last, so they can change the study's runs too).

    Raises:
        UnknownNameError: ``study`` is not registered in :data:`STUDIES`.
        ConfigError: an invalid preset, study or override.
    """
    presets = _presets()
    data = presets["full"] if not quick else _deep_merge(presets["full"], presets["quick"])
    data = _deep_merge(data, {"seed": seed, "world": {"seed": seed}})
    data.update(STUDIES.get(study)(data))
    data = apply_overrides(data, list(overrides or []))
    return from_dict(DemoConfig, data)
