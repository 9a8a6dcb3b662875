"""``fsc-clip report --published`` beside a zoo model's published rows, and ``fsc-clip eval --download``.

A tiny model is written the way NegCLIP's source writes its checkpoint (an open_clip training checkpoint:
``{"epoch", "name", "state_dict" with DDP 'module.' keys, "optimizer"}``), registered as a zoo entry that carries
NegCLIP's published references, evaluated on a SugarCrepe fixture through the CLI; the report must show NegCLIP's
published rows beside ours with ``ours - published``, recomputed here from the result JSON and the raw CSVs.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import http.server
import io
import json
import threading
import time
from pathlib import Path

import numpy as np
import open_clip
import pytest
import torch
from PIL import Image

from fsc_clip.cli.main import main
from fsc_clip.models.configs import register_model_configs
from fsc_clip.models.zoo import ZOO, ZooSource, get_entry

PUBLISHED = Path(__file__).resolve().parents[2] / "src" / "fsc_clip" / "resources" / "published"
# SugarCrepe subset sizes as published (Hsieh et al. 2023): the benchmark column is the mean of the replace / swap /
# add categories, each pooled over its subsets' examples (as vl_compo and the FSC-CLIP tables report it).
SUGARCREPE_SIZES = {"replace_obj": 1652, "replace_att": 788, "replace_rel": 1406, "swap_obj": 245,
                    "swap_att": 666, "add_obj": 2062, "add_att": 692}  # fmt: skip
SUGARCREPE_CATEGORIES = (
    ("replace_obj", "replace_att", "replace_rel"),
    ("swap_obj", "swap_att"),
    ("add_obj", "add_att"),
)
NAME = "tiny-zoo-report"


def _pooled(scores: dict[str, float], subsets: tuple[str, ...]) -> float:
    total = sum(SUGARCREPE_SIZES[s] for s in subsets)
    return sum(SUGARCREPE_SIZES[s] * scores[f"sugarcrepe::{s}"] for s in subsets) / total


WORDS = ("dog", "cat", "red", "blue", "table", "grass", "car", "tree", "small", "large", "under", "beside")


def write_sugarcrepe(root: Path, n: int = 6) -> None:
    """SugarCrepe's layout (RAIVNLab/sugar-crepe @ 0047054b243992f0fad63d6f64f7544862daf846): ``data/<subset>.json``
    = ``{id: {filename, caption, negative_caption}}`` over COCO ``val2017/`` images. Captions vary per item so a
    random model scores differently per subset (not all 0 or 100), which makes the pooled column a real check."""
    rng = np.random.default_rng(3)
    d = root / "sugarcrepe"
    (d / "val2017").mkdir(parents=True)
    (d / "data").mkdir()
    for k in range(4):
        pixels = rng.integers(0, 256, size=(32, 40, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(d / "val2017" / f"{k:012d}.jpg")
    for subset in SUGARCREPE_SIZES:
        items = {}
        for k in range(n):
            a, b, c = rng.choice(WORDS, size=3, replace=False)
            items[str(k)] = {"filename": f"{k % 4:012d}.jpg", "caption": f"a {a} {b}", "negative_caption": f"a {c} {b}"}
        (d / "data" / f"{subset}.json").write_text(json.dumps(items), encoding="utf-8")


def _checkpoint_bytes() -> bytes:
    """A tiny QuickGELU model saved as open_clip's training/main.py saves checkpoints (NegCLIP's format)."""
    register_model_configs()
    torch.manual_seed(0)
    model = open_clip.create_model("fsc-tiny", force_quick_gelu=True)
    sd = {f"module.{k}": v for k, v in model.state_dict().items()}
    buffer = io.BytesIO()
    torch.save({"epoch": 5, "name": "coco", "state_dict": sd, "optimizer": {"state": {}, "param_groups": []}}, buffer)
    return buffer.getvalue()


@pytest.fixture()
def zoo_entry(tmp_path, monkeypatch):
    """A zoo entry on the tiny architecture with NegCLIP's published references; offline caches under tmp_path."""
    monkeypatch.setenv("FSC_CLIP_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    entry = dataclasses.replace(
        get_entry("negclip"), name=NAME, architecture="fsc-tiny", format="open_clip", context_length=16,
        source=ZooSource(filename="tiny.pt"), quick_gelu=True, patching=None, lora=None,
    )  # fmt: skip
    snapshot = ZOO.snapshot()
    ZOO.register(entry.name, entry)
    try:
        yield entry
    finally:
        ZOO.restore(snapshot)


