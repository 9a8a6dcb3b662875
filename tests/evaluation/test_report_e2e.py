"""End to end: `fsc-clip eval` over fixtures then `fsc-clip report`; the report's HTML rendered in a real browser."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from test_report import MODELS, write_results
from test_retrieval_benchmarks import write_fixture as write_retrieval
from test_zeroshot_benchmarks import write_fixture as write_zeroshot


def test_eval_zeroshot_and_retrieval_then_report(tmp_path, capsys):
    from fsc_clip.cli.main import main

    data = tmp_path / "data"
    write_zeroshot(data, "cifar10", "folders", all_classes=True)
    write_zeroshot(data, "voc2007classification", "labels")
    for name in ("coco_karpathy", "flickr30k", "coco_counterfactuals"):
        write_retrieval(data, name)
    runs = []
    for run_name, which in (("tiny-a", "zeroshot,retrieval"), ("tiny-b", "retrieval")):
        out = tmp_path / "results" / run_name
        argv = ["eval", "--model", "fsc-tiny", "--random-init", "--benchmarks", which, "--data-root", str(data),
                "--output", str(out), "--batch-size", "8", "--no-progress"]  # fmt: skip
        assert main(argv) == 0
        runs.append(out)
    written = sorted(p.name for p in runs[0].glob("*.json"))
    assert {"zs-cifar10.json", "zs-voc2007classification.json", "coco_karpathy.json", "flickr30k.json",
            "coco_counterfactuals.json"} <= set(written)  # fmt: skip
    assert "zs-mnist.json" not in written  # missing data is skipped for group words
    res = json.loads((runs[0] / "coco_karpathy.json").read_text())
    assert res["kind"] == "retrieval" and set(res["scores"]) == {
        f"coco_karpathy::{d}/R@{k}" for d in ("i2t", "t2i") for k in (1, 5, 10)
    }
    zs = json.loads((runs[0] / "zs-voc2007classification.json").read_text())
    assert list(zs["scores"]) == ["elevator::voc2007classification"] and zs["extra"]["metric"] == "11point_mAP"

    rep = tmp_path / "report"
    assert main(["report", *map(str, runs), "--profile", "fsc", "--output", str(rep), "--baseline", "tiny-a"]) == 0
    rows = list(csv.DictReader((rep / "summary.csv").open()))
    assert [r["run"] for r in rows] == ["tiny-a", "tiny-b"]
    a = json.loads((runs[0] / "coco_karpathy.json").read_text())["scores"]
    f = json.loads((runs[0] / "flickr30k.json").read_text())["scores"]
    c = json.loads((runs[0] / "coco_counterfactuals.json").read_text())["scores"]
    expected = (a["coco_karpathy::i2t/R@1"] + f["flickr30k::i2t/R@1"] + c["coco_counterfactuals::i2t/R@1"]) / 3
    assert abs(float(rows[0]["I2T"]) - expected) < 1e-9
    assert rows[0]["ZS"] == ""  # only 2 of the 21 tasks were evaluated
    assert rows[0]["zs_tasks"] == "2"
    assert (rep / "plots" / "comp_vs_zs.png").stat().st_size > 0


# ----- the report in a real browser --------------------------------------------------------------------------
# Chromium renders a copy of report.html with a test-only <style> + <script> appended: the script tags the first
# table and the two plot images, the style pins them to known boxes of the viewport (and hides everything else),
# and a deliberately undecodable PNG is pinned to a control box. The screenshot must show ink spread over the
# table's and both plots' boxes, but not over the control box (a broken image leaves only a small icon), so the
# pixel check can fail. `--dump-dom` (after the load event) gives each image's decoded size as a second witness.
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run")  # fmt: skip
VIEW = (1300, 1250)  # viewport, px
BOXES = {"table": (0, 0, 640, 300), "p1": (0, 350, 600, 400), "p2": (650, 350, 600, 400), "ctrl": (0, 800, 600, 400)}
PROBE_CSS = """html,body{margin:0!important;padding:0!important;background:#fff!important;overflow:hidden!important}
body *{visibility:hidden!important}.probe,.probe *{visibility:visible!important}
table.probe{position:fixed!important;left:0;top:0;margin:0!important}
img.probe{position:fixed!important;width:600px!important;height:400px!important;object-fit:contain;border:0!important;
margin:0!important}#p1{left:0;top:350px}#p2{left:650px;top:350px}#ctrl{left:0;top:800px}"""
PROBE_JS = """(function(){document.querySelector('table').classList.add('probe');
var im=document.querySelectorAll('img');im[0].id='p1';im[1].id='p2';
var c=document.createElement('img');c.id='ctrl';c.alt='control';c.src='data:image/png;base64,AAAA';
document.body.appendChild(c);
document.querySelectorAll('img').forEach(function(i){i.classList.add('probe')});
window.addEventListener('load',function(){document.querySelectorAll('img').forEach(function(i){
i.setAttribute('data-decoded',i.naturalWidth+'x'+i.naturalHeight)})});})();"""


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("CI") == "true":
        pytest.fail("Chromium is not installed, but CI must run the real-browser test (.ci/run installs it)")
    pytest.skip("needs Chromium (apt-get install chromium)")


def _run_chromium(browser: str, tmp: Path, tag: str, *args: str) -> subprocess.CompletedProcess:
    profile = tmp / f"chromium-profile-{tag}"  # a fresh profile per run: nothing carried over
    cmd = [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


def inked(image, box: tuple[int, int, int, int], grid: int = 8, min_share: float = 0.25) -> bool:
    """True when non-white pixels reach at least ``min_share`` of a ``grid × grid`` split of ``box``.

    A rendered table (cell borders, text) or plot (axes frame, marks, labels) spreads ink over most cells; a blank
    box or a broken-image icon with its alt text touches one or two.
    """
    x, y, w, h = box
    gray = image.convert("L").crop((x, y, x + w, y + h))
    px = gray.load()
    cells = 0
    for gy in range(grid):
        for gx in range(grid):
            xs = range(gx * w // grid, (gx + 1) * w // grid)
            ys = range(gy * h // grid, (gy + 1) * h // grid)
            cells += any(px[i, j] < 200 for j in ys for i in xs)
    return cells >= min_share * grid * grid


def test_report_html_renders_table_and_both_plots_in_chromium(tmp_path):
    from PIL import Image

    from fsc_clip.cli.main import main

    browser = _chromium()
    runs = [write_results(tmp_path / "results" / name, *key) for name, key in MODELS.items()]
    out = tmp_path / "report"
    argv = ["report", *map(str, runs), "--profile", "vl_compo", "--baseline", "clip-b32", "--published"]
    assert main([*argv, "--output", str(out)]) == 0
    page = (out / "report.html").read_text(encoding="utf-8")
    assert page.count("<img") == 2 and "</head>" in page and "</body>" in page
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</head>", f"<style>{PROBE_CSS}</style></head>", 1)
                     .replace("</body>", f"<script>{PROBE_JS}</script></body>", 1), encoding="utf-8")  # fmt: skip

    dom = _run_chromium(browser, tmp_path, "dom", "--dump-dom", probe.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    decoded = _decoded_sizes(dom.stdout)
    assert set(decoded) == {"p1", "p2", "ctrl"}, decoded
    assert decoded["ctrl"] == (0, 0)  # the control really is undecodable
    assert all(w > 100 and h > 100 for w, h in (decoded["p1"], decoded["p2"])), decoded
    assert "<table" in dom.stdout and ">clip-b32<" in dom.stdout and ">negclip<" in dom.stdout

    shot = tmp_path / "shot.png"
    size = f"--window-size={VIEW[0]},{VIEW[1]}"
    res = _run_chromium(browser, tmp_path, "shot", "--hide-scrollbars", "--force-device-scale-factor=1", size,
                        f"--screenshot={shot}", probe.as_uri())  # fmt: skip
    assert res.returncode == 0 and shot.is_file(), res.stderr[-2000:]
    image = Image.open(shot)
    assert image.size == VIEW
    assert not inked(image, BOXES["ctrl"]), "the pixel check cannot tell a broken image from a plot"
    for name in ("table", "p1", "p2"):
        assert inked(image, BOXES[name]), f"{name}: its box in the screenshot is (nearly) blank"


def _decoded_sizes(dom: str) -> dict[str, tuple[int, int]]:
    """``{img id: (naturalWidth, naturalHeight)}`` from the probe's ``data-decoded`` attributes in a DOM dump."""
    sizes = {}
    for tag in re.findall(r"<img\b[^>]*>", dom):
        ident, dec = re.search(r'\bid="([^"]+)"', tag), re.search(r'\bdata-decoded="(\d+)x(\d+)"', tag)
        if ident and dec:
            sizes[ident.group(1)] = (int(dec.group(1)), int(dec.group(2)))
    return sizes


# ----- the demo's report in a real browser: definitions, no Markdown, only the tasks of its tables --------------
TEXT_PROBE_JS = """window.addEventListener('load',function(){var text=document.body.innerText;
var tables=document.querySelectorAll('table');tables.forEach(function(t){t.style.display='none'});
var prose=document.body.innerText;tables.forEach(function(t){t.style.display=''});
var cells=[].map.call(document.querySelectorAll('th,td'),function(c){return c.innerText});
var defs=[].map.call(document.querySelectorAll('dl.defs dt'),function(dt){
return [dt.innerText,dt.nextElementSibling?dt.nextElementSibling.innerText:''];});
var out=document.createElement('pre');out.id='probe-out';
out.textContent=JSON.stringify({text:text,prose:prose,cells:cells,defs:defs,
code:document.querySelectorAll('p code').length});document.body.appendChild(out);});"""


def _synthetic_results(folder: Path, name: str, offset: float) -> Path:
    """One run's result JSONs for the synthetic profile: every sub-score the benchmark classes declare."""
    from fsc_clip.evaluation.benchmarks import BENCHMARKS
    from fsc_clip.evaluation.benchmarks.synthetic import COMP_BENCHMARKS

    out = folder / name
    out.mkdir(parents=True)
    for bench in (*COMP_BENCHMARKS, "synthetic_zeroshot", "synthetic_retrieval"):
        subs = BENCHMARKS.get(bench).sub_scores
        scores = {f"{bench}::{s}": 30.0 + offset + 2 * i for i, s in enumerate(subs)}
        record = {"benchmark": bench, "model": {"name": "fsc-demo", "label": f"fsc-demo/{name}"}, "scores": scores}
        (out / f"{bench}.json").write_text(json.dumps(record))
    return out


def test_demo_report_html_in_chromium_defines_columns_has_no_markdown_and_names_only_its_tasks(tmp_path):
    import html as html_lib

    from fsc_clip.demo import demo_config
    from fsc_clip.demo.pipeline import _Demo, _stage_report
    from fsc_clip.evaluation.benchmarks import BENCHMARKS
    from fsc_clip.evaluation.benchmarks.synthetic import SyntheticZeroShot

    browser = _chromium()
    cfg = demo_config(quick=True, study="ablation")  # the study with a reference row and a published table
    names = ["base", *(m.name for m in cfg.methods)]
    eval_dirs = {n: _synthetic_results(tmp_path / "eval", n, k) for k, n in enumerate(names)}
    d = _Demo(cfg, tmp_path / "demo", progress=False, log=lambda _m: None)
    _stage_report(d, eval_dirs)  # the demo's own report step: build, study description, published rows, write
    page = d.result.report_files["html"].read_text(encoding="utf-8")
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", f"<script>{TEXT_PROBE_JS}</script></body>", 1), encoding="utf-8")
    dom = _run_chromium(browser, tmp_path, "text", "--dump-dom", probe.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    found = re.search(r'<pre id="probe-out">(.*?)</pre>', dom.stdout, re.S)
    assert found, "the probe did not run"
    seen = json.loads(html_lib.unescape(found.group(1)))

    defs = dict(seen["defs"])  # 1. a definitions block for the four headline columns
    assert list(defs)[:4] == ["Comp", "ZS", "I2T", "T2I"]
    for col, word in (("Comp", "compositionality"), ("ZS", "zero-shot"), ("I2T", "image-to-text"),
                      ("T2I", "text-to-image")):  # fmt: skip
        assert defs[col].startswith(word) and len(defs[col]) > len(word) + 5, (col, defs[col])
    assert "`" not in seen["text"] and seen["code"] > 0  # 2. inline code rendered as <code>, no backticks left
    cells = " ".join(seen["cells"])  # 3. every task the prose names is a column or row of a table
    candidates = [*BENCHMARKS.names(), *SyntheticZeroShot.sub_scores, "ELEVATER", "ImageNet", "Flickr30k",
                  "21 zero-shot", "21 tasks", "11 compositional"]  # fmt: skip
    named = [c for c in candidates if re.search(rf"(?<![\w-]){re.escape(c)}(?![\w-])", seen["prose"])]
    assert {"shape", "color", "count"} <= set(named)  # the ZS definition names its tasks ...
    missing = [c for c in named if not re.search(rf"(?<![\w-]){re.escape(c)}(?![\w-])", cells)]
    assert not missing, f"the report names tasks that are in none of its tables: {missing}"  # ... and they are
