"""Mutation check: plant known bugs one at a time in a COPY of the source tree and see whether the tests catch them.

Each mutation is a textual find/replace on one file. For each one the script copies ``src/``, ``tests/``,
``configs/`` and ``pyproject.toml`` to a temporary folder (never touching the working tree), applies the edit
there, and runs the mutation's test subset against the copy (``PYTHONPATH=<copy>/src``, ``pytest -x -q`` with a
timeout). Outcomes:

- ``caught``: the subset fails with the bug planted (and passes without it; a test that already fails without
  the bug, e.g. another change in progress, is reported and deselected, so it never counts as catching);
- ``SURVIVED``: the subset passes with the bug planted;
- ``target missing``: the text to replace is no longer in the file (the code changed: update the mutation);
- ``baseline fails`` / ``no tests`` / ``timeout`` / ``error``: the check says nothing about this mutation.

Usage (from the repository root; one CPU thread keeps it polite on a shared machine)::

    OMP_NUM_THREADS=1 python benchmarks/mutations.py            # all mutations
    OMP_NUM_THREADS=1 python benchmarks/mutations.py valse tie  # only those whose name contains a word

It prints a table and writes ``benchmarks/results/mutations.json``. Exit status 1 if a mutation survived or its
target is missing.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COPIED = ("src", "tests", "configs", "pyproject.toml")
TRUTH = "tests/evaluation/test_benchmark_truth.py"


@dataclass(frozen=True)
class Mutation:
    """One planted bug.

    Attributes:
        name: Short id (used to select mutations on the command line).
        file: File to edit, relative to the repository root.
        find: Exact text to replace (its first occurrence).
        replace: The buggy text.
        tests: The pytest arguments (paths, ``-k`` expressions) of the subset that should catch it.
        why: What the bug means.
    """

    name: str
    file: str
    find: str
    replace: str
    tests: tuple[str, ...]
    why: str


BENCH = "src/fsc_clip/evaluation/benchmarks"
MUTATIONS = (
    # ----- loaders: the right answer counted as wrong and vice versa ---------------------------------------------
    Mutation("valse-swap", f"{BENCH}/valse.py", "items.append(ImageToTextItem(ImageRef(image), texts, 0, piece))",
             "items.append(ImageToTextItem(ImageRef(image), texts, 1, piece))", (TRUTH, "-k", "valse"),
             "VALSE counts the foil as the right answer"),
    Mutation("aro-swap", f"{BENCH}/aro.py", "bbox=bbox), texts, 1, subset, cat)", "bbox=bbox), texts, 0, subset, cat)",
             (TRUTH, "-k", "aro"), "ARO VG counts the false caption as right"),
    Mutation("whatsup-swap", f"{BENCH}/whatsup.py", "[true_caption, false_caption], 0, subset",
             "[true_caption, false_caption], 1, subset", (TRUTH, "-k", "whatsup"),
             "What'sUp QA counts the false caption as right"),
    Mutation("crepe-swap", f"{BENCH}/crepe.py", "[caption, *kept], 0, kind)", "[caption, *kept], 1, kind)",
             (TRUTH, "-k", "crepe"), "CREPE counts a hard negative as right"),
    Mutation("synthetic-aro-swap", f"{BENCH}/synthetic.py", 'rec["true_caption"]], 1, subset, cat',
             'rec["true_caption"]], 0, subset, cat', (TRUTH, "-k", "synthetic_aro"),
             "synthetic ARO counts the false caption as right"),
    Mutation("vl-checklist-swap", f"{BENCH}/vl_checklist.py", '[texts["POS"][0], texts["NEG"][0]], 0, column',
             '[texts["POS"][0], texts["NEG"][0]], 1, column', (TRUTH, "-k", "vl_checklist"),
             "VL-CheckList counts the negative phrase as right"),
    Mutation("svo-swap", f"{BENCH}/svo_probes.py", "TextToImageItem(sentence, refs, 0, kinds[0])",
             "TextToImageItem(sentence, refs, 1, kinds[0])", (TRUTH, "-k", "svo_probes"),
             "SVO-Probes counts the negative image as right"),
    Mutation("spec-label-off-by-one", f"{BENCH}/spec.py", 'int(get("label")), f"{subset}::t2i"',
             '(int(get("label")) + 1) % len(refs), f"{subset}::t2i"', (TRUTH, "-k", "spec"),
             "SPEC text-to-image takes the next image as the answer"),
    Mutation("imagecode-label-by-name", f"{BENCH}/imagecode.py", "label = int(img_idx)",
             "label = next((k for k, r in enumerate(refs) if r.path.stem == f'img{img_idx}'), 0)",
             (TRUTH, "-k", "imagecode"),
             "ImageCoDe takes the file img<idx>.jpg as the target instead of position idx in the sorted set"),
    Mutation("winoground-captions-swapped", f"{BENCH}/winoground.py",
             'texts = (field(rec, "caption_0", file, rid, self.name), field(rec, "caption_1", file, rid, self.name))',
             'texts = (field(rec, "caption_1", file, rid, self.name), field(rec, "caption_0", file, rid, self.name))',
             (TRUTH, "-k", "winoground"), "Winoground pairs each image with the other caption"),
    Mutation("aro-min-attribute-count", f"{BENCH}/aro.py", 'self.options.get("min_attribute_count", 25)',
             'self.options.get("min_attribute_count", 1)', (TRUTH, "-k", "aro"),
             "ARO VG-Attribution keeps attribute pairs with fewer than 25 examples in the macro mean"),
    Mutation("zeroshot-tie-top1", "src/fsc_clip/evaluation/tasks/zeroshot.py",
             "return target > others.max(dim=1).values", "return target >= others.max(dim=1).values",
             ("tests/evaluation/test_zeroshot_metrics.py", TRUTH, "-k", "tie or zs- or metric"),
             "zero-shot top-1 counts a tied top class as right"),
    Mutation("sugarcrepe-swap", f"{BENCH}/sugarcrepe.py", "ImageToTextItem(ref, texts, 0, subset)",
             "ImageToTextItem(ref, texts, 1, subset)", (TRUTH, "-k", "sugarcrepe"),
             "SugarCrepe counts the negative as right"),
    # ----- thresholds and boundaries -------------------------------------------------------------------------------
    Mutation("macro-min-count-strict", "src/fsc_clip/evaluation/tasks/__init__.py",
             "if n >= min_count]", "if n > min_count]", (TRUTH, "-k", "aro"),
             "macro accuracy drops a category with exactly min_count examples (ARO: 25 attribute examples)"),
    Mutation("valse-threshold", f"{BENCH}/valse.py", "return int(votes) >= threshold", "return int(votes) > threshold",
             (TRUTH, "-k", "valse"), "VALSE drops samples with exactly 2 of 3 votes (mturk.caption > 2)"),
    Mutation("tie-multiple-choice", "src/fsc_clip/evaluation/tasks/multiple_choice.py", "return target > best_other",
             "return target >= best_other", ("tests/evaluation/test_scorers.py", TRUTH),
             "a tie for the top counts as a success (multiple choice)"),
    Mutation("tie-group", "src/fsc_clip/evaluation/tasks/group.py", "text = (c0i0 > c1i0) & (c1i1 > c0i1)",
             "text = (c0i0 >= c1i0) & (c1i1 >= c0i1)", ("tests/evaluation/test_scorers.py", TRUTH),
             "a tie counts as a success (Winoground text score)"),
    Mutation("recall-off-by-one", "src/fsc_clip/evaluation/tasks/retrieval.py", "(competitors < int(k))",
             "(competitors <= int(k))", ("tests/evaluation/test_retrieval_recall.py", TRUTH),
             "R@k counts rank k+1 as a hit"),
    # ----- aggregation ------------------------------------------------------------------------------------------
    Mutation("aggregate-eqben-columns", f"{BENCH}/eqben.py", '::eqben{s}::group")', '::eqben{s}::text")',
             ("tests/evaluation/test_aggregate.py", TRUTH, "-k", "eqben or aggregate"),
             "the EqBen column averages the text scores instead of the group scores"),
    Mutation("aggregate-valse-groups", f"{BENCH}/valse.py", "for p in group) for group in GROUPS)",
             "for p in PIECES) for group in GROUPS)", ("tests/evaluation/test_aggregate.py", TRUTH, "-k", "valse"),
             "the VALSE column averages the 11 pieces instead of the 7 groups"),
    Mutation("aggregate-sugarcrepe-unweighted", f"{BENCH}/sugarcrepe.py", "{s: SIZES[s] for s in subs}",
             "{s: 1 for s in subs}", ("tests/evaluation/test_aggregate.py", TRUTH, "-k", "sugarcrepe or aggregate"),
             "the SugarCrepe categories average their subsets instead of pooling over the published sizes"),
    Mutation("aggregate-headline-drops-a-column", "src/fsc_clip/evaluation/aggregate.py", "names = tuple(names)",
             "names = tuple(names)[:-1]", ("tests/evaluation/test_aggregate.py",),
             "a headline mean (e.g. Comp) leaves out its last benchmark column"),
    # ----- losses -----------------------------------------------------------------------------------------------
    Mutation("loss-sign", "src/fsc_clip/losses/clip.py",
             "F.cross_entropy(logits_per_image, labels) + F.cross_entropy(logits_per_text, labels)",
             "F.cross_entropy(logits_per_image, labels) - F.cross_entropy(logits_per_text, labels)",
             ("tests/losses/test_loss_naive.py",), "the text-to-image CLIP loss term has its sign flipped"),
    # ----- training step and checkpoints ---------------------------------------------------------------------------
    Mutation("grad-clip-never", "src/fsc_clip/training/step.py",
             "grad_norm = torch.nn.utils.clip_grad_norm_(ctx.params, ctx.grad_clip_norm)",
             "grad_norm = torch.nn.utils.clip_grad_norm_(ctx.params, float('inf'))",
             ("tests/training/test_option_effects.py", "-k", "clip"), "gradient clipping never clips"),
    Mutation("logit-scale-clamp-removed", "src/fsc_clip/training/step.py", "ctx.logit_scale.clamp_(0, math.log(100))",
             "pass", ("tests/training/test_option_effects.py", "-k", "logit_scale"),
             "the logit scale is no longer clamped to ln 100 after the step"),
    Mutation("accumulation-logit-scale-grad", "src/fsc_clip/training/step.py",
             'inputs["logit_scale"] = scale / n + (scale - scale / n).detach()', 'inputs["logit_scale"] = scale',
             ("tests/training/test_accumulation.py",),
             "gradient accumulation counts the logit-scale gradient once per micro-batch (A times too large)"),
    Mutation("resume-oldest-first", "src/fsc_clip/training/checkpoint.py",
             "latest + [path for _, path in reversed(epoch_checkpoints(ckpt_dir))]",
             "latest + [path for _, path in epoch_checkpoints(ckpt_dir)]",
             ("tests/training/test_checkpoint.py", "tests/training/test_resume.py"),
             "resuming falls back to the oldest epoch checkpoint instead of the newest"),
    Mutation("retention-by-name", "src/fsc_clip/training/checkpoint.py", "return sorted(found)",
             "return sorted(found, key=lambda ep: ep[1].name)", ("tests/training/test_checkpoint.py",),
             "checkpoint retention sorts epoch files by name (epoch_10 < epoch_2)"),
)  # fmt: skip


def snapshot(dest: Path) -> None:
    """Copy the parts of the working tree the tests need (no caches, no virtual environment)."""
    ignore = shutil.ignore_patterns("__pycache__", ".pytest_cache", "*.pyc", ".mypy_cache", ".ruff_cache")
    for name in COPIED:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=ignore)
        elif src.is_file():
            shutil.copy2(src, dest / name)


@dataclass
class Run:
    """One pytest run: status (passed / failed / no tests / timeout / error), seconds, last line, failed ids."""

    status: str
    seconds: float
    last: str
    failed: tuple[str, ...] = ()


def run_tests(copy: Path, args: tuple[str, ...], timeout: float, stop_first: bool = True,
              deselect: tuple[str, ...] = ()) -> Run:  # fmt: skip
    """Run pytest on the copy (``-x`` unless ``stop_first`` is False), deselecting the given test ids."""
    env = {**os.environ, "PYTHONPATH": str(copy / "src"), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    cmd = [sys.executable, "-m", "pytest", "-q", "-rfE", "-p", "no:cacheprovider", *(["-x"] if stop_first else [])]
    cmd += [*args, *(f"--deselect={d}" for d in deselect)]
    start = time.monotonic()
    try:
        proc = subprocess.run(cmd, cwd=copy, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return Run("timeout", time.monotonic() - start, "")
    lines = [x for x in (proc.stdout + proc.stderr).splitlines() if x.strip()]
    failed = tuple(m.group(2) for x in lines if (m := re.match(r"^(FAILED|ERROR) (\S+)", x)))
    status = {0: "passed", 1: "failed", 5: "no tests"}.get(proc.returncode, f"error (rc {proc.returncode})")
    return Run(status, time.monotonic() - start, lines[-1] if lines else "", failed)


def baseline(copy: Path, args: tuple[str, ...], timeout: float) -> tuple[Run, tuple[str, ...]]:
    """The subset without any planted bug. Tests that already fail there (another change in progress) are
    deselected for the mutation runs, so that only a test the bug breaks counts as catching it."""
    run = run_tests(copy, args, timeout, stop_first=False)
    if run.status == "failed" and run.failed:
        again = run_tests(copy, args, timeout, deselect=run.failed)
        return Run(again.status, run.seconds + again.seconds, again.last, run.failed), run.failed
    return run, ()


def check_import(copy: Path) -> None:
    """The copy's package must shadow the installed (editable) one."""
    env = {**os.environ, "PYTHONPATH": str(copy / "src")}
    out = subprocess.run([sys.executable, "-c", "import fsc_clip; print(fsc_clip.__file__)"], env=env,
                         capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    if not out.startswith(str(copy)):
        raise SystemExit(f"PYTHONPATH does not shadow the installed fsc_clip ({out}); cannot test the copy")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("only", nargs="*", help="run only mutations whose name contains one of these words")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds per pytest run (default 180)")
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "results" / "mutations.json")
    args = parser.parse_args(argv)
    selected = [m for m in MUTATIONS if not args.only or any(w in m.name for w in args.only)]
    results = []
    with tempfile.TemporaryDirectory(prefix="fsc_mutations_") as tmp:
        copy = Path(tmp) / "tree"
        snapshot(copy)
        check_import(copy)
        baselines: dict[tuple[str, ...], tuple[Run, tuple[str, ...]]] = {}
        for m in selected:
            target = copy / m.file
            original = target.read_text(encoding="utf-8") if target.is_file() else ""
            row = {**asdict(m), "tests": " ".join(m.tests), "status": "", "seconds": 0.0, "detail": "",
                   "baseline_failures": []}  # fmt: skip
            if m.find not in original:
                row.update(status="target missing", detail=f"text not found in {m.file}")
                results.append(row)
                print(f"{m.name:34s} target missing", flush=True)
                continue
            if m.tests not in baselines:
                baselines[m.tests] = baseline(copy, m.tests, args.timeout)
            base, skip = baselines[m.tests]
            row["baseline_failures"] = list(skip)
            if base.status != "passed":
                row.update(status=f"baseline {base.status}", seconds=round(base.seconds, 1), detail=base.last)
                results.append(row)
                print(f"{m.name:34s} baseline {base.status}: {base.last}", flush=True)
                continue
            target.write_text(original.replace(m.find, m.replace, 1), encoding="utf-8")
            try:
                run = run_tests(copy, m.tests, args.timeout, deselect=skip)
            finally:
                target.write_text(original, encoding="utf-8")
            verdict = {"failed": "caught", "passed": "SURVIVED"}.get(run.status, run.status)
            note = f" ({len(skip)} failing before the bug, deselected)" if skip else ""
            row.update(status=verdict, seconds=round(run.seconds, 1), detail=run.last + note)
            results.append(row)
            print(f"{m.name:34s} {verdict:10s} {run.seconds:6.1f}s  {run.last}{note}", flush=True)
    print_table(results)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(REPO / "src"))
    from fsc_clip.fileio import write_json

    write_json(args.output, {"mutations": results, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    print(f"wrote {args.output}")
    return 1 if any(r["status"] in ("SURVIVED", "target missing") for r in results) else 0


def print_table(results: list[dict]) -> None:
    w = max([len(r["name"]) for r in results] + [8])
    print(f"\n| {'mutation':{w}s} | {'result':16s} | {'s':>6s} | test subset")
    print(f"|{'-' * (w + 2)}|{'-' * 18}|{'-' * 8}|{'-' * 40}")
    for r in results:
        print(f"| {r['name']:{w}s} | {r['status']:16s} | {r['seconds']:6.1f} | {r['tests']}")
    caught = sum(r["status"] == "caught" for r in results)
    print(f"\n{caught} of {len(results)} caught")


if __name__ == "__main__":
    raise SystemExit(main())
