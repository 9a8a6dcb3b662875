"""The report: headline columns as published, files written, plots non-empty, HTML parses (and renders)."""

from __future__ import annotations

import base64
import csv
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path

import pytest

from fsc_clip.errors import OutputError, UserError
from fsc_clip.evaluation.benchmarks import BENCHMARKS
from fsc_clip.evaluation.report import ResultFileError, build_report, load_run, write_report

PUB = resources.files("fsc_clip") / "resources" / "published"
PNG = b"\x89PNG\r\n\x1a\n"
MODELS = {"clip-b32": ("ViT-B-32", "openai"), "negclip": ("NegCLIP", "coco-ft")}


def _published(name):
    with (PUB / name).open(encoding="utf-8") as fh:
        return {(r["arch"], r["pretrained"]): r for r in csv.DictReader(fh)}


def write_results(out: Path, arch: str, pretrained: str, extra_scores: dict | None = None) -> Path:
    """One JSON per benchmark (as `fsc-clip eval` writes them) holding the published sub-scores of a model."""
    subs = {k: float(v) for k, v in _published("vl_compo_individual_results.csv")[(arch, pretrained)].items()
            if "::" in k and v != ""}  # fmt: skip
    subs.update(extra_scores or {})
    groups: dict[str, dict] = {}
    for key, value in subs.items():
        prefix = key.split("::")[0]
        bench = f"zs-{key.split('::')[1]}" if prefix == "elevator" else prefix
        groups.setdefault(bench, {})[key] = value
    out.mkdir(parents=True)
    for bench, scores in groups.items():
        model = {"name": arch, "pretrained": pretrained, "label": f"{arch}/{pretrained}"}
        score = sum(scores.values()) / len(scores)
        rec = {"benchmark": bench, "model": model, "score": score, "scores": scores, "counts": dict.fromkeys(scores, 1)}
        (out / f"{bench}.json").write_text(json.dumps(rec))
    (out / "summary.json").write_text(json.dumps({"benchmarks": {}, "profiles": {}}))  # ignored by the report
    return out


@pytest.fixture
def runs(tmp_path):
    return [write_results(tmp_path / name, *key) for name, key in MODELS.items()]


MINE = ("imagenet", "21_tasks_avg", "coco_i2t", "coco_t2i", "flickr_i2t", "flickr_t2i", "i2t_avg", "t2i_avg")


def test_vl_compo_columns_equal_published(runs):
    report = build_report(runs, profile="vl_compo")
    published = _published("vl_compo_results.csv")
    for row, key in zip(report.rows, MODELS.values()):
        pub = published[key]
        for col in MINE:
            assert row.columns[col] == pytest.approx(float(pub[col]), abs=1e-6), (row.name, col)
        registered = all(b in BENCHMARKS for b in report.benchmarks)
        for col in report.benchmarks:  # C's benchmark columns: equal where registered
            if col in BENCHMARKS:
                assert row.columns[col] == pytest.approx(float(pub[col]), abs=1e-6), (row.name, col)
        if registered:
            assert row.columns["comp_avg"] == pytest.approx(float(pub["comp_avg"]), abs=1e-6)
        else:
            assert row.columns["comp_avg"] is None  # never a partial mean


def test_fsc_headlines_zs_and_retrieval_over_present_sets(tmp_path):
    pub = _published("vl_compo_results.csv")[("ViT-B-32", "openai")]
    two = build_report([write_results(tmp_path / "a", "ViT-B-32", "openai")], profile="fsc").rows[0]
    assert two.columns["ZS"] == pytest.approx(float(pub["21_tasks_avg"]), abs=1e-6)
    assert two.columns["I2T"] == pytest.approx(float(pub["i2t_avg"]), abs=1e-6)  # COCO + Flickr only
    assert two.columns["Comp"] is None  # SPEC is not in the vl_compo tables
    cf = {"coco_counterfactuals::i2t/R@1": 51.1, "coco_counterfactuals::t2i/R@1": 48.2}
    three = build_report([write_results(tmp_path / "b", "ViT-B-32", "openai", cf)], profile="fsc").rows[0]
    expected = (float(pub["coco_i2t"]) + float(pub["flickr_i2t"]) + 51.1) / 3
    assert three.columns["I2T"] == pytest.approx(expected, abs=1e-6)
    # ZS needs all 21 tasks
    (tmp_path / "b" / "zs-mnist.json").unlink()
    assert build_report([tmp_path / "b"], profile="fsc").rows[0].columns["ZS"] is None