def _eval(model_args: list[str], data: Path, out: Path) -> int:
    argv = ["eval", *model_args, "--benchmarks", "sugarcrepe", "--data-root", str(data), "--output", str(out),
            "--batch-size", "8", "--no-progress", "--device", "cpu"]  # fmt: skip
    return main(argv)


def _published_row(table: str, **match: str) -> dict[str, str]:
    with open(PUBLISHED / table, encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if all(r[k] == v for k, v in match.items())]
    assert len(rows) == 1, (table, match)
    return rows[0]


def test_report_published_shows_zoo_row_and_difference(tmp_path, zoo_entry):
    target = tmp_path / "cache" / "zoo" / NAME / "tiny.pt"
    target.parent.mkdir(parents=True)
    target.write_bytes(_checkpoint_bytes())
    data = tmp_path / "data"
    write_sugarcrepe(data)
    zoo_run, other_run = tmp_path / "res" / "zoo-run", tmp_path / "res" / "plain-run"
    assert _eval(["--model", NAME], data, zoo_run) == 0
    assert _eval(["--model", "fsc-tiny", "--random-init"], data, other_run) == 0  # not a zoo model: no comparison
    rep = tmp_path / "report"
    assert main(["report", str(zoo_run), str(other_run), "--published", "--output", str(rep)]) == 0

    # ours, independently: SugarCrepe pooled over its subsets, from the result JSON's sub-scores
    record = json.loads((zoo_run / "sugarcrepe.json").read_text())
    assert record["model"]["name"] == NAME
    scores = record["scores"]
    ours = sum(_pooled(scores, subsets) for subsets in SUGARCREPE_CATEGORIES) / len(SUGARCREPE_CATEGORIES)
    assert len(set(scores.values())) > 1 and 0 < ours < 100  # a fixture that tells a pooled mean from others
    paper = _published_row("fsc_clip_paper_table1.csv", method="NegCLIP", finetune_data="MS-COCO, 100K", lora="no")
    vl_compo = _published_row("vl_compo_results_full.csv", arch="NegCLIP", pretrained="coco-ft")
    tables = {"fsc_clip_paper_table1.csv": paper, "vl_compo_results_full.csv": vl_compo}
    expected = {table: (float(row["sugarcrepe"]), float(row["aro"])) for table, row in tables.items()}

    with open(rep / "published_comparison.csv", encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {r["run"] for r in rows} == {"zoo-run"} and {r["zoo_model"] for r in rows} == {NAME}
    by_key = {(r["table"], r["column"]): r for r in rows}
    for table, (pub_sc, pub_aro) in expected.items():
        sc = by_key[(table, "sugarcrepe")]
        assert float(sc["ours"]) == pytest.approx(ours, abs=1e-9)
        assert float(sc["published"]) == pytest.approx(pub_sc)
        assert float(sc["diff"]) == pytest.approx(ours - pub_sc, abs=1e-9)
        assert sc["off"] == str(abs(ours - pub_sc) > 0.5)
        aro = by_key[(table, "aro")]  # not evaluated: the published value with no difference
        assert aro["ours"] == "" and aro["diff"] == "" and float(aro["published"]) == pytest.approx(pub_aro)
    assert ("fsc_clip_paper_table1.csv", "method") not in by_key  # the match columns are not compared

    md = (rep / "report.md").read_text(encoding="utf-8")
    html = (rep / "report.html").read_text(encoding="utf-8")
    for table, (pub_sc, _aro) in expected.items():
        title = f"## zoo-run ({NAME}) vs published {table}"
        assert title in md and f"zoo-run ({NAME}) vs published {table}" in html
        section = md.split(title, 1)[1].split("\n## ", 1)[0]
        lines = {line.split(" | ")[0].strip("| "): line.split(" | ") for line in section.splitlines() if "|" in line}
        col = lines["row"].index("sugarcrepe")
        assert lines["zoo-run"][col] == f"{ours:.2f}"
        assert lines[f"published: {table}"][col] == f"{pub_sc:.2f}"
        assert lines["ours - published"][col].startswith(f"{ours - pub_sc:+.2f}")
    assert "plain-run" not in md.split("vs published", 1)[1].split("\n## Plots", 1)[0]
    # the profile's published reference rows are still there
    with open(rep / "summary.csv", encoding="utf-8", newline="") as handle:
        sources = [r["source"] for r in csv.DictReader(handle)]
    assert sources[:2] == ["run", "run"] and any(s.startswith("published:") for s in sources[2:])


def test_report_without_published_flag_has_no_comparison(tmp_path, zoo_entry):
    target = tmp_path / "cache" / "zoo" / NAME / "tiny.pt"
    target.parent.mkdir(parents=True)
    target.write_bytes(_checkpoint_bytes())
    data = tmp_path / "data"
    write_sugarcrepe(data)
    assert _eval(["--model", NAME], data, tmp_path / "run") == 0
    assert main(["report", str(tmp_path / "run"), "--output", str(tmp_path / "rep")]) == 0
    assert not (tmp_path / "rep" / "published_comparison.csv").exists()
    assert "vs published" not in (tmp_path / "rep" / "report.md").read_text(encoding="utf-8")


# ----- eval --download -----------------------------------------------------------------------------------------
class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    payload = b""
    requests: list[str]


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        self.server.requests.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.server.payload)))
        self.end_headers()
        self.wfile.write(self.server.payload)


