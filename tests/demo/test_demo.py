"""``fsc-clip demo``: presets and studies, the progress line and ``timings.json``, and the quick demo end to end
through the CLI (slow), resumed from its cache, then the quick loss ablation in the same folder."""

from __future__ import annotations

import csv
import json
import re
import sys
import time
from pathlib import Path

import pytest
import torch

from fsc_clip.config import ConfigError
from fsc_clip.demo import demo_config, format_table

sys.path.insert(0, str(Path(__file__).parents[1] / "losses"))

from loss_inputs import make_inputs
from loss_naive_reference import naive_clip, naive_global, naive_local

# The paper's Table 2 (FSC-CLIP, arXiv 2410.05210v1), written out by hand and independently of studies.yaml:
# row -> (global HN loss, local HN loss, focal loss, label smoothing).
TABLE2 = {
    1: (True, False, False, False),
    2: (False, True, False, False),
    3: (True, True, False, False),
    4: (True, True, True, False),
    5: (True, True, False, True),
    6: (True, True, True, True),
    7: (True, False, True, True),
    8: (False, True, True, True),
}


def test_presets_and_overrides():
    full, quick = demo_config(), demo_config(quick=True, seed=3, overrides=["finetune.steps=5"])
    assert quick.world.n_train < full.world.n_train and quick.pretrain.steps < full.pretrain.steps
    assert quick.seed == quick.world.seed == 3 and quick.finetune.steps == 5
    assert [m.name for m in full.methods] == ["clip-ft", "negclip", "fsc-clip", "fsc-clip-lora"]
    assert full.methods[3].lora_rank > 0 and full.methods[2].loss["loss_name"] == "fsc-clip"
    assert full.methods[3].lr_mult == 10.0  # the paper's LoRA learning rate: 10x full fine-tuning (METHOD.md)
    assert {m.lr_mult for m in full.methods[:3]} == {1.0} and full.finetune_jobs == 0  # 0: one run per core
    with pytest.raises(ConfigError):
        demo_config(overrides=["pretrain.steps=0"])
    with pytest.raises(ConfigError, match="finetune_jobs"):
        demo_config(overrides=["finetune_jobs=-1"])


def test_format_table_marks_missing_values_and_shows_paired_intervals():
    text = format_table([{"model": "base", "Comp": 50.0, "ZS": None}], ("Comp", "ZS"))
    lines = text.splitlines()
    assert lines[0].split() == ["model", "Comp", "ZS"]
    assert lines[2].split() == ["base", "50.00", "-"]
    rows = [
        {"model": "base", "Comp": 50.0, "ci": {"Comp": [48.0, 52.0]}},
        {"model": "negclip", "Comp": 61.5, "ci": {"Comp": [59.0, 64.0]},
         "paired": {"Comp": {"ci": [9.0, 14.0], "significant": True}}},
    ]  # fmt: skip
    lines = format_table(rows, ("Comp",)).splitlines()
    assert lines[2].split() == ["base", "50.0", "±2.0"]
    assert lines[3].split() == ["negclip", "61.5", "±2.5"]
    assert lines[4].split() == ["Δ", "base", "+11.5", "[+9.0,+14.0]*"]


def test_studies_are_registered_and_an_unknown_one_names_the_choices():
    from fsc_clip.demo import STUDIES
    from fsc_clip.registry import UnknownNameError

    assert {"methods", "ablation"} <= set(STUDIES.names())
    assert demo_config().study.name == "methods" and demo_config().study.reference == "clip-ft"  # plain fine-tuning
    with pytest.raises(UnknownNameError, match="ablation"):
        demo_config(study="ablations")


def test_ablation_is_the_papers_eight_rows_on_the_same_world_base_and_recipe():
    methods, ablation = demo_config(quick=True), demo_config(quick=True, study="ablation")
    assert ablation.world == methods.world and ablation.pretrain == methods.pretrain  # the same base
    assert ablation.finetune == methods.finetune and ablation.finetune_rows == methods.finetune_rows  # one recipe
    template = next(m for m in methods.methods if m.name == "fsc-clip")
    assert len(ablation.methods) == 8 and ablation.study.name == "ablation"
    for m in ablation.methods:  # everything but the loss switches is the fsc-clip method's
        assert (m.negatives, m.lora_rank, m.lr_mult) == (template.negatives, template.lora_rank, template.lr_mult)
    assert ablation.study.reference == ablation.methods[0].name  # row 1: the global hard-negative loss alone
    assert set(ablation.study.published) == {m.name for m in ablation.methods}
    assert ablation.study.published[ablation.methods[5].name] == {"Comp": 53.5, "ZS": 55.3, "I2T": 58.2, "T2I": 55.5}