class _Checker(HTMLParser):
    VOID = frozenset({"meta", "img", "br", "hr", "link", "input"})

    def __init__(self):
        super().__init__()
        self.stack, self.tags, self.images, self.errors = [], [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "img":
            self.images.append(dict(attrs)["src"])
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(tag)


def test_write_report_files_plots_and_html(runs, tmp_path):
    report = build_report(runs, profile="vl_compo", baseline="clip-b32", published=True)
    files = write_report(report, tmp_path / "out")
    for key in ("summary_csv", "subscores_csv", "markdown", "html", "plot_scatter", "plot_bars"):
        assert files[key].is_file() and files[key].stat().st_size > 0, key
    for key in ("plot_scatter", "plot_bars"):
        assert files[key].read_bytes()[:8] == PNG

    rows = list(csv.DictReader(files["summary_csv"].open()))
    assert [r["run"] for r in rows][:2] == ["clip-b32", "negclip"]
    assert any(r["source"].startswith("published") for r in rows)
    neg = rows[1]
    assert float(neg["delta_21_tasks_avg"]) == pytest.approx(
        float(neg["21_tasks_avg"]) - float(rows[0]["21_tasks_avg"])
    )
    assert rows[0]["delta_i2t_avg"] == "0.0"

    md = files["markdown"].read_text()
    assert "## Headline" in md and "† = published reference" in md and "plots/comp_vs_zs.png" in md
    assert "Zero-shot classification" in md and "coco_karpathy::i2t/R@1" in md

    checker = _Checker()
    checker.feed(files["html"].read_text())
    checker.close()
    assert not checker.errors and not checker.stack
    assert checker.tags.count("table") == 5 and len(checker.images) == 2  # incl. the paired comparison vs baseline
    for src in checker.images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == PNG


def test_published_baseline_and_errors(runs, tmp_path):
    report = build_report(runs, profile="fsc", baseline="CLIP openai", published=True)
    assert report.baseline == "CLIP openai"
    clip = report.row("clip-b32")
    assert report.delta(clip, "ZS") == pytest.approx(clip.columns["ZS"] - 57.1)
    with pytest.raises(UserError, match="matches no row; choose one of: clip-b32, negclip"):
        build_report(runs, profile="fsc", baseline="nope")
    from fsc_clip.errors import DataNotFoundError

    with pytest.raises(DataNotFoundError):
        build_report([tmp_path / "missing"], profile="fsc")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataNotFoundError, match="no benchmark result"):
        build_report([tmp_path / "empty"], profile="fsc")


def test_cli_report(runs, tmp_path, capsys):
    from fsc_clip.cli.main import main

    out = tmp_path / "rep"
    rc = main(
        ["report", *map(str, runs), "--profile", "fsc", "--output", str(out), "--baseline", "clip-b32", "--published"]
    )
    assert rc == 0
    assert (out / "report.html").is_file() and (out / "plots" / "benchmarks.png").stat().st_size > 0
    text = capsys.readouterr().out
    assert "negclip" in text and "(published)" in text
    assert main(["report", str(runs[0]), "--profile", "nope", "--output", str(out)]) == 2
    assert main(["report", str(tmp_path / "missing"), "--output", str(out)]) == 2


