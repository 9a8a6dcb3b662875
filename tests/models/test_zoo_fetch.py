"""``fsc-clip fetch``: resumable HTTPS download with sha256 check, against a local HTTP server started here."""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import threading

import pytest

from fsc_clip.cli.main import main
from fsc_clip.models.zoo import ZOO, ZooSource, get_entry
from fsc_clip.models.zoo.download import DownloadError, download_url, fetch_entry

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB, position-dependent content: a resume at the wrong offset shows


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    drop_after: int | None = None  # first response: close the connection after this many body bytes
    honour_range = True
    requests: list[str | None]


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *args) -> None:  # keep the test output quiet
        pass

    def do_GET(self) -> None:
        rng = self.headers.get("Range")
        self.server.requests.append(rng)
        start = int(rng.split("=")[1].rstrip("-")) if rng and self.server.honour_range else 0
        if start >= len(PAYLOAD):
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(PAYLOAD)}")
            self.end_headers()
            return
        body = PAYLOAD[start:]
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(PAYLOAD) - 1}/{len(PAYLOAD)}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.server.drop_after is not None:
            cut, self.server.drop_after = self.server.drop_after, None
            self.wfile.write(body[:cut])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)


@pytest.fixture()
def server():
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.requests = []
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()


def _url(srv) -> str:
    return f"http://127.0.0.1:{srv.server_address[1]}/clove_without_patching.pt"


SHA = hashlib.sha256(PAYLOAD).hexdigest()


def test_interrupted_download_resumes_and_verifies(tmp_path, server):
    dest = tmp_path / "zoo" / "m" / "w.pt"
    server.drop_after = 300_000
    with pytest.raises(DownloadError, match="resume"):
        download_url(_url(server), dest, SHA, timeout=10)
    part = dest.with_name("w.pt.part")
    assert part.stat().st_size == 300_000 and not dest.exists()
    assert download_url(_url(server), dest, SHA, timeout=10) == dest
    assert server.requests == [None, "bytes=300000-"]
    assert dest.read_bytes() == PAYLOAD and not part.exists()


def test_server_ignoring_range_restarts_cleanly(tmp_path, server):
    dest = tmp_path / "w.pt"
    dest.with_name("w.pt.part").write_bytes(b"garbage-prefix")
    server.honour_range = False
    download_url(_url(server), dest, SHA, timeout=10)
    assert dest.read_bytes() == PAYLOAD


def test_complete_part_file_is_accepted(tmp_path, server):
    dest = tmp_path / "w.pt"
    dest.with_name("w.pt.part").write_bytes(PAYLOAD)  # 416 from the server: nothing left to fetch
    download_url(_url(server), dest, SHA, timeout=10)
    assert dest.read_bytes() == PAYLOAD


def test_checksum_mismatch_deletes_and_fails(tmp_path, server):
    dest = tmp_path / "w.pt"
    with pytest.raises(DownloadError, match="sha256"):
        download_url(_url(server), dest, "0" * 64, timeout=10)
    assert not dest.exists() and not dest.with_name("w.pt.part").exists()


def test_fetch_command_url_entry_then_present(tmp_path, server, monkeypatch, capsys):
    """`fsc-clip fetch` of a URL entry lands in $FSC_CLIP_CACHE_DIR/zoo/<name>/; a second run finds it."""
    monkeypatch.setenv("FSC_CLIP_CACHE_DIR", str(tmp_path / "cache"))
    entry = dataclasses.replace(
        get_entry("negclip"),
        name="url-test-model",
        source=ZooSource(filename="w.pt", url=_url(server), sha256=SHA),
    )
    snapshot = ZOO.snapshot()
    ZOO.register(entry.name, entry)
    try:
        assert main(["fetch", "url-test-model"]) == 0
        target = tmp_path / "cache" / "zoo" / "url-test-model" / "w.pt"
        assert target.read_bytes() == PAYLOAD
        assert str(target) in capsys.readouterr().out
        assert fetch_entry(entry) == target and len(server.requests) == 1  # already present: no request
    finally:
        ZOO.restore(snapshot)


def test_fetch_google_drive_prints_manual_step(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("FSC_CLIP_CACHE_DIR", str(tmp_path))
    assert main(["fetch", "negclip"]) == 1
    out = capsys.readouterr().out
    assert "gdown 1ooVVPxB-tvptgmHlIMMFGV3Cg-IrhbRZ -O" in out and str(tmp_path / "zoo" / "negclip") in out


def test_fetch_unknown_name(capsys):
    assert main(["fetch", "negclp"]) == 2
    assert "Did you mean: negclip" in capsys.readouterr().err
