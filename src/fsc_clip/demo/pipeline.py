"""``fsc-clip demo``: the whole method end to end on the embedded synthetic world, every stage cached.

Stages (each skipped when its outputs exist for the same settings, so an interrupted demo resumes):

1. ``world``: render the synthetic world (training TSV + world-grammar negatives + five test sets in their real
   formats).
2. ``pretrain``: train a tiny CLIP from scratch with the CLIP loss on the training split (the "pre-trained
   model" every method starts from) with the real trainer. The finished base is shared between demo folders through
   ``$FSC_CLIP_CACHE_DIR/demo`` (:func:`base_cache_dir`); the base of the default settings ships with the package
   (:mod:`fsc_clip.demo.shipped`) and is unpacked there instead of trained; ``from_scratch`` re-trains it.
3. ``negatives``: one JSONL of precomputed negatives for the fine-tuning split: the world's own replacements plus the
   types the world does not provide (``ngram_shuffle_2``), precomputed by the real negatives pipeline. The NegCLIP
   swaps come with the TSV, as in COCO's ``train_neg_clip.tsv`` (see :data:`WORLD_TYPES`).
4. ``finetune``: fine-tune copies of it with the study's methods (``methods``: CLIP, NegCLIP and FSC-CLIP, full and
   LoRA; ``ablation``: the eight loss configurations of the paper's Table 2), one recipe for all (and ``seeds``
   seeds each). The runs are trained side by side, one per core, each in its own process with one torch thread
   (:mod:`fsc_clip.demo.parallel`), so their results do not depend on the machine's core count.
5. ``evaluate``: evaluate the base and every fine-tuned model on the synthetic benchmarks with the real runner,
   keeping per-item outcomes (``<benchmark>.scores.npz``) for the paired bootstrap intervals.
6. ``report``: the holistic report (profile ``synthetic``, baseline ``base``, and the study's reference run if it
   has one) as CSV / Markdown / HTML / PNG.

Progress: one line per update, ``[demo 4/6 finetune 3/8 row3-global+local] elapsed 1m02s, ETA ~2m10s`` (and
``[demo 4/6 finetune] done in 41.0 s; elapsed 1m43s, ETA ~1m05s`` when a stage ends). The ETA
uses the seconds each stage took in earlier invocations of the same settings (``timings.json``); stages without such
a record are estimated from their amount of work at the speed measured so far (in this invocation, else in the
latest recorded one).

Output layout::

    <output>/world/            the synthetic world (the data root of the synthetic benchmarks)
    <output>/finetune/         fine-tuning split TSV + precomputed negatives JSONL
    <output>/runs/<model>/     trainer run directories (base = the pre-trained model)
    <output>/eval/<model>/     one result JSON (+ per-item outcomes NPZ) per benchmark
    <output>/report/           summary.csv, subscores.csv, report.md, report.html, plots/*.png (study ``methods``)
    <output>/report-<study>/   the same for another study (``report-ablation``)
    <output>/timings.json      every invocation (appended, never replaced): wall seconds per stage, CPU seconds,
                               load, what was reused; written after every stage, so an interrupted run is kept too
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

from fsc_clip.config import to_dict
from fsc_clip.demo.config import DemoConfig, MethodConfig, StageConfig
from fsc_clip.demo.parallel import RunJob, default_workers, run_progress, train_side_by_side
from fsc_clip.fileio import ensure_writable_dir, write_json, write_text

BASE = "base"
DONE = "demo_done.json"  # a finished run (written after its last checkpoint)
STAMP = "demo_settings.json"  # the settings a run was trained with (its fingerprint)
POLL_SECONDS = 30.0  # between two progress lines while fine-tuning runs are under way
BENCHMARKS = (
    "synthetic_sugarcrepe",
    "synthetic_winoground",
    "synthetic_aro",
    "synthetic_zeroshot",
    "synthetic_retrieval",
)
PROFILE = "synthetic"
TABLE_COLUMNS = ("Comp", "ZS", "I2T", "T2I", "synthetic_sugarcrepe", "synthetic_winoground", "synthetic_aro")


@dataclass
class DemoResult:
    """What a demo run produced.

    Attributes:
        output: The demo folder.
        report_files: ``{kind: path}`` from the report writer (``summary_csv``, ``markdown``, ``html``, plots).
        timings: Wall seconds per stage of this invocation (cached stages take ~0).
        cached: Stages (or runs) that were reused from an earlier invocation.
        rows: One dict per model: ``model``, the report columns, ``ci`` (95 % intervals), ``paired`` (paired
            intervals vs the base) and ``paired_ref`` (vs the study's reference run, if any).
        study: The study's name.
        reference: The study's reference run (or None).
    """

    output: Path
    report_files: dict[str, Path]
    timings: dict[str, float] = field(default_factory=dict)
    cached: list[str] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    study: str = "methods"
    reference: str | None = None


STAGES = ("world", "pretrain", "negatives", "finetune", "evaluate", "report")


def _stage_weights(cfg: DemoConfig) -> dict[str, float]:
    """Rough relative cost of each stage (sample-steps; measured ratios on a 2-core CPU) for the ETA."""
    w = cfg.world
    images = w.n_train + 7 * w.n_sugarcrepe + 2 * w.n_winoground + 2 * w.n_aro + 3 * w.n_zeroshot + w.n_retrieval
    finetune = sum(cfg.finetune.steps * cfg.finetune.batch_size * (2.5 if m.negatives else 1.0) for m in cfg.methods)
    return {
        "world": 0.6 * images,
        "pretrain": cfg.pretrain.steps * cfg.pretrain.batch_size,
        "negatives": 0.3 * _finetune_rows(cfg),
        "finetune": finetune,
        "evaluate": (1 + len(cfg.methods)) * 0.5 * (images - w.n_train),
        "report": 2000.0,
    }


class _Demo:
    """One invocation: config, folders, logging and the stage bookkeeping (the overall progress line and ETA)."""

    def __init__(
        self, cfg: DemoConfig, output: Path, progress: bool, log: Callable[[str], None], from_scratch: bool = False
    ) -> None:
        self.cfg, self.out, self.progress, self.log = cfg, output, progress, log
        self.world = output / "world"
        self.result = DemoResult(output=output, report_files={}, study=cfg.study.name, reference=cfg.study.reference)
        self.t0 = time.perf_counter()
        self.started = datetime.now(timezone.utc)
        self.cpu0 = time.process_time()
        self.key = settings_key(cfg)
        self.weights = _stage_weights(cfg)
        self.history = read_timings(output / TIMINGS)
        self.expected = _expected_seconds(self.history, self.key)
        if not from_scratch and _base_is_cached(cfg, output):
            self.expected["pretrain"] = 0.0  # the base will be copied, not trained
        self.history_rate = _history_rate(self.history)
        self.entry: int | None = None  # this invocation's index in self.history once recorded
        self.worked = [0.0, 0.0]  # [seconds, weight] of the stages that did work in this invocation
        self.reused: list[str] = []  # stages that were reused whole
        self.current, self.stage_t0 = "", 0.0
        self.part: tuple[float, int] = (0, 0)  # (items done, items) of the current stage
        self.working = False  # whether the current stage generated, trained or evaluated something

    def progress_line(self, name: str, item: str = "") -> str:
        """``[demo 4/6 finetune 3/8 negclip] elapsed 1m02s, ETA ~2m10s``: the one overall progress line."""
        where = f"{STAGES.index(name) + 1}/{len(STAGES)} {name}"
        if self.part[1]:
            where += f" {self.part[0] + 1}/{self.part[1]}" + (f" {item}" if item else "")
        return f"[demo {where}] elapsed {_mmss(time.perf_counter() - self.t0)}, {self._eta_text()}"

    def _eta_text(self) -> str:
        eta = self.eta()
        return f"ETA ~{_mmss(eta)}" if eta is not None else "ETA: after the first stage that does work"

    def eta(self) -> float | None:
        """Seconds left: recorded stage times of the same settings, else work x the measured speed (None: unknown);
        an unrecorded stage a tenth done or more is extrapolated from its own pace (e.g. runs side by side)."""
        rate = self.worked[0] / self.worked[1] if self.worked[1] > 0 and self.worked[0] > 0 else self.history_rate
        left = 0.0
        for name in STAGES[STAGES.index(self.current) if self.current else 0 :]:
            recorded = self.expected.get(name)
            done, total = self.part if name == self.current else (0, 0)
            in_stage = time.perf_counter() - self.stage_t0
            if recorded is None and total and done / total >= 0.1:
                left += in_stage * (total - done) / done  # unrecorded stage under way: its own pace so far
                continue
            if recorded is not None:
                est = recorded
            elif rate is not None:
                est = self.weights[name] * rate
            else:
                return None
            if name == self.current:
                est = est * (1 - done / total) if total else max(est - in_stage, 0.0)
            left += est
        return left

    def step(self, k: int, total: int, item: str) -> None:
        """Announce item ``k`` (0-based) of ``total`` of the current stage (a fine-tuning run, a model to evaluate)."""
        self.part = (k, total)
        self.log(self.progress_line(self.current, item))

    def runs_progress(self, work: tuple[float, int], finished: int, total: int, running: str) -> None:
        """``[demo 4/6 finetune 1/4 done; negclip 120/400, fsc-clip 80/400] ...``: runs trained side by side.

        Args:
            work: (runs trained so far in this invocation, counting the fractions of running ones; runs to train):
                what the ETA extrapolates from (reused runs took no time).
            finished: Runs done, reused ones included, of ``total`` runs.
            total: All runs of the stage.
            running: What each running run has done (``negclip 120/400, ...``).
        """
        self.part = work
        where = f"{STAGES.index(self.current) + 1}/{len(STAGES)} {self.current} {finished}/{total} done"
        where += f"; {running}" if running else ""
        self.log(f"[demo {where}] elapsed {_mmss(time.perf_counter() - self.t0)}, {self._eta_text()}")

    def stage(self, name: str, fn: Callable[[], Any]) -> Any:
        self.current, self.part, self.stage_t0 = name, (0, 0), time.perf_counter()
        self.working = False
        self.log(self.progress_line(name))
        value = fn()
        seconds = time.perf_counter() - self.stage_t0
        self.result.timings[name] = round(seconds, 1)
        if not self.working:
            self.reused.append(name)  # reused whole (or nothing to do): says nothing about this machine's speed
            self.expected[name] = 0.0
        else:
            self.worked[0] += seconds
            self.worked[1] += self.weights[name]
        self.current, self.part = STAGES[min(STAGES.index(name) + 1, len(STAGES) - 1)], (0, 0)
        self.stage_t0 = time.perf_counter()
        done = f"[demo {STAGES.index(name) + 1}/{len(STAGES)} {name}] done in {seconds:.1f} s"
        tail = self._eta_text() if name != STAGES[-1] else "finished"
        self.log(f"{done}; elapsed {_mmss(time.perf_counter() - self.t0)}, {tail}")
        _record_timings(self, complete=name == STAGES[-1])
        return value


def _mmss(seconds: float) -> str:
    m, sec = divmod(round(seconds), 60)
    return f"{m}m{sec:02d}s"


def settings_key(cfg: DemoConfig) -> str:
    """A short hash of everything that decides how long the demo takes (all settings, study included)."""
    return hashlib.sha256(json.dumps(to_dict(cfg), sort_keys=True, default=str).encode()).hexdigest()[:16]


def _base_is_cached(cfg: DemoConfig, output: Path) -> bool:
    return (output / "runs" / BASE / DONE).exists() or (base_cache_dir(cfg) / DONE).exists()


# ----------------------------------------------------------------------------------------------- timings.json
TIMINGS = "timings.json"


def read_timings(path: Path) -> list[dict[str, Any]]:
    """The recorded invocations of ``timings.json`` (``[]`` without a readable file)."""
    try:
        history = json.loads(path.read_text(encoding="utf-8")).get("invocations", [])
    except (OSError, ValueError, AttributeError):
        return []  # no file yet, or the single-invocation layout of older versions
    return [h for h in history if isinstance(h, dict) and isinstance(h.get("timings_s"), dict)]


def _expected_seconds(history: list[dict[str, Any]], key: str) -> dict[str, float]:
    """Per stage, its wall seconds in the latest invocation of the same settings where it did work (not reused)."""
    expected: dict[str, float] = {}
    for h in reversed(history):
        if h.get("settings_key") != key:
            continue
        for name, seconds in h["timings_s"].items():
            if name in STAGES and name not in expected and name not in h.get("reused_stages", [name]):
                expected[name] = float(seconds)
    return expected


def _history_rate(history: list[dict[str, Any]]) -> float | None:
    """Seconds per unit of stage work in the latest invocation that did work (any settings), or None."""
    for h in reversed(history):
        weights, reused = h.get("stage_weights") or {}, h.get("reused_stages", [])
        pairs = [(s, weights[n]) for n, s in h["timings_s"].items() if n in weights and n not in reused]
        if sum(w for _s, w in pairs) > 0 and sum(s for s, _w in pairs) > 0:
            return sum(s for s, _w in pairs) / sum(w for _s, w in pairs)
    return None


def _record_timings(d: _Demo, complete: bool) -> None:
    """Write this invocation into ``timings.json``'s history (appended once, then updated in place after every
    stage). Earlier invocations are never replaced, so a cached re-run never hides the run that did the work."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    timings = dict(d.result.timings)
    if complete:
        timings["total"] = round(time.perf_counter() - d.t0, 1)
    entry = {
        "started": d.started.isoformat(timespec="seconds"),
        "study": d.cfg.study.name,
        "settings_key": d.key,
        "complete": complete,
        "timings_s": timings,
        "reused_stages": list(d.reused),
        "stage_weights": {k: round(v, 1) for k, v in d.weights.items()},
        "cpu_s": round(time.process_time() - d.cpu0, 1),  # this process's user + sys time (torch threads included)
        "load_avg_1_5_15": [round(x, 2) for x in load] if load else None,
        "threads": int(os.environ.get("OMP_NUM_THREADS", "0")) or None,
        "cached": list(d.result.cached),
    }
    if d.entry is None:
        d.history.append(entry)
        d.entry = len(d.history) - 1
    else:
        d.history[d.entry] = entry
    worked = [h for h in d.history if h.get("complete", True) and _did_work(h)]
    write_json(d.out / TIMINGS, {"invocations": d.history, "last_full_run": worked[-1] if worked else None}, indent=1)