def test_baseline_is_matched_exactly_else_an_error_listing_candidates(runs, tmp_path):
    both = [*runs, write_results(tmp_path / "clip-b32-lora", "ViT-B-32", "openai")]
    assert build_report(both, profile="fsc", baseline="clip-b32").baseline == "clip-b32"  # exact, though a substring
    assert build_report(both, profile="fsc", baseline=str(runs[1])).baseline == "negclip"  # the folder as given
    with pytest.raises(UserError, match=r"ambiguous: it matches 'clip-b32', 'clip-b32-lora'"):
        build_report(both, profile="fsc", baseline="b32")
    with pytest.raises(UserError, match=r"not a row name; did you mean 'negclip'\?"):
        build_report(both, profile="fsc", baseline="NegCLIP")  # a unique case-insensitive substring is not taken
    with pytest.raises(UserError, match="did you mean 'CLIP openai'"):
        build_report(runs, profile="fsc", baseline="clip openai", published=True)


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ('{"benchmark": "aro", "scores": {"aro::VG', "not valid JSON"),  # truncated
        ('{"benchmark": "aro", "scores": [1, 2]}', "field 'scores' is missing or not an object"),
        ('{"benchmark": "aro", "scores": {"aro::VG_Relation": "high"}}', "scores['aro::VG_Relation'] is 'high'"),
        ('["aro"]', "expected a JSON object"),
        ('{"scores": {"aro::VG_Relation": 1.0}}', "field 'benchmark' is missing"),
    ],
)
def test_bad_result_json_is_a_warning_naming_the_file_or_an_error_when_strict(runs, content, why, caplog):
    bad = runs[0] / "aro.json"
    bad.write_text(content)
    with caplog.at_level("WARNING", logger="fsc_clip.evaluation.report"):
        row = load_run(runs[0])
    assert any(str(bad) in m and why in m for m in caplog.messages), caplog.messages
    assert row.problems and not any(k.startswith("aro::") for k in row.subscores)  # the bad file only is skipped
    assert any(k.startswith("sugarcrepe::") for k in row.subscores)
    with pytest.raises(ResultFileError, match=re.escape(str(bad))):
        build_report(runs, profile="fsc", strict=True)


def test_results_of_several_weights_in_one_folder_are_flagged(runs):
    for name, sha in (("aro.json", "a" * 64), ("sugarcrepe.json", "b" * 64)):
        data = json.loads((runs[0] / name).read_text())
        data["weights_fingerprint"] = {"sha256": sha, "method": "m"}
        (runs[0] / name).write_text(json.dumps(data))
    assert "2 different weights" in load_run(runs[0]).problems[0]
    with pytest.raises(ResultFileError, match="different weights"):
        load_run(runs[0], strict=True)


def test_full_disk_keeps_the_previous_report_and_names_the_file(runs, tmp_path, monkeypatch):
    """Fault injection at the OS boundary: fsync of the new report.html fails with ENOSPC, as on a full disk."""
    import errno
    import os

    out = tmp_path / "rep"
    files = write_report(build_report(runs, profile="fsc"), out)
    before = files["html"].read_bytes()
    real_fsync = os.fsync

    def fsync(fd):
        if ".report.html." in os.readlink(f"/proc/self/fd/{fd}"):  # the temporary sibling of report.html
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(OutputError, match=rf"cannot write {re.escape(str(files['html']))}: the disk is full"):
        write_report(build_report(runs, profile="fsc", baseline="negclip"), out)
    assert files["html"].read_bytes() == before  # the previous report, whole
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]  # no temporary file left behind
    assert "baseline `negclip`" in files["markdown"].read_text()  # the files before it were written (new baseline)


