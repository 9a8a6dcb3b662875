"""Every command against the conditions a user meets: exit code 2, one message naming the path, no traceback.

Commands run as subprocesses (``python -m fsc_clip.cli ...``) because the exit code and stderr are the point.

Unwritable folders: the tests run as root in CI, where ``chmod`` stops nothing. They use mechanisms that fail for
root too: a folder below a regular file (``ENOTDIR``), and, where the kernel lets this process create a user and
mount namespace (``unshare -rm``), a real read-only tmpfs (``EROFS``) and a real full one (``ENOSPC``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

TIMEOUT = 300


def fsc_clip(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k != "FSC_CLIP_DEBUG"}  # tracebacks only where asked
    full_env.update({"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", **(env or {})})
    return subprocess.run([sys.executable, "-m", "fsc_clip.cli", *args], capture_output=True, text=True,
                          timeout=TIMEOUT, env=full_env)  # fmt: skip


def assert_user_error(proc: subprocess.CompletedProcess, *named: str | Path) -> None:
    """Exit 2, no traceback, a message naming each of ``named``."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    for thing in named:
        assert str(thing) in proc.stderr, (str(thing), proc.stderr)


def write_winoground(root: Path, n: int = 3) -> Path:
    """A tiny Winoground in its released layout: data/examples.jsonl + data/images/<id>.png."""
    data = root / "winoground" / "data"
    (data / "images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    lines = []
    for i in range(n):
        for k in (0, 1):
            Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(data / "images" / f"ex_{i}_{k}.png")
        lines.append(json.dumps({"id": i, "image_0": f"ex_{i}_0", "image_1": f"ex_{i}_1", "caption_0": f"a dog {i}",
                                 "caption_1": f"a cat {i}", "tag": "Noun", "secondary_tag": "", "num_main_preds": 1,
                                 "collapsed_tag": "Object"}))  # fmt: skip
    (data / "examples.jsonl").write_text("\n".join(lines) + "\n")
    return root


def write_result(folder: Path, benchmark: str = "winoground") -> Path:
    """One result JSON as `fsc-clip eval` writes it."""
    folder.mkdir(parents=True, exist_ok=True)
    scores = {f"{benchmark}::{m}": 50.0 for m in ("text", "image", "group")}
    record = {"benchmark": benchmark, "model": {"name": "fsc-tiny", "pretrained": None, "label": "fsc-tiny/random"},
              "score": 50.0, "scores": scores, "counts": dict.fromkeys(scores, 3)}  # fmt: skip
    (folder / f"{benchmark}.json").write_text(json.dumps(record))
    return folder


@pytest.fixture
def below_a_file(tmp_path) -> Path:
    """A folder path that cannot be created, even by root: its parent is a regular file (ENOTDIR)."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    return blocker / "out"


EVAL = ("eval", "--model", "fsc-tiny", "--random-init", "--benchmarks", "winoground", "--no-progress")


# ----- unwritable output: detected before any work -------------------------------------------------------------
def test_eval_unwritable_output_is_refused_before_the_model_loads(tmp_path, below_a_file):
    # the weights file does not exist either: the output error coming first shows the check runs before loading
    proc = fsc_clip("eval", "--model", "fsc-tiny", "--pretrained", str(tmp_path / "missing.pt"), "--data-root",
                    str(tmp_path), "--output", str(below_a_file))  # fmt: skip
    assert_user_error(proc, below_a_file)
    assert "not writable" in proc.stderr and "missing.pt" not in proc.stderr


def test_report_unwritable_output(tmp_path, below_a_file):
    run = write_result(tmp_path / "run")
    assert_user_error(fsc_clip("report", str(run), "--output", str(below_a_file)), below_a_file)


def test_demo_unwritable_output_before_any_stage(below_a_file):
    proc = fsc_clip("demo", "--quick", "--no-progress", "--output", str(below_a_file))
    assert_user_error(proc, below_a_file)
    assert "demo stage" not in proc.stdout


# ----- missing inputs ------------------------------------------------------------------------------------------
def test_eval_missing_data_root(tmp_path):
    missing = tmp_path / "no-data"
    assert_user_error(fsc_clip(*EVAL, "--data-root", str(missing), "--output", str(tmp_path / "o")), missing)


def test_eval_missing_checkpoint(tmp_path):
    missing = tmp_path / "runs" / "gone"
    proc = fsc_clip("eval", "--checkpoint", str(missing), "--benchmarks", "winoground", "--data-root", str(tmp_path),
                    "--output", str(tmp_path / "o"))  # fmt: skip
    assert_user_error(proc, missing)


def test_eval_without_weights_says_how_to_choose(tmp_path):
    proc = fsc_clip("eval", "--model", "ViT-B-32", "--data-root", str(tmp_path), "--output", str(tmp_path / "o"))
    assert_user_error(proc, "--pretrained TAG", "--random-init")
    assert len(proc.stderr.strip().splitlines()) == 1


def test_report_missing_result_folder(tmp_path):
    missing = tmp_path / "results" / "nope"
    assert_user_error(fsc_clip("report", str(missing), "--output", str(tmp_path / "rep")), missing)


def test_list_unknown_kind():
    proc = fsc_clip("list", "benchmarkz")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "invalid choice: 'benchmarkz'" in proc.stderr


# ----- corrupt and malformed files -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("content", "why"),
    [('{"benchmark": "winoground", "scores": {"winogr', "not valid JSON"),
     ('{"benchmark": "winoground", "scores": [50.0]}', "field 'scores'")],
)  # fmt: skip
def test_report_bad_result_json_warns_or_fails_with_strict(tmp_path, content, why):
    run = write_result(tmp_path / "run", "sugarcrepe")
    bad = write_result(run, "winoground") / "winoground.json"
    bad.write_text(content)
    proc = fsc_clip("report", str(run), "--output", str(tmp_path / "rep"))
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert str(bad) in proc.stderr and why in proc.stderr and "--strict" in proc.stderr
    assert_user_error(fsc_clip("report", str(run), "--output", str(tmp_path / "rep"), "--strict"), bad, why)


def test_report_baseline_not_exact(tmp_path):
    runs = [write_result(tmp_path / name) for name in ("clip-b32", "clip-b32-lora")]
    proc = fsc_clip("report", *map(str, runs), "--output", str(tmp_path / "rep"), "--baseline", "b32")
    assert_user_error(proc, "'clip-b32'", "'clip-b32-lora'")


def test_eval_schema_error_names_file_record_and_field(tmp_path):
    data = write_winoground(tmp_path / "data")
    examples = data / "winoground" / "data" / "examples.jsonl"
    record = json.loads(examples.read_text().splitlines()[1])
    del record["image_1"]
    lines = examples.read_text().splitlines()
    examples.write_text("\n".join([lines[0], json.dumps(record), lines[2]]) + "\n")
    proc = fsc_clip(*EVAL, "--data-root", str(data), "--output", str(tmp_path / "o"))
    assert_user_error(proc, examples, "image_1")


def test_eval_corrupt_result_in_output_is_recomputed_and_kept(tmp_path):
    data = write_winoground(tmp_path / "data")
    out = tmp_path / "o"
    out.mkdir()
    (out / "winoground.json").write_text('{"benchmark": "winoground", "sco')  # torn by an old non-atomic writer
    proc = fsc_clip(*EVAL, "--data-root", str(data), "--output", str(out))
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert str(out / "winoground.json") in proc.stderr and "not a readable result JSON" in proc.stderr
    assert json.loads((out / "winoground.json").read_text())["benchmark"] == "winoground"
    assert [p.name.split("-")[0] for p in out.glob("winoground.json.unreadable-*")] == ["winoground.json.unreadable"]


def test_eval_other_weights_into_the_same_folder_are_refused(tmp_path):
    """Two random tiny models (same architecture, seeds 1 and 2) into one folder: never "result exists, skipping"."""
    data, out = write_winoground(tmp_path / "data"), tmp_path / "o"
    first = fsc_clip(*EVAL, "--seed", "1", "--data-root", str(data), "--output", str(out))
    assert first.returncode == 0, first.stderr
    before = (out / "winoground.json").read_bytes()
    proc = fsc_clip(*EVAL, "--seed", "2", "--data-root", str(data), "--output", str(out))
    assert_user_error(proc, out / "winoground.json", "other weights")
    assert "skipping" not in proc.stderr and (out / "winoground.json").read_bytes() == before
    again = fsc_clip(*EVAL, "--seed", "1", "--data-root", str(data), "--output", str(out))
    assert again.returncode == 0 and "for these weights and data, skipping" in again.stderr, again.stderr


# ----- the safety net in main ----------------------------------------------------------------------------------
SAFETY_NET = """
import errno, sys, types
from fsc_clip.cli import main as m
cmd = types.ModuleType("fake_cmd")
cmd.add_arguments = lambda parser: None
def run(args):
    raise OSError(getattr(errno, sys.argv[1]), "fake " + sys.argv[1], "/srv/shared/out/model.pt")
cmd.run = run
sys.modules["fake_cmd"] = cmd
m.COMMANDS["fake"] = ("fake_cmd", "a command that hits the file system")
sys.exit(m.main(["fake"]))
"""


@pytest.mark.parametrize("code", ["EROFS", "EACCES", "EPERM", "ENOSPC", "EDQUOT"])
def test_file_system_errors_escaping_a_command_are_one_line(code):
    env = {k: v for k, v in os.environ.items() if k != "FSC_CLIP_DEBUG"}
    proc = subprocess.run([sys.executable, "-c", SAFETY_NET, code], capture_output=True, text=True, env=env,
                          timeout=TIMEOUT)  # fmt: skip
    assert_user_error(proc, "/srv/shared/out/model.pt")
    assert len(proc.stderr.strip().splitlines()) == 1
    debug = subprocess.run([sys.executable, "-c", SAFETY_NET, code], capture_output=True, text=True, timeout=TIMEOUT,
                           env={**env, "FSC_CLIP_DEBUG": "1"})  # fmt: skip
    assert debug.returncode != 0 and "Traceback" in debug.stderr


def test_other_os_errors_are_not_hidden():
    """Any other OSError (here EBADF, a bug rather than the user's file system) keeps its traceback."""
    proc = subprocess.run([sys.executable, "-c", SAFETY_NET, "EBADF"], capture_output=True, text=True,
                          timeout=TIMEOUT)  # fmt: skip
    assert proc.returncode == 1 and "Traceback" in proc.stderr


# ----- a real read-only and a real full file system (when this kernel lets us mount one) -------------------------
def _can_mount_tmpfs(tmp_path: Path) -> bool:
    unshare = shutil.which("unshare")
    if unshare is None:
        return False
    probe = tmp_path / "probe"
    probe.mkdir()
    cmd = [unshare, "-rm", "sh", "-c", f"mount -t tmpfs -o size=64k tmpfs '{probe}'"]
    return subprocess.run(cmd, capture_output=True, timeout=60).returncode == 0


def in_namespace(script: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PY": sys.executable}
    env.pop("FSC_CLIP_DEBUG", None)
    return subprocess.run([shutil.which("unshare") or "unshare", "-rm", "sh", "-c", script], capture_output=True,
                          text=True, timeout=TIMEOUT, env=env)  # fmt: skip


@pytest.fixture
def mountable(tmp_path):
    if not _can_mount_tmpfs(tmp_path):
        pytest.skip("cannot mount a tmpfs here (no user/mount namespaces)")


def test_read_only_file_system(tmp_path, mountable):
    run, disk, data = write_result(tmp_path / "run"), tmp_path / "ro", write_winoground(tmp_path / "data")
    disk.mkdir()
    script = (f"mount -t tmpfs -o ro,size=1m tmpfs '{disk}' || exit 99\n"
              f"\"$PY\" -m fsc_clip.cli report '{run}' --output '{disk}/rep'; echo \"report rc=$?\" >&2\n"
              f"\"$PY\" -m fsc_clip.cli eval --model fsc-tiny --random-init --benchmarks winoground "
              f"--data-root '{data}' --output '{disk}/res' --no-progress; echo \"eval rc=$?\" >&2\n")  # fmt: skip
    proc = in_namespace(script)
    assert "report rc=2" in proc.stderr and "eval rc=2" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and "read-only" in proc.stderr
    assert f"{disk}/rep" in proc.stderr and f"{disk}/res" in proc.stderr


def test_full_disk_keeps_the_previous_report(tmp_path, mountable):
    runs = [write_result(tmp_path / "a"), write_result(tmp_path / "b")]
    disk = tmp_path / "small"
    disk.mkdir()
    rep = f"{disk}/rep"
    script = (f"mount -t tmpfs -o size=2m tmpfs '{disk}' || exit 99\n"
              f"\"$PY\" -m fsc_clip.cli report '{runs[0]}' --output '{rep}' >/dev/null || exit 98\n"
              f"sha256sum '{rep}/report.html' >&2\n"
              f"head -c 4000000 /dev/zero > '{disk}/filler' 2>/dev/null\n"  # fill the disk
              f"\"$PY\" -m fsc_clip.cli report '{runs[0]}' '{runs[1]}' --output '{rep}'; echo \"rc=$?\" >&2\n"
              f"sha256sum '{rep}/report.html' >&2\n"
              f"ls -a '{rep}' >&2\n")  # fmt: skip
    proc = in_namespace(script)
    assert proc.returncode == 0, proc.stderr
    assert "rc=2" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert "the disk is full" in proc.stderr and rep in proc.stderr
    sums = [line.split()[0] for line in proc.stderr.splitlines() if line.endswith("/report.html")]  # sha256sum
    assert len(sums) == 2 and sums[0] == sums[1], proc.stderr  # the previous report.html, byte for byte
    assert ".tmp" not in proc.stderr.split("rc=2")[1]  # no temporary file left behind