@pytest.mark.parametrize("row", sorted(TABLE2))
def test_ablation_row_builds_the_loss_of_the_papers_row(row):
    """Each row's built loss module computes exactly the terms of its Table 2 settings (naive float64 reference)."""
    from fsc_clip.config import from_dict
    from fsc_clip.demo.pipeline import loss_switches
    from fsc_clip.losses import build_loss
    from fsc_clip.losses.config import LossConfig

    glob, local, focal, smoothing = TABLE2[row]
    method = demo_config(study="ablation").methods[row - 1]
    cfg = from_dict(LossConfig, dict(method.loss))
    loss = build_loss(cfg)
    assert loss.global_weight == (0.5 if glob else 0.0) and loss.local_weight == (0.2 if local else 0.0)
    assert loss.gamma == (2.0 if focal else 0.0) and loss.label_smoothing == (0.02 if smoothing else None)
    assert loss.needs_dense == local and loss.needs_negatives and not loss.negclip
    assert loss_switches(method) == dict(zip(("global", "local", "focal", "ls"), TABLE2[row]))

    x = make_inputs(seed=row)
    terms = loss(**x)
    assert set(terms) == {"clip_loss"} | ({"global_hn_loss"} if glob else set()) | (
        {"local_hn_loss"} if local else set()
    )
    gamma, eps, scale = 2.0 if focal else 0.0, 0.02 if smoothing else 0.0, x["logit_scale"]
    feats = (x["image_features"], x["text_features"])
    torch_close = lambda a, b: abs(float(a.detach()) - float(b.detach())) < 1e-9  # noqa: E731
    assert torch_close(terms["clip_loss"], naive_clip(*feats, scale))  # positives only: no NegCLIP columns
    if glob:
        expected = 0.5 * naive_global(*feats, x["neg_text_features"], x["neg_mask"], scale, gamma, eps)
        assert torch_close(terms["global_hn_loss"], expected)
    if local:
        tokens = (x["image_tokens"], x["text_tokens"], x["text_mask"], x["neg_text_tokens"], x["neg_text_mask"])
        expected = 0.2 * naive_local(*tokens, x["neg_mask"], scale, gamma, eps, "minmax", False)
        assert torch_close(terms["local_hn_loss"], expected)


def test_ablation_template_without_hard_negative_losses_is_an_error(monkeypatch):
    from fsc_clip.demo import config as demo_cfg

    presets = demo_cfg._presets()
    for m in presets["full"]["methods"]:
        if m["name"] == "fsc-clip":
            m["loss"] = {"loss_name": "clip"}
    monkeypatch.setattr(demo_cfg, "_presets", lambda: presets)
    with pytest.raises(ConfigError, match="no separate global / local hard-negative losses"):
        demo_config(study="ablation")


def test_format_table_with_switches_and_a_reference_line():
    rows = [
        {"model": "base", "Comp": 50.0, "ci": {"Comp": [48.0, 52.0]}},
        {"model": "r1", "Comp": 55.0, "paired": {"Comp": {"ci": [3.0, 7.0], "significant": True}}},
        {"model": "r2", "Comp": 54.0, "paired": {"Comp": {"ci": [2.0, 6.0], "significant": True}},
         "paired_ref": {"Comp": {"ci": [-2.5, 0.5], "significant": False}}},
    ]  # fmt: skip
    switches = {"r1": {"global": True, "ls": False}, "r2": {"global": False, "ls": True}}
    lines = format_table(rows, ("Comp",), switches, reference="r1").splitlines()
    assert lines[0].split() == ["model", "global", "ls", "Comp"]
    assert lines[3].split() == ["r1", "✓", "-", "55.00"] and lines[5].split() == ["r2", "-", "✓", "54.00"]
    assert lines[6].split() == ["Δ", "base", "+4.0", "[+2.0,+6.0]*"]
    assert lines[7].split() == ["Δ", "r1", "-1.0", "[-2.5,+0.5]"]


