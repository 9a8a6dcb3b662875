"""Atomic writes: the previous file survives a failed write, and errors name the path."""

from __future__ import annotations

import errno
import json
import os

import pytest

from fsc_clip import fileio
from fsc_clip.errors import OutputError, UserError


def test_write_json_roundtrip_leaves_no_temporary(tmp_path):
    target = tmp_path / "sub" / "result.json"
    fileio.write_json(target, {"a": 1})
    assert json.loads(target.read_text()) == {"a": 1}
    assert sorted(p.name for p in target.parent.iterdir()) == ["result.json"]


def test_failed_write_keeps_previous_file(tmp_path, monkeypatch):
    target = tmp_path / "report.html"
    fileio.write_text(target, "old")

    def full_disk(fd):  # fault injection at the OS boundary: what a full disk does to fsync
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OutputError) as info:
        fileio.write_text(target, "new" * 1000)
    assert str(target) in str(info.value) and "disk is full" in str(info.value)
    assert isinstance(info.value, UserError)
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]


def test_exception_inside_block_keeps_previous_file(tmp_path):
    target = tmp_path / "a.txt"
    fileio.write_text(target, "old")
    with pytest.raises(RuntimeError), fileio.atomic_write(target) as fh:
        fh.write("partial")
        raise RuntimeError("writer failed")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_write_with_binary_writer(tmp_path):
    target = tmp_path / "blob.bin"
    fileio.write_with(target, lambda fh: fh.write(b"\x00\x01"))
    assert target.read_bytes() == b"\x00\x01"


def test_unwritable_dir_is_detected_even_for_root(tmp_path):
    # A folder below a regular file cannot exist (ENOTDIR) whoever runs the test; chmod would not stop root.
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError) as info:
        fileio.ensure_writable_dir(blocker / "out", what="--out")
    assert "--out" in str(info.value) and str(blocker / "out") in str(info.value)
    with pytest.raises(OutputError, match="cannot write"):
        fileio.write_text(blocker / "out" / "x.json", "{}")


def test_writable_dir_is_created(tmp_path):
    out = fileio.ensure_writable_dir(tmp_path / "a" / "b")
    assert out.is_dir() and list(out.iterdir()) == []


def test_written_files_get_the_usual_permissions(tmp_path):
    target = tmp_path / "config.yaml"
    fileio.write_text(target, "a: 1\n")
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    assert target.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777
