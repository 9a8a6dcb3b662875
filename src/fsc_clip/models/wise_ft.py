"""WiSE-FT: weight-space ensembles of a pre-trained and a fine-tuned model.

``θ(α) = (1 − α)·θ_pretrained + α·θ_finetuned`` (Wortsman et al., 2022). For a LoRA run the
frozen base *is* θ_pretrained and ``θ_finetuned = θ_pretrained + ΔW``, so the ensemble is the base
plus ``α·ΔW``: the adapters are scaled toward zero and merged.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch

from fsc_clip.errors import ModelLoadError


def interpolate(
    pretrained_state: dict[str, torch.Tensor], finetuned_state: dict[str, torch.Tensor], alpha: float
) -> dict[str, torch.Tensor]:
    """``(1 - alpha) * pretrained + alpha * finetuned`` for every floating-point tensor.

    Non-floating tensors (integer buffers) are taken from the fine-tuned state. Computation is in
    float32 (then cast back), so half-precision states interpolate without extra rounding.

    Raises:
        ModelLoadError: the two states do not have the same keys and shapes.
    """
    if pretrained_state.keys() != finetuned_state.keys():
        only_p = sorted(pretrained_state.keys() - finetuned_state.keys())[:5]
        only_f = sorted(finetuned_state.keys() - pretrained_state.keys())[:5]
        raise ModelLoadError(
            f"WiSE-FT needs two states of the same architecture; keys only in pretrained: {only_p}, "
            f"only in finetuned: {only_f}."
        )
    out = {}
    for key, ft in finetuned_state.items():
        pre = pretrained_state[key]
        if pre.shape != ft.shape:
            raise ModelLoadError(f"WiSE-FT: {key} has shape {tuple(pre.shape)} vs {tuple(ft.shape)}.")
        if ft.is_floating_point():
            mixed = (1.0 - alpha) * pre.detach().float().cpu() + alpha * ft.detach().float().cpu()
            out[key] = mixed.to(ft.dtype)
        else:
            out[key] = ft.detach().clone()
    return out


def lora_wise_ft(model: torch.nn.Module, alpha: float) -> torch.nn.Module:
    """A merged copy of a LoRA-adapted ``model`` whose adapters are scaled by ``alpha``."""
    from fsc_clip.models.lora import merge_lora, scale_lora

    mixed = copy.deepcopy(model)
    scale_lora(mixed, alpha)
    return merge_lora(mixed)


def _pretrained_state(name: str, pretrained: str, quick_gelu: bool | None) -> dict[str, torch.Tensor]:
    from fsc_clip.models import load_model

    return load_model(name, pretrained=pretrained, force_quick_gelu=quick_gelu).model.state_dict()


def wise_ft(
    finetuned: str | Path,
    alphas: list[float],
    outputs: list[str | Path],
    pretrained: str | None = None,
    model: str | None = None,
) -> list[Path]:
    """Write one WiSE-FT checkpoint per ``alpha`` (loadable by :func:`fsc_clip.models.load_model`).

    Args:
        finetuned: our run checkpoint or run directory (or a plain weights file together with ``model``).
        alphas: mixing coefficients (0 = pre-trained, 1 = fine-tuned).
        outputs: one output ``.pt`` path per alpha.
        pretrained: open_clip tag or weights path of the starting point; default: the one the run recorded.
            Ignored for LoRA runs, whose frozen base weights are the starting point.
        model: architecture; default: the one the run recorded.

    Raises:
        ModelLoadError: no starting point known, or the two models do not match.
        OutputError: an output folder cannot be written (checked before any model is loaded).
    """
    from fsc_clip.fileio import ensure_writable_dir
    from fsc_clip.models import load_model
    from fsc_clip.models.checkpoint import read_checkpoint, write_run_checkpoint

    for folder in dict.fromkeys(Path(out).parent for out in outputs):
        ensure_writable_dir(folder, "WiSE-FT output folder")
    ckpt = read_checkpoint(finetuned)
    meta = dict(ckpt.meta or {})
    name = model or meta.get("name")
    if name is None:
        raise ModelLoadError(f"{ckpt.path} is not an fsc-clip run checkpoint: pass --model ARCH for plain weights.")
    quick_gelu = meta.get("quick_gelu") if meta else None
    lora = meta.get("lora")
    ft = load_model(name, pretrained=str(ckpt.path), merge_lora=False, force_quick_gelu=quick_gelu).model
    base_spec = pretrained or meta.get("pretrained")
    if not lora:
        if not base_spec:
            raise ModelLoadError(
                f"{ckpt.path} records no pre-trained starting point (random init): pass --pretrained TAG_OR_PATH."
            )
        pre_state = _pretrained_state(name, base_spec, quick_gelu)
        ft_state = ft.state_dict()
    written = []
    for alpha, out in zip(alphas, outputs):
        state = lora_wise_ft(ft, alpha).state_dict() if lora else interpolate(pre_state, ft_state, alpha)
        model_meta = {**meta, "name": name, "pretrained": base_spec, "lora": None}
        model_meta.setdefault("quick_gelu", bool(quick_gelu))
        record = {
            "format": "fsc-clip",
            "format_version": 1,
            "model": model_meta,
            "state_dict": state,
            "config": {
                "wise_ft": {"finetuned": str(ckpt.path.resolve()), "pretrained": base_spec, "alpha": float(alpha)},
                "finetuned_config": ckpt.extra.get("config"),
            },
            "epoch": int(ckpt.extra.get("epoch", 0) or 0),
            "step": int(ckpt.extra.get("step", 0) or 0),
        }
        written.append(write_run_checkpoint(out, record))  # atomic, with its sha256
    return written