@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="needs /usr/bin/chromium")
def test_html_renders_in_headless_chromium(runs, tmp_path):
    files = write_report(build_report(runs, profile="fsc", published=True), tmp_path / "out")
    shot = tmp_path / "shot.png"
    cmd = [shutil.which("chromium") or "/usr/bin/chromium", "--headless", "--no-sandbox", "--disable-gpu",
           "--disable-background-networking", "--no-first-run", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,1600", f"--screenshot={shot}",
           files["html"].resolve().as_uri()]  # fmt: skip
    subprocess.run(cmd, check=False, capture_output=True, timeout=120)
    assert shot.is_file() and shot.read_bytes()[:8] == PNG and shot.stat().st_size > 10_000


def test_inline_code_becomes_code_elements_and_no_backtick_survives():
    from fsc_clip.evaluation.report import inline_html

    assert (
        inline_html("run `fsc-clip eval --save-scores` first") == "run <code>fsc-clip eval --save-scores</code> first"
    )
    assert inline_html("a < b & `x<y>`") == "a &lt; b &amp; <code>x&lt;y&gt;</code>"
    assert inline_html("a stray ` backtick") == "a stray  backtick"


class _Text(HTMLParser):
    """The visible text of a page (no <style> / <script>), and the text of its <dl class="defs"> entries."""

    def __init__(self):
        super().__init__()
        self.text, self.defs, self._skip, self._in = [], [], False, None

    def handle_starttag(self, tag, attrs):
        self._skip = tag in ("style", "script")
        if tag in ("dt", "dd"):
            self._in = tag
            if tag == "dt":
                self.defs.append(["", ""])

    def handle_endtag(self, tag):
        self._skip, self._in = False, None if tag in ("dt", "dd") else self._in

    def handle_data(self, data):
        if not self._skip:
            self.text.append(data)
        if self._in:
            self.defs[-1][0 if self._in == "dt" else 1] += data


def test_html_defines_the_headline_columns_and_shows_no_markdown(runs, tmp_path):
    files = write_report(build_report(runs, profile="fsc", baseline="clip-b32"), tmp_path / "out")
    page = files["html"].read_text()
    parsed = _Text()
    parsed.feed(page)
    defs = dict(parsed.defs)
    assert list(defs)[:4] == ["Comp", "ZS", "I2T", "T2I"]
    assert defs["Comp"].startswith("compositionality: mean of the 11") and defs["ZS"].startswith("zero-shot")
    assert defs["I2T"].startswith("image-to-text retrieval") and defs["T2I"].startswith("text-to-image retrieval")
    assert "`" not in "".join(parsed.text) and "<code>fsc-clip eval --save-scores</code>" in page
    assert "21 zero-shot" not in "".join(parsed.text).split("Definitions", 1)[1].replace(defs["ZS"], "")
    md = files["markdown"].read_text()
    assert "## Definitions" in md and "- **Comp**: compositionality: mean of the 11" in md


def test_reference_rows_get_their_own_paired_table_and_summary_columns(runs, tmp_path):
    third = write_results(tmp_path / "clip-copy", "ViT-B-32", "openai")
    report = build_report([*runs, third], profile="fsc", baseline="clip-b32", references=["negclip"])
    assert report.references == ["negclip"]
    from fsc_clip.evaluation.report import report_tables

    titles = [t.title for t in report_tables(report)]
    assert titles[:3] == ["Headline", "Paired comparison vs clip-b32", "Paired comparison vs negclip"]
    vs_ref = next(t for t in report_tables(report) if t.title == "Paired comparison vs negclip")
    assert [r[0] for r in vs_ref.rows] == ["clip-copy"]  # the baseline and the reference itself are not rows
    rows = list(csv.DictReader(write_report(report, tmp_path / "out")["summary_csv"].open()))
    neg = float(rows[1]["ZS"])
    assert float(rows[2]["delta_ZS_vs_negclip"]) == pytest.approx(float(rows[2]["ZS"]) - neg)
    assert rows[2]["delta_ZS_vs_negclip_ci_lo"] == ""  # no per-item outcomes in these results: no interval
    with pytest.raises(UserError, match="matches no row"):
        build_report(runs, profile="fsc", references=["nope"])
