"""``fsc-clip train``: a YAML recipe + ``--set key=value`` overrides + the authors' flags as aliases.

Precedence: recipe file < reference-flag aliases < ``--set``. Every alias maps to exactly one config
key (listed in ``fsc-clip train --help``), so the published training commands translate one-to-one::

    fsc-clip train --config configs/coco/fsc-clip.yaml --set optim.batch_size=128
    torchrun --nproc_per_node 4 -m fsc_clip.cli train --train-data train_neg_clip.tsv --model ViT-B-32 \\
        --pretrained openai --loss-name fsc-clip --add-random-text-hard-negatives fsc-clip ...
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

# (flag, config key, kind): kind "value" takes an argument ("value?" optionally: bare flag = "negclip", as in the
# reference), "true"/"false" set the key to true/false; "noop" / "noop-value" are accepted for compatibility with the
# reference scripts and change nothing (what they switch on is automatic here).
ALIASES: list[tuple[str, str, str]] = [
    ("--train-data", "data.train_data", "value"),
    ("--dataset-type", "data.source", "value"),
    ("--csv-img-key", "data.csv_img_key", "value"),
    ("--csv-caption-key", "data.csv_caption_key", "value"),
    ("--csv-separator", "data.csv_separator", "value"),
    ("--train-num-samples", "data.train_num_samples", "value"),
    ("--dataset-resampled", "data.wds_resampled", "true"),
    ("--workers", "data.workers", "value"),
    ("--add-random-text-hard-negatives", "data.negatives", "value?"),
    # The authors' --caption-key X (X != "caption") reads JSON field X, else the side folder X (their data.py
    # _replace_caption_col, ytaek-oh/fsc-clip@604015d): exactly data.wds_caption_dir. "caption" = the shards' own txt.
    ("--caption-key", "data.wds_caption_dir", "value"),
    ("--precomputed-negatives", "data.precomputed_negatives", "value"),
    ("--model", "model.name", "value"),
    ("--pretrained", "model.pretrained", "value"),
    ("--force-quick-gelu", "model.quick_gelu", "true"),
    ("--lora-rank", "model.lora_rank", "value"),
    ("--lora-alpha", "model.lora_alpha", "value"),
    ("--lock-image", "model.lock_image", "true"),
    ("--lock-text", "model.lock_text", "true"),
    ("--grad-checkpointing", "model.grad_checkpointing", "true"),
    ("--loss-name", "loss.loss_name", "value"),
    ("--neg-loss-name", "loss.neg_loss_name", "value"),
    ("--focal-gamma", "loss.focal_gamma", "value"),
    ("--neg-label-smoothing", "loss.neg_label_smoothing", "value"),
    ("--apply-global-neg-loss", "loss.apply_global_neg_loss", "true"),
    ("--neg-loss-weight", "loss.neg_loss_weight", "value"),
    ("--apply-local-neg-loss", "loss.apply_local_neg_loss", "true"),
    ("--local-neg-weight", "loss.local_neg_weight", "value"),
    ("--sim-normalizer", "loss.sim_normalizer", "value"),
    ("--sim-sparsify", "loss.sim_sparsify", "true"),
    ("--lr", "optim.lr", "value"),
    ("--wd", "optim.wd", "value"),
    ("--beta1", "optim.beta1", "value"),
    ("--beta2", "optim.beta2", "value"),
    ("--eps", "optim.eps", "value"),
    ("--warmup", "optim.warmup", "value"),
    ("--lr-scheduler", "optim.schedule", "value"),
    ("--epochs", "optim.epochs", "value"),
    ("--batch-size", "optim.batch_size", "value"),
    ("--accum-freq", "optim.accum_freq", "value"),
    ("--grad-clip-norm", "optim.grad_clip_norm", "value"),
    ("--precision", "optim.precision", "value"),
    ("--max-steps", "optim.max_steps", "value"),
    ("--save-frequency", "checkpoint.every_n_epochs", "value"),
    ("--log-every-n-steps", "logging.every_n_steps", "value"),
    ("--seed", "seed", "value"),
    ("--logs", "output", "value"),
    ("--output", "output", "value"),  # use this under torchrun: its own --logs-specs makes --logs ambiguous
    ("--name", "name", "value"),
    ("--device", "device", "value"),
    ("--resume", "resume", "value"),
    ("--overwrite", "overwrite", "true"),
    ("--no-progress", "logging.progress", "false"),
    ("--zeroshot-frequency", "eval.every_n_epochs", "value"),
    ("--local-loss", "", "noop"),
    ("--gather-with-grad", "", "noop"),
    ("--return-dense-tokens", "", "noop"),
    ("--report-to", "", "noop-value"),
    ("--val-frequency", "", "noop-value"),
]
_NOOP_HELP = {
    "--local-loss": "accepted, no effect: features are always gathered with gradient (local loss)",
    "--gather-with-grad": "accepted, no effect: features are always gathered with gradient (local loss)",
    "--return-dense-tokens": "accepted, no effect: dense tokens are computed whenever the loss needs them",
    "--report-to": "accepted; 'tensorboard' sets logging.tensorboard=true (warns if TensorBoard is not installed), "
    "other values have no effect",
    "--val-frequency": "accepted, no effect: use eval.benchmarks / --zeroshot-frequency for periodic evaluation",
}


def _dest(key: str) -> str:
    return "alias__" + key.replace(".", "__")


_EXTRA_HELP = {
    "--add-random-text-hard-negatives": "; bare flag = negclip; e.g. fsc-clip (generated online) or precomputed",
    "--resume": "; auto = this run's newest valid checkpoint, or a .pt file / run dir; needed to continue a run",
    "--overwrite": "; start afresh in a run folder that holds a run: the old one is moved to <name>.old-<time>",
    "--no-progress": "; no progress bar (e.g. for log files)",
    "--logs": "; parent folder of run folders",
    "--name": "; run folder under --output (null: <time>-<loss>-<model>)",
    "--train-data": "; a .csv/.tsv/.jsonl table or webdataset .tar shards (required)",
    "--output": "; parent folder of run folders (use this under torchrun)",
    "--caption-key": "; webdataset captions: JSON field or side folder V, e.g. coca_captions ('caption' = the txt)",
}


def _default_of(key: str) -> str:
    """The schema default of a dotted config key, as the help shows it."""
    from fsc_clip.config import to_dict
    from fsc_clip.training.config import TrainConfig

    node: Any = to_dict(TrainConfig())
    for part in key.split("."):
        node = node[part]
    if node is None or node == "":
        return "null" if node is None else "none"
    return str(node).lower() if isinstance(node, bool) else str(node)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="YAML",
        help="training recipe, e.g. configs/coco/fsc-clip.yaml (default: none, i.e. the schema defaults)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override any config key, e.g. optim.lr=1e-5; repeatable (default: none)",
    )
    parser.add_argument(
        "--print-config", action="store_true", help="print the resolved config as YAML and exit (default: off)"
    )
    group = parser.add_argument_group(
        "reference flags (each is an alias of one config key; defaults are the schema's, a --config recipe may "
        "set others; precedence: recipe < flag < --set)"
    )
    for flag, key, kind in ALIASES:
        if kind.startswith("noop"):
            action = "store" if kind == "noop-value" else "store_true"
            text = f"{_NOOP_HELP[flag]} (default: {'none' if kind == 'noop-value' else 'off'})"
            extra: dict[str, Any] = {"metavar": "V"} if kind == "noop-value" else {}
            group.add_argument(flag, action=action, default=argparse.SUPPRESS, help=text, **extra)
            continue
        text = f"= {key}{_EXTRA_HELP.get(flag, '')} (default: {_default_of(key)})"
        if kind in ("value", "value?"):
            extra = {"nargs": "?", "const": "negclip"} if kind == "value?" else {}
            group.add_argument(flag, dest=_dest(key), default=argparse.SUPPRESS, metavar="V", help=text, **extra)
        else:
            value = kind == "true"
            text = f"{key}={str(value).lower()}{_EXTRA_HELP.get(flag, '')} (default: {_default_of(key)})"
            group.add_argument(
                flag, dest=_dest(key), action="store_const", const=value, default=argparse.SUPPRESS, help=text
            )


def _alias_value(raw: Any, flag: str = "") -> Any:
    if isinstance(raw, str) and raw.strip().lower() in ("none", "null", "~"):
        return None
    if flag == "--caption-key" and raw in ("caption", "txt"):  # the reference's default: no side folder
        return None
    return raw


def _set_key(data: dict[str, Any], key: str, value: Any) -> None:
    node = data
    *parents, leaf = key.split(".")
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            from fsc_clip.config import ConfigError

            raise ConfigError(f"{key}: {part!r} is a value in the config file, not a section")
    node[leaf] = value


def config_from_args(args: argparse.Namespace) -> Any:
    """Resolve the :class:`~fsc_clip.training.TrainConfig`: recipe file, then aliases, then ``--set``."""
    from fsc_clip.config import ConfigError, apply_overrides, from_dict
    from fsc_clip.training.config import TrainConfig, read_recipe

    data = read_recipe(args.config) if args.config else {}
    for flag, key, _kind in ALIASES:
        if key and hasattr(args, _dest(key)):
            _set_key(data, key, _alias_value(getattr(args, _dest(key)), flag))
    if "tensorboard" in str(getattr(args, "report_to", "") or "").lower():  # the reference's --report-to tensorboard
        _set_key(data, "logging.tensorboard", True)
    data = apply_overrides(data, list(args.set))
    try:
        return from_dict(TrainConfig, data)
    except ConfigError as err:
        where = f"{args.config}: " if args.config else ""
        raise ConfigError(f"{where}{err}") from err


def run(args: argparse.Namespace) -> int:
    import os

    cfg = config_from_args(args)
    if args.print_config:
        import yaml

        from fsc_clip.config import to_dict

        print(yaml.safe_dump(to_dict(cfg), sort_keys=False), end="")
        return 0
    if not cfg.data.train_data:
        from fsc_clip.config import ConfigError

        raise ConfigError("no training data: pass --train-data PATH or set data.train_data in the recipe")
    from fsc_clip.training import train

    run_dir = train(cfg)
    if os.environ.get("RANK", "0") == "0":
        print(f"Run directory: {run_dir}", file=sys.stderr)
    return 0
