"""Weights download against a loopback HTTP server started by the test (no real network)."""

import hashlib
import http.server
import threading

import pytest

from ritm_qgis import cli
from ritm_qgis.core.errors import RitmError
from ritm_qgis.models import OFFICIAL_WEIGHTS, cache_dir, cached_path, download, download_weights, list_models

PAYLOAD = bytes((i * 7 + i // 251) % 256 for i in range(300_000))
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


class _State:
    def __init__(self):
        self.mode = "normal"  # normal | truncate | ignore_range | missing
        self.requests = []  # (path, Range header) per request


class _Handler(http.server.BaseHTTPRequestHandler):
    state: _State

    def log_message(self, *args):  # keep test output clean
        pass

    def do_GET(self):  # noqa: N802 (http.server's name)
        st = self.server.state
        rng = self.headers.get("Range")
        st.requests.append((self.path, rng))
        if st.mode == "missing" or self.path != "/w.pth":
            self.send_error(404, "Not Found")
            return
        start = 0
        if rng and st.mode != "ignore_range":
            start = int(rng.split("=")[1].split("-")[0])
            if start >= len(PAYLOAD):
                self.send_error(416, "Range Not Satisfiable")
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(PAYLOAD) - 1}/{len(PAYLOAD)}")
        else:
            self.send_response(200)
        body = PAYLOAD[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if st.mode == "truncate":  # promise everything, send 40%, hang up
            self.wfile.write(body[: int(len(body) * 0.4)])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.state = _State()
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield httpd, f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_normal_download_with_progress_into_env_cache(server, tmp_path, monkeypatch):
    httpd, base = server
    monkeypatch.setenv("RITM_QGIS_CACHE", str(tmp_path / "cache"))
    seen = []
    result = download_weights("mine", url=base + "/w.pth", progress=lambda d, t: seen.append((d, t)))
    assert cache_dir() == tmp_path / "cache"
    assert result.path == tmp_path / "cache" / "mine.pth" == cached_path("mine")
    assert result.path.read_bytes() == PAYLOAD
    assert (result.sha256, result.size, result.resumed_from, result.skipped) == (PAYLOAD_SHA, len(PAYLOAD), 0, False)
    assert seen[0] == (0, len(PAYLOAD)) and seen[-1] == (len(PAYLOAD), len(PAYLOAD))
    assert all(a[0] <= b[0] for a, b in zip(seen, seen[1:]))
    # the SHA-256 note beside it lets later loads notice a damaged file
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["mine.pth", "mine.pth.sha256"]
    # second call: already there and matching -> no request
    n = len(httpd.state.requests)
    again = download_weights("mine", url=base + "/w.pth", sha256=PAYLOAD_SHA)
    assert again.skipped and len(httpd.state.requests) == n


def test_truncated_response_leaves_no_final_file_then_resumes(server, tmp_path):
    httpd, base = server
    dest = tmp_path / "w.pth"
    part = tmp_path / "w.pth.part"
    httpd.state.mode = "truncate"
    with pytest.raises(RitmError, match="incomplete|interrupted"):
        download(base + "/w.pth", dest, sha256=PAYLOAD_SHA)
    assert not dest.exists()
    have = part.stat().st_size
    assert 0 < have < len(PAYLOAD) and part.read_bytes() == PAYLOAD[:have]
    httpd.state.mode = "normal"
    result = download(base + "/w.pth", dest, sha256=PAYLOAD_SHA)
    assert httpd.state.requests[-1] == ("/w.pth", f"bytes={have}-")
    assert result.resumed_from == have
    assert dest.read_bytes() == PAYLOAD and result.sha256 == PAYLOAD_SHA
    assert not part.exists()


def test_server_ignoring_range_restarts_from_scratch(server, tmp_path):
    httpd, base = server
    dest = tmp_path / "w.pth"
    (tmp_path / "w.pth.part").write_bytes(b"garbage that is not a prefix")
    httpd.state.mode = "ignore_range"
    result = download(base + "/w.pth", dest)
    assert httpd.state.requests[-1][1] == "bytes=28-"
    assert result.resumed_from == 0 and dest.read_bytes() == PAYLOAD


def test_partial_file_longer_than_remote_restarts(server, tmp_path):
    httpd, base = server
    dest = tmp_path / "w.pth"
    (tmp_path / "w.pth.part").write_bytes(b"x" * (len(PAYLOAD) + 5))
    result = download(base + "/w.pth", dest, sha256=PAYLOAD_SHA)
    assert [r[1] for r in httpd.state.requests] == [f"bytes={len(PAYLOAD) + 5}-", None]
    assert dest.read_bytes() == PAYLOAD and result.resumed_from == 0


def test_wrong_checksum_deletes_everything(server, tmp_path):
    _, base = server
    dest = tmp_path / "w.pth"
    wrong = "0" * 64
    with pytest.raises(RitmError, match=f"SHA-256 {PAYLOAD_SHA}, expected {wrong}"):
        download(base + "/w.pth", dest, sha256=wrong)
    assert list(tmp_path.iterdir()) == []


def test_existing_file_with_wrong_checksum_is_replaced(server, tmp_path):
    httpd, base = server
    (tmp_path / "mine.pth").write_bytes(b"old")
    result = download_weights("mine", url=base + "/w.pth", sha256=PAYLOAD_SHA.upper(), directory=tmp_path)
    assert not result.skipped and (tmp_path / "mine.pth").read_bytes() == PAYLOAD


def test_http_errors_and_bad_arguments(server, tmp_path):
    httpd, base = server
    with pytest.raises(RitmError, match="HTTP 404"):
        download(base + "/missing.pth", tmp_path / "a.pth")
    with pytest.raises(RitmError, match="only https:// addresses"):
        download("file:///etc/passwd", tmp_path / "a.pth")
    with pytest.raises(RitmError, match="not a SHA-256"):
        download(base + "/w.pth", tmp_path / "a.pth", sha256="abc")
    with pytest.raises(RitmError, match="Unknown weights 'nope'"):
        download_weights("nope", directory=tmp_path)
    with pytest.raises(RitmError, match="plain name"):
        download_weights("../evil", url=base + "/w.pth", directory=tmp_path)
    with pytest.raises(RitmError, match="Could not reach"):
        # a port nobody listens on: the server's, after it is closed
        httpd2 = http.server.HTTPServer(("127.0.0.1", 0), _Handler)
        port = httpd2.server_address[1]
        httpd2.server_close()
        download(f"http://127.0.0.1:{port}/w.pth", tmp_path / "a.pth", timeout=5)
    assert not any(p.suffix == ".pth" for p in tmp_path.iterdir())


def test_official_table():
    assert set(OFFICIAL_WEIGHTS) == {"coco_lvis_h18s_itermask", "coco_lvis_h18_itermask", "coco_lvis_h32_itermask",
                                     "sbd_h18_itermask", "coco_lvis_h18_baseline"}
    for name, entry in OFFICIAL_WEIGHTS.items():
        assert entry.name == name and entry.arch in list_models()
        assert entry.url == f"https://github.com/saic-vul/ritm_interactive_segmentation/releases/download/v1.0/{name}.pth"
        assert entry.sha256 is None or len(entry.sha256) == 64


def test_cli_download_weights(server, tmp_path, capsys):
    _, base = server
    rc = cli.main(["download-weights", "mine", "--url", base + "/w.pth", "--cache-dir", str(tmp_path), "--quiet"])
    out = capsys.readouterr().out
    assert rc == 0 and f"sha256 {PAYLOAD_SHA}" in out and "no published checksum" in out
    assert (tmp_path / "mine.pth").read_bytes() == PAYLOAD
    rc = cli.main(["download-weights", "other", "--url", base + "/w.pth", "--cache-dir", str(tmp_path),
                   "--sha256", "f" * 64])
    err = capsys.readouterr().err
    assert rc == 1 and "download-weights: error: The file downloaded" in err
    assert not (tmp_path / "other.pth").exists()