def _fake_invocation(cfg, out, work: bool, log) -> dict:
    """One demo invocation through the real stage bookkeeping (``_Demo.stage``), each stage either doing work
    (0.15 s) or reusing its outputs (instant), as a real cached re-run does."""
    from fsc_clip.demo.pipeline import STAGES, _Demo

    d = _Demo(cfg, out, progress=False, log=log)
    eta_at_start = d.eta()

    def body(name):
        if work or name == "report":
            d.working = True
            time.sleep(0.15)
        else:
            d.result.cached.append(name)

    for name in STAGES:
        d.stage(name, lambda name=name: body(name))
    return {"eta_at_start": eta_at_start, "result": d.result}


def test_timings_history_keeps_the_run_that_did_the_work_and_feeds_the_eta(tmp_path, monkeypatch):
    monkeypatch.setenv("FSC_CLIP_CACHE_DIR", str(tmp_path / "cache"))  # no shared base: pretrain is expected
    cfg, out, lines = demo_config(quick=True), tmp_path / "demo", []
    first = _fake_invocation(cfg, out, work=True, log=lines.append)
    assert first["eta_at_start"] is None  # nothing recorded and nothing measured yet
    saved = json.loads((out / "timings.json").read_text())
    assert saved["last_full_run"] == saved["invocations"][0] and saved["invocations"][0]["complete"]

    second = _fake_invocation(cfg, out, work=False, log=lines.append)  # the cached re-run
    timings = json.loads((out / "timings.json").read_text())
    assert timings["invocations"][0] == saved["invocations"][0]  # the earlier timings are kept, unchanged
    assert len(timings["invocations"]) == 2 and timings["last_full_run"] == saved["invocations"][0]
    assert set(timings["invocations"][1]["reused_stages"]) == {"world", "pretrain", "negatives", "finetune", "evaluate"}
    recorded = sum(v for k, v in saved["invocations"][0]["timings_s"].items() if k != "total")
    assert second["eta_at_start"] == pytest.approx(recorded)  # the ETA reads the recorded stage times

    third = _fake_invocation(demo_config(quick=True, seed=5), out, work=True, log=lines.append)  # other settings
    assert third["eta_at_start"] is not None  # estimated from the recorded speed of the last run that did work
    assert len(json.loads((out / "timings.json").read_text())["invocations"]) == 3


def test_progress_is_one_line_per_update_with_stage_elapsed_and_eta(tmp_path, monkeypatch):
    from fsc_clip.demo.pipeline import STAGES, _Demo

    monkeypatch.setenv("FSC_CLIP_CACHE_DIR", str(tmp_path / "cache"))
    lines: list[str] = []
    d = _Demo(demo_config(quick=True), tmp_path / "demo", progress=False, log=lines.append)

    def work(items: tuple[str, ...] = ()):
        d.working = True
        for k, name in enumerate(items):
            d.step(k, len(items), name)
            time.sleep(0.3)
        time.sleep(0.2)

    for name in STAGES:
        d.stage(name, lambda name=name: work(("clip-ft", "negclip") if name == "finetune" else ()))
    pattern = re.compile(
        r"\[demo (\d)/6 (\w+)(?: (\d)/(\d) (\S+))?\] "
        r"(?:done in \d+\.\d s; )?elapsed \dm\d\ds, "
        r"(?:ETA ~\dm\d\ds|ETA: after the first stage that does work|finished)"
    )
    assert all("\n" not in line and pattern.fullmatch(line) for line in lines), lines
    assert len(lines) == 2 * len(STAGES) + 2  # a start and an end line per stage, one line per fine-tuning run
    steps = [pattern.fullmatch(line).groups()[2:] for line in lines if pattern.fullmatch(line).group(3)]
    assert steps == [("1", "2", "clip-ft"), ("2", "2", "negclip")]
    assert "ETA ~" in lines[1] and "ETA ~" in lines[2]  # once a stage did work, the ETA is known
    assert lines[-1].endswith("finished")

    d.current = "finetune"  # runs trained side by side: runs done and each running run's last step
    d.runs_progress((1.5, 4), 1, 4, "negclip 120/400, fsc-clip 80/400")
    d.runs_progress((4, 4), 4, 4, "")
    assert re.fullmatch(r"\[demo 4/6 finetune 1/4 done; negclip 120/400, fsc-clip 80/400\] elapsed \dm\d\ds, "
                        r"ETA ~\dm\d\ds", lines[-2]), lines[-2]  # fmt: skip
    assert lines[-1].startswith("[demo 4/6 finetune 4/4 done] elapsed")


