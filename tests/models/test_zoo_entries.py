"""Every zoo entry's metadata: fields present and well-formed, its published rows found, QuickGELU consistent
with the weights it was fine-tuned from, and the 12 released FSC-CLIP checkpoints all listed."""

from __future__ import annotations

import re

import open_clip
import pytest
import yaml

from fsc_clip.errors import ModelLoadError
from fsc_clip.models.zoo import ZOO, entry_from_dict, get_entry, list_zoo, list_zoo_lines, published_rows
from fsc_clip.models.zoo.formats import FORMATS

ENTRIES = list_zoo()
NAMES = [e.name for e in ENTRIES]
LORA_FORMATS = {"fsc_lora", "dac_lora"}


def test_required_models_present():
    required = {"negclip", "ce-clip", "gnm-clip", "tsvlc-rb", "tsvlc-rb-llm", "dac-llm", "dac-sam", "clove"}
    required |= {"clic-vit-b-32-cogvlm", "read-clip", "degla"}
    assert required <= set(NAMES)
    fsc = [e for e in ENTRIES if e.paper == "fsc-clip"]
    # ytaek-oh/fsc-clip README "Available Models": 6 (data, arch) settings, full and LoRA each
    assert len(fsc) == 12
    files = {e.source.filename for e in fsc}
    for data, arch in [
        ("coco", "ViT-B-32"),
        ("cc3m", "ViT-B-32"),
        ("laioncoco", "ViT-B-32"),
        ("laioncoco", "ViT-B-16"),
        ("laioncoco", "ViT-L-14"),
        ("dcxl", "ViT-B-32"),
    ]:
        assert {f"{data}_fsc-clip-{arch}.pt", f"{data}_fsc-clip-lora-{arch}.pt"} <= files


@pytest.mark.parametrize("entry", ENTRIES, ids=NAMES)
def test_entry_fields(entry):
    assert entry.name == entry.name.lower() and re.fullmatch(r"[a-z0-9][a-z0-9.-]*", entry.name)
    assert entry.architecture in open_clip.list_models()
    assert entry.format in FORMATS
    assert re.fullmatch(r"[0-9a-f]{40}", entry.code["commit"]) and "/" in entry.code["repo"]
    src = entry.source
    assert src.hf_repo or src.url or src.gdrive_id or src.gdrive_folder, "no location at all"
    assert src.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", src.sha256)
    if src.filename is None or src.sha256 is None:
        assert entry.notes, "an unknown fact must be explained in notes"
    assert (entry.lora is not None) == (entry.format in LORA_FORMATS)
    assert (entry.patching is not None) == (entry.format == "clove_patch")
    assert 0 < entry.context_length <= 77


@pytest.mark.parametrize("entry", ENTRIES, ids=NAMES)
def test_quick_gelu_consistent_with_base(entry):
    """Fine-tunes of OpenAI CLIP run with QuickGELU; others with the activation of their base tag."""
    if entry.base == "openai":
        assert entry.quick_gelu
    else:
        cfg = open_clip.get_pretrained_cfg(entry.architecture, entry.base)
        assert cfg, f"{entry.base} is not an open_clip tag of {entry.architecture}"
        assert entry.quick_gelu == bool(cfg.get("quick_gelu", False))


@pytest.mark.parametrize("entry", ENTRIES, ids=NAMES)
def test_published_rows_found(entry):
    rows = published_rows(entry)
    if not rows:
        assert "No published row" in entry.notes
    for ref, row in rows:
        comp = row.get("Comp") or row.get("comp_avg")
        assert comp and 0 < float(comp) < 100, f"{ref.table}: no composite score"


def test_paper_numbers_of_known_rows():
    """Spot checks against the sources: FSC-CLIP README table and the paper's Table 1."""
    rows = dict((ref.table, row) for ref, row in published_rows(get_entry("fsc-clip-lora-laioncoco-vit-l-14")))
    assert round(float(rows["fsc_clip_extended_results.csv"]["Comp"]), 1) == 56.2  # README: 56.2 / 62.2
    assert round(float(rows["fsc_clip_extended_results.csv"]["ZS"]), 1) == 62.2
    rows = dict((ref.table, row) for ref, row in published_rows(get_entry("clove")))
    assert rows["fsc_clip_paper_table1.csv"]["Comp"] == "51.6"


def test_unknown_name_suggests():
    with pytest.raises(ModelLoadError, match="Did you mean: negclip"):
        get_entry("negclp")
    assert get_entry("NegCLIP").name == "negclip"


def test_bad_entry_names_field():
    with pytest.raises(ModelLoadError, match=r"'broken'.*format"):
        entry_from_dict({"name": "broken", "paper": "x"})
    raw = yaml.safe_load("name: b\npaper: p\narchitecture: A\nbase: openai\nsource: {nope: 1}\nformat: open_clip\n"
                         "quick_gelu: true\ncontext_length: 77\ncode: {repo: a/b, commit: c}")  # fmt: skip
    with pytest.raises(ModelLoadError, match="malformed"):
        entry_from_dict(raw)


def test_list_lines():
    lines = list_zoo_lines()
    assert len(lines) == 2 + len(ZOO)
    assert any(line.startswith("clove ") and "clove_patch" in line for line in lines)


def test_cli_list_models_zoo(capsys):
    from fsc_clip.cli.main import main

    assert main(["list", "models", "--zoo"]) == 0
    out = capsys.readouterr().out
    assert "negclip" in out and "hf:ytaek-oh/fsc-clip" in out and "clove_patch" in out


def test_cli_eval_accepts_zoo_name_without_pretrained(tmp_path, monkeypatch, capsys):
    """`fsc-clip eval --model negclip` needs no --pretrained: the zoo knows the weights (absent here: says where)."""
    from fsc_clip.cli.main import main

    monkeypatch.setenv("FSC_CLIP_CACHE_DIR", str(tmp_path / "cache"))
    argv = ["eval", "--model", "negclip", "--benchmarks", "sugarcrepe", "--data-root", str(tmp_path)]
    assert main([*argv, "--output", str(tmp_path / "out"), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "cache" / "zoo" / "negclip" / "negclip.pth") in err and "--pretrained TAG" not in err


def test_vl_compo_subset_matches_full_table():
    """The 11-row vl_compo table used by reports is an exact subset of the shipped 202-row table."""
    import csv
    from pathlib import Path

    folder = Path(__file__).resolve().parents[2] / "src" / "fsc_clip" / "resources" / "published"
    for name in ("vl_compo_results", "vl_compo_individual_results"):
        with open(folder / f"{name}_full.csv", encoding="utf-8") as handle:
            full = list(csv.DictReader(handle))
        with open(folder / f"{name}.csv", encoding="utf-8") as handle:
            subset = list(csv.DictReader(handle))
        assert len(full) == 202 and len(subset) == 11
        index = {(r["arch"], r["pretrained"]): r for r in full}
        for row in subset:
            ref = index[(row["arch"], row["pretrained"])]
            for key, value in row.items():
                assert ref[key] == value or float(ref[key]) == pytest.approx(float(value)), (name, key)