@pytest.fixture()
def server():
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.payload, srv.requests = _checkpoint_bytes(), []
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.fixture()
def url_entry(zoo_entry, server):
    """The tiny entry served by URL with its sha256, as a URL entry of ``models.yaml`` (CLoVe) is."""
    url = f"http://127.0.0.1:{server.server_address[1]}/tiny.pt"
    sha = hashlib.sha256(server.payload).hexdigest()
    entry = dataclasses.replace(zoo_entry, source=ZooSource(filename="tiny.pt", url=url, sha256=sha))
    ZOO.register(entry.name, entry, override=True)  # zoo_entry's teardown restores the registry
    return entry


def test_eval_without_download_fails_fast_naming_the_file(tmp_path, url_entry, server, capsys):
    data = tmp_path / "data"
    data.mkdir()
    out = tmp_path / "res"
    start = time.monotonic()
    assert _eval(["--model", NAME], data, out) == 2
    assert time.monotonic() - start < 5
    err = capsys.readouterr().err
    target = tmp_path / "cache" / "zoo" / NAME / "tiny.pt"
    assert str(target) in err and f"fsc-clip fetch {NAME}" in err and "--download" in err
    assert server.requests == [] and not target.exists() and not out.exists()  # nothing downloaded or written


def test_eval_download_fetches_then_evaluates(tmp_path, url_entry, server, capsys):
    data = tmp_path / "data"
    write_sugarcrepe(data)
    out = tmp_path / "res"
    assert _eval(["--model", NAME, "--download"], data, out) == 0
    target = tmp_path / "cache" / "zoo" / NAME / "tiny.pt"
    assert target.read_bytes() == server.payload and server.requests == ["/tiny.pt"]
    assert str(target) in capsys.readouterr().err
    record = json.loads((out / "sugarcrepe.json").read_text())
    assert record["model"]["name"] == NAME and record["model"]["pretrained"] == str(target)
    # cached now: a second --download evaluates without a request, and so does a run without the flag
    assert _eval(["--model", NAME, "--download", "--overwrite"], data, out) == 0
    assert _eval(["--model", NAME, "--overwrite"], data, out) == 0
    assert server.requests == ["/tiny.pt"]


def test_download_needs_a_zoo_model(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    assert _eval(["--model", "fsc-tiny", "--random-init", "--download"], data, tmp_path / "res") == 2
    assert "--download fetches zoo models only" in capsys.readouterr().err