def test_quick_preset_says_smoke_test():
    from fsc_clip.cli.demo import SMOKE_TEST

    assert "smoke test" in SMOKE_TEST


@pytest.mark.slow
def test_quick_demo_end_to_end_then_cached_then_the_ablation(tmp_path, capsys, monkeypatch):
    from fsc_clip.cli.main import main
    from fsc_clip.demo import run_demo
    from fsc_clip.demo.pipeline import base_cache_dir

    monkeypatch.setenv("FSC_CLIP_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--output", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert "smoke test" in printed[0] and "smoke test" in "\n".join(printed[-6:])
    assert (base_cache_dir(demo_config(quick=True)) / "demo_done.json").is_file()  # the base is shared
    report = out / "report"
    for name in ("summary.csv", "subscores.csv", "report.md", "report.html", "plots/comp_vs_zs.png"):
        assert (report / name).is_file(), name
    assert str(report / "report.html") in printed[-2]
    assert (out / "eval" / "negclip" / "synthetic_aro.scores.npz").is_file()  # per-item outcomes: paired intervals
    deltas = [line.split()[1] for line in printed if line.lstrip().startswith("Δ")]
    assert deltas == ["base", "base", "clip-ft", "base", "clip-ft", "base", "clip-ft"]  # each run vs base and clip-ft
    first = json.loads((out / "timings.json").read_text())
    with (report / "summary.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["run"] for r in rows] == ["base", "clip-ft", "negclip", "fsc-clip", "fsc-clip-lora"]
    assert [r["model"] for r in rows] == [f"fsc-demo/{r['run']}" for r in rows]
    for r in rows:
        for col in ("Comp", "ZS", "I2T", "T2I"):
            assert 0.0 <= float(r[col]) <= 100.0, (r["run"], col)
    assert all(r["delta_Comp_vs_clip-ft_ci_lo"] != "" for r in rows[2:])  # the hard-negative runs vs plain fine-tuning

    again = run_demo(demo_config(quick=True), out, progress=False, log=lambda _msg: None)
    expected = {"world", "base", "negatives", "clip-ft", "negclip", "fsc-clip", "fsc-clip-lora"}
    assert expected | {f"eval:{r['run']}" for r in rows} <= set(again.cached)
    assert [r["model"] for r in again.rows] == [r["run"] for r in rows]
    timings = json.loads((out / "timings.json").read_text())
    assert timings["invocations"][0] == first["invocations"][0]  # the cached re-run keeps the run that did the work
    assert len(timings["invocations"]) == 2 and timings["last_full_run"] == first["invocations"][0]
    assert timings["invocations"][1]["timings_s"]["finetune"] < 1.0

    other = tmp_path / "other"  # another folder reuses the shared base instead of pre-training again
    third = run_demo(demo_config(quick=True), other, progress=False, log=lambda _msg: None)
    assert "base:shared" in third.cached and "clip-ft" not in third.cached
    _check_from_scratch_trains_in_a_new_folder(other, out, tmp_path)

    _check_a_packed_base_gives_the_same_runs(out, third, tmp_path, monkeypatch)

    capsys.readouterr()  # the loss ablation in the first folder: same world and base, its own runs and report
    assert main(["demo", "--quick", "--study", "ablation", "--output", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    ablation = demo_config(quick=True, study="ablation")
    names = [m.name for m in ablation.methods]
    report = out / "report-ablation"
    for name in ("summary.csv", "report.md", "report.html", "plots/comp_vs_zs.png", "plots/paired.png"):
        assert (report / name).is_file(), name
    with (report / "summary.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["run"] for r in rows] == ["base", *names]
    assert all(r["delta_Comp_ci_lo"] != "" for r in rows[1:])  # paired intervals vs the base ...
    assert all(r[f"delta_Comp_vs_{names[0]}_ci_lo"] != "" for r in rows[2:])  # ... and vs the reference row
    table = printed[printed.index("model ") :].splitlines()
    assert table[0].split()[:5] == ["model", "global", "local", "focal", "ls"]
    row3 = next(line for line in table if line.startswith(names[2]))
    assert row3.split()[1:5] == ["✓", "✓", "-", "-"]
    html = (report / "report.html").read_text()
    assert f"Paired comparison vs {names[0]}" in html and "Published rows of this study" in html
    timings = json.loads((out / "timings.json").read_text())
    assert timings["invocations"][-1]["study"] == "ablation" and "world" in timings["invocations"][-1]["reused_stages"]


def _check_from_scratch_trains_in_a_new_folder(other, trained, tmp_path):
    """``--from-scratch`` pre-trains even in a folder without a base while the shared cache holds one (it used to
    copy the cached base there), and trains the same weights as the first folder's pre-training did."""
    import shutil

    from fsc_clip.demo.pipeline import _Demo, _stage_pretrain
    from fsc_clip.models.checkpoint import read_checkpoint

    scratch = tmp_path / "scratch"
    shutil.copytree(other / "world", scratch / "world")  # pre-training needs only the world
    d = _Demo(demo_config(quick=True), scratch, False, lambda _msg: None, from_scratch=True)
    base = _stage_pretrain(d, from_scratch=True)
    assert not [c for c in d.result.cached if c.startswith("base")]
    ours, first = read_checkpoint(base).state_dict, read_checkpoint(trained / "runs" / "base").state_dict
    assert ours.keys() == first.keys() and all(torch.equal(ours[k], first[k]) for k in first)


def _check_a_packed_base_gives_the_same_runs(out, reference, tmp_path, monkeypatch):
    """Pack the quick demo's base as the package would ship it, start a fresh cache and folder from it: the base
    keeps every tensor but unused embedding rows, and every run fine-tuned from it scores exactly the same."""
    import fsc_clip.demo.shipped as shipped
    from fsc_clip.demo import run_demo
    from fsc_clip.demo.pipeline import base_cache_dir
    from fsc_clip.models.checkpoint import read_checkpoint

    cfg = demo_config(quick=True)
    packed = tmp_path / "packed.safetensors"
    key = base_cache_dir(cfg).name.removeprefix("base-")
    info = shipped.pack_base(out / "runs" / "base", [out / "world", out / "finetune"], packed, key)
    assert 0 < info["rows"] < 5000 and info["bytes"] < 5_000_000  # the world's words and their replacements, not 49,408
    monkeypatch.setattr(shipped, "shipped_base", lambda: packed)
    monkeypatch.setenv("FSC_CLIP_CACHE_DIR", str(tmp_path / "fresh-cache"))
    fresh = run_demo(cfg, tmp_path / "from-shipped", progress=False, log=lambda _msg: None)
    assert "base:shipped" in fresh.cached and (base_cache_dir(cfg) / "demo_done.json").is_file()
    original = read_checkpoint(out / "runs" / "base").state_dict
    unpacked = read_checkpoint(tmp_path / "from-shipped" / "runs" / "base").state_dict
    emb, emb0 = unpacked["token_embedding.weight"], original["token_embedding.weight"]
    kept = emb.abs().sum(dim=1) > 0
    assert int(kept.sum()) == info["rows"] and torch.equal(emb[kept], emb0[kept]) and not emb[~kept].any()
    assert all(torch.equal(unpacked[k], v) for k, v in original.items() if k != "token_embedding.weight")
    columns = ("Comp", "ZS", "I2T", "T2I", "synthetic_sugarcrepe", "synthetic_winoground", "synthetic_aro")
    assert [[r[c] for c in columns] for r in fresh.rows] == [[r[c] for c in columns] for r in reference.rows]

    # A folder whose base was trained with other settings (here: an earlier fsc-demo architecture, as after an
    # upgrade) takes the shared (here: unpacked shipped) base instead of pre-training again, keeping nothing stale.
    stale = tmp_path / "from-shipped" / "runs" / "base"
    settings = json.loads((stale / "demo_settings.json").read_text())
    settings["architecture"]["text_cfg"]["layers"] += 1
    (stale / "demo_settings.json").write_text(json.dumps(settings, sort_keys=True, default=str))
    (stale / "checkpoints" / "stale.pt").write_bytes(b"left by the earlier base")
    log: list[str] = []
    again = run_demo(cfg, tmp_path / "from-shipped", progress=False, log=log.append)
    assert "base:shipped" in again.cached and any("replacing" in m and "other settings" in m for m in log)
    assert not (stale / "checkpoints" / "stale.pt").exists()
    assert torch.equal(read_checkpoint(stale).state_dict["token_embedding.weight"], emb)
    assert [[r[c] for c in columns] for r in again.rows] == [[r[c] for c in columns] for r in reference.rows]


def test_shipped_base_is_the_default_presets_and_unpacks(tmp_path):
    """The package's base stands for the default preset's base key (rebuild it with benchmarks/pack_demo_base.py
    after changing the world or the pre-training preset), and unpacks to a loadable, finished run folder."""
    from fsc_clip.demo.pipeline import base_cache_dir
    from fsc_clip.demo.shipped import shipped_base, shipped_key, unpack_base
    from fsc_clip.models import load_model

    path = shipped_base()
    assert path is not None and path.stat().st_size < 5_000_000  # a few MB of package data (3.8 MB)
    assert f"base-{shipped_key(path)}" == base_cache_dir(demo_config()).name, "rebuild: benchmarks/pack_demo_base.py"
    unpack_base(path, tmp_path / "base")
    assert json.loads((tmp_path / "base" / "demo_done.json").read_text())["shipped"] == path.name
    lm = load_model("fsc-demo", str(tmp_path / "base"))
    tokens = lm.tokenizer(["a small red circle to the left of a blue square"])
    assert torch.isfinite(lm.model.encode_text(tokens)).all()


def test_a_damaged_shipped_base_is_a_clear_error(tmp_path):
    from fsc_clip.demo.shipped import unpack_base
    from fsc_clip.errors import ModelLoadError

    bad = tmp_path / "demo-base.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(ModelLoadError, match=r"demo-base\.safetensors.*--from-scratch"):
        unpack_base(bad, tmp_path / "base")


def test_seed_runs_are_named_and_summarised_as_mean_and_std():
    from fsc_clip.demo.pipeline import format_seed_table, run_name, seed_summary

    assert [run_name("negclip", k, 3 + k) for k in range(3)] == ["negclip", "negclip@seed4", "negclip@seed5"]
    rows = [
        {"model": "base", "Comp": 40.0},
        {"model": "negclip", "Comp": 50.0},
        {"model": "negclip@seed1", "Comp": 54.0},
        {"model": "negclip@seed2", "Comp": None},
    ]
    summary = seed_summary(rows, ("Comp",))
    assert summary[0] == {"model": "base", "n": 1, "Comp": (40.0, 0.0)}
    assert summary[1]["n"] == 3 and summary[1]["Comp"] == (52.0, pytest.approx(2.0**1.5))  # stdev([50, 54]) = 2.83
    assert "52.0 ± 2.8" in format_seed_table(summary, ("Comp",))
    with pytest.raises(ConfigError):
        demo_config(overrides=["seeds=0"])


def test_eta_of_an_unrecorded_stage_under_way_follows_its_own_pace(tmp_path, monkeypatch):
    from fsc_clip.demo.pipeline import _Demo

    monkeypatch.setenv("FSC_CLIP_CACHE_DIR", str(tmp_path / "cache"))
    d = _Demo(demo_config(quick=True), tmp_path / "demo", progress=False, log=lambda _msg: None)
    d.current, d.stage_t0 = "report", time.perf_counter() - 2.0  # the last stage: nothing after it
    d.part = (0.05, 4)  # under a tenth done: no pace yet, and no recorded time nor measured speed
    assert d.eta() is None
    d.part = (1, 4)  # a quarter done in 2 s: three quarters left take about 6 s
    assert d.eta() == pytest.approx(6.0, abs=0.2)


def test_the_architecture_is_part_of_the_base_key_and_the_run_stamp(monkeypatch):
    """A base or run trained with an earlier version of an architecture (``fsc-demo`` had three text layers) is
    never reused: the cache key of the base and the settings stamp of every run hold the open_clip config."""
    import copy

    import open_clip

    from fsc_clip.demo.pipeline import _fingerprint, base_cache_dir
    from fsc_clip.models.configs import register_model_configs
    from fsc_clip.training.config import TrainConfig

    register_model_configs()
    run = TrainConfig()
    run.model.name = "fsc-demo"
    key, stamp = base_cache_dir(demo_config()).name, _fingerprint(run)
    assert json.loads(stamp)["architecture"]["text_cfg"]["layers"] == 2
    assert (base_cache_dir(demo_config()).name, _fingerprint(run)) == (key, stamp)  # deterministic

    three_layers = copy.deepcopy(open_clip.get_model_config("fsc-demo"))
    three_layers["text_cfg"]["layers"] = 3
    monkeypatch.setitem(open_clip.factory._MODEL_CONFIGS, "fsc-demo", three_layers)
    assert base_cache_dir(demo_config()).name != key
    assert _fingerprint(run) != stamp
