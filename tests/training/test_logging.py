"""metrics.jsonl appends survive torn lines; TensorBoard only when installed (one warning when asked for);
``--help`` of ``train`` and ``wise-ft`` describes every option with its default."""

from __future__ import annotations

import argparse
import errno
import json
import logging
import os
import sys
from pathlib import Path

import pytest
import yaml

from fsc_clip.cli.main import main
from fsc_clip.errors import OutputError
from fsc_clip.training.logger import RunLogger, append_jsonl, read_metrics, trim_metrics


def test_torn_last_line_is_skipped_and_the_next_record_starts_a_fresh_line(tmp_path: Path, caplog):
    path = tmp_path / "metrics.jsonl"
    append_jsonl(path, {"step": 1, "epoch": 1, "loss": 2.5})
    with path.open("a") as fh:
        fh.write('{"step": 2, "epoch": 1, "lo')  # what a crash in the middle of an append leaves
    append_jsonl(path, {"step": 2, "epoch": 1, "loss": 2.0})
    lines = path.read_text().splitlines()
    assert lines[1] == '{"step": 2, "epoch": 1, "lo' and json.loads(lines[2])["loss"] == 2.0
    with caplog.at_level(logging.WARNING):
        assert [r["step"] for r in read_metrics(path)] == [1, 2]
    assert f"{path} line 2 is not a complete JSON record" in caplog.text


def test_trim_keeps_each_step_once_for_a_resumed_run(tmp_path: Path):
    path = tmp_path / "metrics.jsonl"
    for step in (1, 2, 3):
        append_jsonl(path, {"step": step, "epoch": 1})
    append_jsonl(path, {"step": 3, "epoch": 1, "eval": {"x": 50.0}})
    with path.open("a") as fh:
        fh.write('{"step": 4')
    trim_metrics(path, 2)  # the checkpoint was at step 2: steps 3.. are redone
    assert path.read_text() == '{"step": 1, "epoch": 1}\n{"step": 2, "epoch": 1}\n'
    before = path.stat().st_mtime_ns
    trim_metrics(path, 2)
    assert path.stat().st_mtime_ns == before  # nothing to change: not rewritten


def test_full_disk_on_append_names_the_file(tmp_path: Path, monkeypatch):
    path = tmp_path / "metrics.jsonl"

    def full_disk(fd: int, data: object) -> int:  # fault injection at the OS boundary
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "write", full_disk)
    with pytest.raises(OutputError, match=r"metrics\.jsonl: the disk is full"):
        append_jsonl(path, {"step": 1})


def _logger(run: Path, tensorboard: bool | None) -> RunLogger:
    return RunLogger(run, enabled=True, total_steps=2, initial_step=0, progress=False, tensorboard=tensorboard)


def test_tensorboard_when_installed(tmp_path: Path):
    pytest.importorskip("tensorboard")
    log = _logger(tmp_path, None)
    log.step(1, 1, {"loss": 1.0}, write=True)
    log.close()
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    log = _logger(tmp_path / "off", False)
    log.close()
    assert not (tmp_path / "off" / "tensorboard").exists()


@pytest.mark.parametrize("asked", [True, None])
def test_tensorboard_missing_warns_once_only_when_asked(tmp_path: Path, monkeypatch, caplog, asked):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # makes the import fail as if not installed
    with caplog.at_level(logging.WARNING):
        log = _logger(tmp_path, asked)
        log.step(1, 1, {"loss": 1.0}, write=True)
        log.close()
    warnings = [r for r in caplog.records if "tensorboard" in r.getMessage()]
    assert len(warnings) == (1 if asked else 0)
    if asked:
        assert "pip install 'fsc-clip[tensorboard]'" in warnings[0].getMessage()
    assert not (tmp_path / "tensorboard").exists() and read_metrics(tmp_path / "metrics.jsonl")[0]["loss"] == 1.0


def _options(command: str) -> list[argparse.Action]:
    from fsc_clip.cli.main import COMMANDS

    module = __import__(COMMANDS[command][0], fromlist=["add_arguments"])
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    return [a for a in parser._actions if not isinstance(a, argparse._HelpAction)]


@pytest.mark.parametrize("command", ["train", "wise-ft"])
def test_every_option_has_help_with_its_default(command: str):
    options = _options(command)
    assert len(options) > (50 if command == "train" else 4)
    for action in options:
        text = action.help or ""
        assert "default:" in text or "required" in text, (action.option_strings, text)


def test_no_progress_and_report_to_tensorboard(capsys):
    argv = ["train", "--train-data", "x.tsv", "--no-progress", "--report-to", "tensorboard", "--print-config"]
    assert main(argv) == 0
    cfg = yaml.safe_load(capsys.readouterr().out)
    assert cfg["logging"]["progress"] is False and cfg["logging"]["tensorboard"] is True
    assert main(["train", "--train-data", "x.tsv", "--print-config"]) == 0
    cfg = yaml.safe_load(capsys.readouterr().out)
    assert cfg["logging"]["progress"] is True and cfg["logging"]["tensorboard"] is None