def _did_work(entry: dict[str, Any]) -> bool:
    """Whether an invocation generated, trained or evaluated anything: a stage before the report that was not
    reused (older entries, without ``reused_stages``: one that took a second or more)."""
    stages = {k: v for k, v in entry["timings_s"].items() if k not in ("total", "report")}
    if "reused_stages" in entry:
        return any(k not in entry["reused_stages"] for k in stages)
    return any(v >= 1.0 for v in stages.values())


# ----------------------------------------------------------------------------------------------- stages


def _stage_world(d: _Demo) -> None:
    from fsc_clip.data.synthetic import generate_world, read_manifest

    before = read_manifest(d.world)
    manifest = generate_world(d.cfg.world, d.world, progress=d.progress)
    d.working = before != manifest
    if before == manifest:
        d.result.cached.append("world")
        d.log(f"world: reusing {d.world}")
    else:
        d.log(f"world: wrote {d.world} ({manifest['counts']['train']} training pairs)")


def _train_config(
    d: _Demo,
    name: str,
    stage: StageConfig,
    data: dict[str, Any],
    method: MethodConfig,
    pretrained,
    seed: int | None = None,
):
    from fsc_clip.config import from_dict
    from fsc_clip.training import TrainConfig

    steps_per_epoch = max(1, data.pop("_rows") // stage.batch_size)
    data["workers"] = d.cfg.data_workers
    raw = {
        "model": {"name": d.cfg.model, "pretrained": pretrained, "lora_rank": method.lora_rank, "augment": False},
        "data": data,
        "loss": dict(method.loss),
        "optim": {
            "lr": stage.lr * method.lr_mult,
            "wd": stage.wd,
            "warmup": stage.warmup,
            "schedule": "cosine",
            "epochs": math.ceil(stage.steps / steps_per_epoch),
            "batch_size": stage.batch_size,
            "precision": "fp32",
            "max_steps": stage.steps,
        },
        "logging": {"every_n_steps": 10, "progress": d.progress, "tensorboard": False},
        "checkpoint": {"every_n_epochs": 0, "every_n_steps": 100, "keep_last_epochs": 1},
        "seed": d.cfg.seed if seed is None else seed,
        "output": str(d.out / "runs"),
        "name": name,
        "device": "cpu",
        "resume": "auto",
    }
    return from_dict(TrainConfig, raw)


def _architecture(model: str) -> dict[str, Any] | None:
    """The open_clip config of architecture ``model`` (None if open_clip has no config under that name).

    Part of every key and fingerprint of the demo: the name alone would let a base or a run trained with an
    earlier version of an architecture be reused (``fsc-demo`` had three text layers until 2026-12-02)."""
    import open_clip

    from fsc_clip.models.configs import register_model_configs

    register_model_configs()
    return open_clip.get_model_config(model)


def _fingerprint(tc: Any) -> str:
    settings = to_dict(tc)
    settings["architecture"] = _architecture(tc.model.name)
    settings.pop("logging", None)  # progress bars do not change the result
    for key in ("workers", "persistent_workers"):  # nor does who loads the batches (tested)
        settings["data"].pop(key, None)
    return json.dumps(settings, sort_keys=True, default=str)


def _needs_training(d: _Demo, name: str, tc: Any) -> bool:
    """Prepare run ``name``'s folder: False when a finished run with these settings is there (reused); a run with
    other settings under the same name is replaced; an unfinished one is resumed by the trainer."""
    run_dir = d.out / "runs" / name
    fingerprint = _fingerprint(tc)
    stamp = run_dir / STAMP
    if stamp.exists() and stamp.read_text() != fingerprint:
        d.log(f"{name}: settings changed, retraining")
        shutil.rmtree(run_dir)
    if (run_dir / DONE).exists() and (run_dir / "checkpoints" / "latest.pt").exists():
        d.result.cached.append(name)
        d.log(f"{name}: reusing {run_dir}")
        return False
    run_dir.mkdir(parents=True, exist_ok=True)
    write_text(stamp, fingerprint)
    d.working = True
    return True


def _mark_done(run_dir: Path, seconds: float) -> None:
    write_text(run_dir / DONE, json.dumps({"seconds": round(seconds, 1)}))


def _train(d: _Demo, name: str, tc: Any) -> Path:
    """Run (or resume, or reuse) one training run in this process (torch's threads)."""
    from fsc_clip.training import train

    run_dir = d.out / "runs" / name
    if _needs_training(d, name, tc):
        t0 = time.perf_counter()
        train(tc)
        _mark_done(run_dir, time.perf_counter() - t0)
    return run_dir


def base_cache_dir(cfg: DemoConfig) -> Path:
    """Shared cache of pre-trained bases: ``$FSC_CLIP_CACHE_DIR/demo/base-<key>`` (``~/.cache/fsc_clip``).

    The key covers everything the base depends on (model name and architecture, seed, world config and version,
    pre-training stage) and no paths, so every demo folder on the machine shares one base per setting.
    """
    from fsc_clip.data.synthetic.world import WORLD_VERSION
    from fsc_clip.models.zoo import cache_root

    key = json.dumps(
        {"model": cfg.model, "architecture": _architecture(cfg.model), "seed": cfg.seed, "world": to_dict(cfg.world),
         "world_version": WORLD_VERSION, "pretrain": to_dict(cfg.pretrain)}, sort_keys=True,
    )  # fmt: skip
    return cache_root() / "demo" / f"base-{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def _finished_here(run_dir: Path, tc: Any) -> bool:
    """``run_dir`` holds a finished run trained with the settings of ``tc``."""
    stamp = run_dir / STAMP
    return (run_dir / DONE).exists() and stamp.exists() and stamp.read_text() == _fingerprint(tc)


def _stage_pretrain(d: _Demo, from_scratch: bool = False) -> Path:
    """Pre-train the base, or reuse this folder's, or copy the shared cached one, or unpack the one shipped with the
    package when it is this base (:mod:`fsc_clip.demo.shipped`); ``from_scratch`` always trains."""
    cfg = d.cfg
    data = {"train_data": str(d.world / "train" / "train_neg_clip.tsv"), "negatives": None, "_rows": cfg.world.n_train}
    method = MethodConfig(name=BASE, loss={"loss_name": "clip"})
    tc = _train_config(d, BASE, cfg.pretrain, data, method, None)
    run_dir, shared = d.out / "runs" / BASE, base_cache_dir(cfg)
    if from_scratch:  # also in a new folder: never the shared or shipped base
        shutil.rmtree(run_dir, ignore_errors=True)
    elif not _finished_here(run_dir, tc) and ((shared / DONE).exists() or _unpack_shipped(shared)):
        shipped = json.loads((shared / DONE).read_text()).get("shipped")
        if run_dir.exists():  # unfinished, or trained with other settings (e.g. an earlier fsc-demo): never mixed
            d.log(f"{BASE}: replacing {run_dir} (unfinished or other settings)")
            shutil.rmtree(run_dir)
        shutil.copytree(shared, run_dir)
        write_text(run_dir / STAMP, _fingerprint(tc))  # this folder's paths
        d.result.cached.append("base:shipped" if shipped else "base:shared")
        where = f"shipped with fsc-clip ({shipped}, unpacked to {shared})" if shipped else f"cached in {shared}"
        d.log(f"{BASE}: using the pre-trained base {where}; --from-scratch re-trains it")
    run_dir = _train(d, BASE, tc)
    if BASE not in d.result.cached or not (shared / DONE).exists():
        _publish(run_dir, shared)  # trained now, or this folder's base is not in the shared cache yet
    return run_dir


def _unpack_shipped(shared: Path) -> bool:
    """Unpack the base shipped with the package into the shared cache if it is the one ``shared`` stands for."""
    from fsc_clip.demo.shipped import shipped_base, shipped_key, unpack_base

    path = shipped_base()
    if path is None or shared.name != f"base-{shipped_key(path)}":
        return False
    tmp = shared.with_name(f"{shared.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    unpack_base(path, tmp)
    shutil.rmtree(shared, ignore_errors=True)
    tmp.rename(shared)  # atomic: a concurrent demo sees no half-written base
    return True


def _publish(run_dir: Path, shared: Path) -> None:
    """Copy a finished base into the shared cache (latest checkpoint only; atomic by rename)."""
    tmp = shared.with_name(f"{shared.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(run_dir, tmp, ignore=lambda _dir, names: [n for n in names if n.startswith("step_")])
    shutil.rmtree(shared, ignore_errors=True)
    tmp.rename(shared)


def _finetune_rows(cfg: DemoConfig) -> int:
    return min(cfg.finetune_rows or cfg.world.n_train, cfg.world.n_train)


def _finetune_split(d: _Demo) -> Path:
    """The first ``finetune_rows`` rows of the training TSV (0: all of them; images stay in the world folder)."""
    src = d.world / "train" / "train_neg_clip.tsv"
    dst = d.out / "finetune" / "finetune_neg_clip.tsv"
    dst.parent.mkdir(parents=True, exist_ok=True)
    with src.open(encoding="utf-8") as f:
        lines = list(f)[: _finetune_rows(d.cfg) + 1]
    text = "".join(lines)
    if not dst.exists() or dst.read_text(encoding="utf-8") != text:
        write_text(dst, text)
    return dst


WORLD_TYPES = ("negclip", "replace")
"""Negative types the world itself provides, in its own grammar and vocabulary: ``negclip`` = the TSV's swap column
(attribute / object swaps, relation flips), ``replace`` = ``train/negatives_world.jsonl`` (attribute, object and
relation replacements). WordNet's replacements would bring words this world does not have ("an orange site"),
which are trivially false; the world's are as hard as its test negatives."""


def _online_types(d: _Demo) -> list[str]:
    """Negative types the methods need beyond what the world provides (precomputed by the real pipeline)."""
    from fsc_clip.negatives import style_types

    types: list[str] = []
    for m in d.cfg.methods:
        for t in style_types(m.negatives) if m.negatives else []:
            if t not in WORLD_TYPES and t not in types:
                types.append(t)
    return types


def _stage_negatives(d: _Demo) -> Path | None:
    """One JSONL for the loader: the world's replacements + the remaining types precomputed by ``fsc-clip
    negatives``' pipeline (e.g. ``ngram_shuffle_2``, which only reorders the caption's own words)."""
    from fsc_clip.data.synthetic.world import LAYOUT
    from fsc_clip.negatives.precompute import PrecomputeConfig, precompute

    split = _finetune_split(d)
    if not any(m.negatives for m in d.cfg.methods):
        return None
    world_jsonl = d.world / LAYOUT["train_negatives"]
    types = _online_types(d)
    key = hashlib.sha256(world_jsonl.read_bytes() + split.read_bytes())
    key.update(f"{types}|{d.cfg.negatives_per_type}|{d.cfg.seed}".encode())
    merged = split.parent / f"negatives_world+{'_'.join(types) or 'none'}_{key.hexdigest()[:12]}.jsonl"
    if merged.exists():
        d.result.cached.append("negatives")
        d.log(f"negatives: reusing {merged}")
        return merged
    d.working = True
    parts = [world_jsonl.read_text(encoding="utf-8")]
    if types:
        online = split.parent / f"negatives_{'_'.join(types)}_k{d.cfg.negatives_per_type}.jsonl"
        pc = PrecomputeConfig(
            input=str(split),
            output=str(online),
            caption_column="title",
            style=",".join(types),
            per_type=d.cfg.negatives_per_type,
            seed=d.cfg.seed,
            workers=1,
            progress=d.progress,
        )
        d.log(f"negatives: {precompute(pc)} -> {online}")
        parts.append(online.read_text(encoding="utf-8"))
    write_text(merged, "".join(parts))
    return merged


def _stage_finetune(d: _Demo, base: Path, negatives: Path | None) -> dict[str, Path]:
    """Every method x seed, reused when done; the others trained side by side (``fsc_clip.demo.parallel``)."""
    split = d.out / "finetune" / "finetune_neg_clip.tsv"
    runs: dict[str, Path] = {}
    jobs: list[RunJob] = []
    for m in d.cfg.methods:
        for seed in range(d.cfg.seed, d.cfg.seed + d.cfg.seeds):
            name = run_name(m.name, seed - d.cfg.seed, seed)
            data = {"train_data": str(split), "image_root": str(d.world / "train"), "negatives": m.negatives,
                    "precomputed_negatives": str(negatives) if (m.negatives and negatives) else None,
                    "_rows": _finetune_rows(d.cfg)}  # fmt: skip
            tc = _train_config(d, name, d.cfg.finetune, data, m, str(base), seed)
            tc.logging.progress = False  # bars of runs side by side would overwrite each other: see _train_jobs
            runs[name] = d.out / "runs" / name
            if _needs_training(d, name, tc):
                d.log(f"--- fine-tuning {name} (loss {m.loss.get('loss_name')}, negatives {m.negatives}, "
                      f"{'LoRA r=' + str(m.lora_rank) if m.lora_rank else 'full'}, seed {seed}) ---")  # fmt: skip
                jobs.append(RunJob(name, tc, runs[name], d.cfg.finetune.steps))
    _train_jobs(d, jobs, len(runs))
    return runs


def _train_jobs(d: _Demo, jobs: list[RunJob], total: int) -> None:
    if not jobs:
        return
    workers = d.cfg.finetune_jobs or default_workers(len(jobs))
    reused = total - len(jobs)
    d.log(f"finetune: {len(jobs)} run(s), {min(workers, len(jobs))} at a time, one torch thread each")

    def poll(finished: list[RunJob], running: list[RunJob]) -> None:
        steps = {job.name: run_progress(job) for job in running}
        work = len(finished) + sum(min(steps[j.name] / max(j.total_steps, 1), 1.0) for j in running)
        item = ", ".join(f"{j.name} {steps[j.name]}/{j.total_steps}" for j in running)
        d.runs_progress((work, len(jobs)), reused + len(finished), total, item)

    train_side_by_side(jobs, workers, on_done=lambda job, sec: _mark_done(job.run_dir, sec), on_poll=poll,
                       poll_seconds=POLL_SECONDS if d.progress else None)  # fmt: skip


SEED_TAG = "@seed"


def run_name(method: str, k: int, seed: int) -> str:
    """``negclip`` for the first seed (so a one-seed demo keeps its names), ``negclip@seed1`` etc. after it."""
    return method if k == 0 else f"{method}{SEED_TAG}{seed}"


def seed_summary(rows: list[dict[str, Any]], columns: tuple[str, ...] = TABLE_COLUMNS) -> list[dict[str, Any]]:
    """Per method over its seed runs: ``{"model", "n", col: (mean, std)}`` (std with ddof=1; 0 for one seed).

    This is the spread over fine-tuning seeds (same world, same test items); the item intervals of each run are the
    other source of uncertainty (the paper's Table 8 reports both).
    """
    import statistics

    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(r["model"].split(SEED_TAG)[0], []).append(r)
    out = []
    for method, runs in groups.items():
        rec: dict[str, Any] = {"model": method, "n": len(runs)}
        for c in columns:
            vals = [r[c] for r in runs if r.get(c) is not None]
            rec[c] = (statistics.fmean(vals), statistics.stdev(vals) if len(vals) > 1 else 0.0) if vals else None
        out.append(rec)
    return out


def format_seed_table(summary: list[dict[str, Any]], columns: tuple[str, ...] = TABLE_COLUMNS) -> str:
    """``mean ± std (n seeds)`` per method and column."""
    width = max([len("model"), *(len(r["model"]) for r in summary)])
    head = f"{'model':<{width}}  {'n':>2}  " + "  ".join(f"{c.replace('synthetic_', ''):>13}" for c in columns)
    lines = [head, "-" * len(head)]
    for r in summary:
        cells = ("-" if r[c] is None else f"{r[c][0]:.1f} ± {r[c][1]:.1f}" for c in columns)
        lines.append(f"{r['model']:<{width}}  {r['n']:>2}  " + "  ".join(f"{v:>13}" for v in cells))
    return "\n".join(lines)


@lru_cache(maxsize=1)
def _named_spec_class() -> type:
    """A ``ModelSpec`` whose label is the demo's row name (by default a run's is ``<arch>/latest.pt``)."""
    from fsc_clip.models.factory import ModelSpec

    @dataclass
    class NamedSpec(ModelSpec):
        """The loaded model's spec with the demo's row name as its label (the result JSONs' ``model.label``)."""

        display: str = ""

        @property
        def label(self) -> str:
            return self.display

    return NamedSpec


def _checkpoint_stamp(run_dir: Path) -> str:
    st = (run_dir / "checkpoints" / "latest.pt").stat()
    return hashlib.sha256(f"{run_dir.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:16]


def _stage_evaluate(d: _Demo, models: dict[str, Path]) -> dict[str, Path]:
    from fsc_clip.evaluation.runner import evaluate
    from fsc_clip.models import load_model

    dirs: dict[str, Path] = {}
    for name, run_dir in models.items():
        d.step(len(dirs), len(models), name)
        out = d.out / "eval" / name
        stamp, expected = out / "checkpoint_stamp.txt", _checkpoint_stamp(run_dir)
        if out.exists() and (not stamp.exists() or stamp.read_text() != expected):
            shutil.rmtree(out)  # results of an older checkpoint
        done = all((out / f"{b}.json").exists() and (out / f"{b}.scores.npz").exists() for b in BENCHMARKS)
        if stamp.exists() and done:
            d.result.cached.append(f"eval:{name}")
            d.log(f"evaluate {name}: reusing {out}")
        else:
            d.log(f"--- evaluating {name} ---")
            d.working = True
            out.mkdir(parents=True, exist_ok=True)
            write_text(stamp, expected)
            lm = load_model(d.cfg.model, str(run_dir))
            lm.spec = _named_spec_class()(**lm.spec.to_dict(), display=f"{d.cfg.model}/{name}")
            evaluate(lm, list(BENCHMARKS), d.world, out, batch_size=d.cfg.eval_batch_size, progress=d.progress,
                     save_scores=True)  # per-item outcomes: the report's paired intervals vs the base  # fmt: skip
        dirs[name] = out
    return dirs


def report_dir(cfg: DemoConfig) -> str:
    """The study's report folder: ``report`` for ``methods``, ``report-<study>`` for any other."""
    return "report" if cfg.study.name == "methods" else f"report-{cfg.study.name}"


def _stage_report(d: _Demo, eval_dirs: dict[str, Path]) -> None:
    from fsc_clip.evaluation.report import build_report, write_report

    d.working = True
    study = d.cfg.study
    refs = [study.reference] if study.reference else []
    report = build_report(list(eval_dirs.values()), profile=PROFILE, baseline=BASE, references=refs)
    report.description = f"{report.description}. Study `{study.name}`: {study.description}".strip()
    published = published_table(d.cfg)
    if published:
        report.extra_tables.append(published)
    d.result.report_files = write_report(report, d.out / report_dir(d.cfg))
    d.result.rows = [
        {"model": r.name, **{c: r.columns.get(c) for c in report.columns},
         "ci": {c: r.ci.get(c) for c in report.columns}, "paired": {c: r.paired.get(c) for c in report.columns},
         "paired_ref": {c: p for c, p in report.paired_vs.get(study.reference or "", {}).get(r.name, {}).items()}}
        for r in report.rows
    ]  # fmt: skip


def loss_switches(method: MethodConfig) -> dict[str, bool]:
    """Which parts of the FSC-CLIP loss a method's built ``LossConfig`` turns on (``global``, ``local``, ``focal``,
    ``ls``): the ablation table's check marks, read from the configuration the trainer gets."""
    from fsc_clip.config import from_dict
    from fsc_clip.losses.config import LossConfig

    loss = from_dict(LossConfig, dict(method.loss))
    hn = loss.global_weight > 0 or loss.local_weight > 0
    return {"global": loss.global_weight > 0, "local": loss.local_weight > 0, "focal": hn and loss.gamma > 0,
            "ls": hn and bool(loss.neg_label_smoothing)}  # fmt: skip


SWITCH_COLUMNS = ("global", "local", "focal", "ls")


def published_table(cfg: DemoConfig) -> Any:
    """The study's published rows (e.g. the paper's Table 2) as a report table, or None if it has none."""
    from fsc_clip.evaluation.report import Table

    study = cfg.study
    if not study.published:
        return None
    heads = ("Comp", "ZS", "I2T", "T2I")
    rows = []
    for m in cfg.methods:
        pub = study.published.get(m.name)
        if pub:
            marks = ["✓" if on else "–" for on in loss_switches(m).values()]  # en dash: not a missing number
            rows.append([m.name, *marks, *(f"{pub[h]:.1f}" if h in pub else "-" for h in heads)])
    note = (f"Published numbers of the same loss configurations, for their direction only (another model, data "
            f"and benchmarks): {study.source}")  # fmt: skip
    return Table("Published rows of this study", ["run", *SWITCH_COLUMNS, *heads], rows, note)


# ----------------------------------------------------------------------------------------------- entry point


def format_table(
    rows: list[dict[str, Any]],
    columns: tuple[str, ...] = TABLE_COLUMNS,
    switches: dict[str, dict[str, bool]] | None = None,
    reference: str | None = None,
) -> str:
    """A plain-text table of the headline and compositional columns (``-`` for missing values).

    Rows with intervals show ``value ±half-width`` (95 % bootstrap over items); rows with a paired comparison to the
    base get a second line: ``+d [lo, hi]`` (paired 95 % interval; ``*`` when it excludes 0), and, with a
    ``reference`` run, a third line against it (``paired_ref``). ``switches``: per run, check-mark columns (the
    loss parts of an ablation) between the name and the values.
    """
    short = {c: c.replace("synthetic_", "") for c in columns}
    marks = list(next(iter((switches or {}).values()), {}))
    width = max([len("model"), len("  Δ base"), *(len(r["model"]) + 2 for r in rows)])
    if reference:
        width = max(width, len(f"  Δ {reference}"))
    cell, by_name = 20, {r["model"]: r for r in rows}
    head = (
        f"{'model':<{width}}  " + "".join(f"{m:>6}" for m in marks) + "  ".join(f"{short[c]:>{cell}}" for c in columns)
    )
    lines = [head, "-" * len(head)]
    pad = " " * (6 * len(marks))
    for r in rows:
        flags = "".join(f"{'✓' if on else '-':>6}" for on in (switches or {}).get(r["model"], {}).values())
        flags = flags or pad
        lines.append(f"{r['model']:<{width}}  {flags}" + "  ".join(f"{_value_cell(r, c):>{cell}}" for c in columns))
        for label, key, against in (("base", "paired", BASE), (reference, "paired_ref", reference)):
            if against and r["model"] != against and any((r.get(key) or {}).get(c) for c in columns):
                deltas = (_delta_cell(r, by_name.get(against), c, key) for c in columns)
                lines.append(f"{'  Δ ' + str(label):<{width}}  {pad}" + "  ".join(f"{v:>{cell}}" for v in deltas))
    return "\n".join(lines)


def _value_cell(row: dict[str, Any], col: str) -> str:
    value, ci = row.get(col), (row.get("ci") or {}).get(col)
    if value is None:
        return "-"
    return f"{value:.1f} ±{(ci[1] - ci[0]) / 2:.1f}" if ci else f"{value:.2f}"


def _delta_cell(row: dict[str, Any], base: dict[str, Any] | None, col: str, key: str = "paired") -> str:
    p = (row.get(key) or {}).get(col)
    if not p or base is None or row.get(col) is None or base.get(col) is None:
        return ""
    lo, hi = p["ci"]
    return f"{row[col] - base[col]:+.1f} [{lo:+.1f},{hi:+.1f}]{'*' if p['significant'] else ' '}"


def run_demo(
    cfg: DemoConfig,
    output: str | Path,
    progress: bool = True,
    log: Callable[[str], None] = print,
    from_scratch: bool = False,
) -> DemoResult:
    """Run (or resume) the whole demo under ``output``; see the module docstring for the stages and layout.

    Args:
        cfg: What to generate, train and compare (``fsc_clip.demo.demo_config`` gives the presets).
        output: Demo folder; reused stages are skipped.
        progress: Show progress bars.
        log: Where stage messages go.
        from_scratch: Re-train the pre-trained base even if this folder or the shared cache has one.

    Returns:
        The :class:`DemoResult` (report paths, per-stage timings, the table rows).
    """
    import yaml

    out = Path(output).expanduser().resolve()
    ensure_writable_dir(out, "demo output folder")  # before any work
    write_text(out / "demo_config.yaml", yaml.safe_dump(to_dict(cfg), sort_keys=False))
    d = _Demo(cfg, out, progress, log, from_scratch)
    d.stage("world", lambda: _stage_world(d))
    base = d.stage("pretrain", lambda: _stage_pretrain(d, from_scratch))
    negatives = d.stage("negatives", lambda: _stage_negatives(d))
    runs = d.stage("finetune", lambda: _stage_finetune(d, base, negatives))
    eval_dirs = d.stage("evaluate", lambda: _stage_evaluate(d, {BASE: base, **runs}))
    d.stage("report", lambda: _stage_report(d, eval_dirs))
    d.result.timings["total"] = round(time.perf_counter() - d.t0, 1)
    return d.result
