"""The dock's download task on its own, in QGIS's task manager against a loopback server: a cancel
ends it whenever it comes (before the task runs, while the request waits for its first byte, in the
middle of the transfer) within a bounded time and leaves no file; redirects are followed; an HTTP
error is one sentence; the bytes reach the cache through a ``.part`` file only when complete."""

import hashlib
from functools import partial

import pytest
from qgis.core import QgsApplication

import qgis_events
from loopback import LoopbackServer
from tiny_model import tiny_checkpoint

from ritm_qgis.qgis_download import ModelDownloadTask
from ritm_qgis.models import catalog

pytestmark = pytest.mark.qgis

CANCEL_ENDS_WITHIN_S = 30.0  # the task looks at its cancel flag every 0.1 s; the rest is a loaded machine's slack
wait_for = partial(qgis_events.wait_for, timeout=90.0)


@pytest.fixture
def remote(tmp_path, monkeypatch, qgis_app):
    """A downloadable entry 'test-task' served by a loopback server (also under a redirect)."""
    monkeypatch.delenv(catalog.MIRROR_ENV, raising=False)
    payload = open(tiny_checkpoint(tmp_path), "rb").read()
    blob = hashlib.sha1(b"blob %d\0" % len(payload) + payload).hexdigest()
    with LoopbackServer({"/t.pth": payload}) as server:
        server.state.redirects["/moved.pth"] = "/t.pth"
        entry = catalog.ModelEntry("test-task", "hrnet_tiny", "tests", "a test entry", "paper",
                                   server.base + "/t.pth", f"git-blob-sha1:{blob}")
        catalog.add_entry(entry)
        try:
            yield server, payload
        finally:
            server.state.release.set()  # never leave a response waiting
            catalog.remove_entry(entry.name)


def start(tmp_path, mirror=None):
    """The task, added to QGIS's task manager, and the list its end is recorded in."""
    task = ModelDownloadTask("test-task", mirror=mirror, directory=str(tmp_path / "cache"))
    ended = []
    task.taskCompleted.connect(lambda: ended.append("completed"))
    task.taskTerminated.connect(lambda: ended.append("terminated"))
    received = []
    task.bytesReceived.connect(lambda got, total: received.append(got))
    QgsApplication.taskManager().addTask(task)
    return task, ended, received


def cache_files(tmp_path):
    folder = tmp_path / "cache"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


@pytest.mark.parametrize("when", ["as soon as it is added", "while the request waits for its first byte"])
def test_a_cancel_before_any_byte_ends_the_task_and_keeps_nothing(remote, tmp_path, when):
    server, _ = remote
    server.state.mode = "wait"  # the server answers nothing until released (never, here)
    task, ended, received = start(tmp_path)
    if when != "as soon as it is added":
        wait_for(lambda: server.state.requests)  # the task runs and its request reached the server
    task.cancel()
    qgis_events.wait_for(lambda: ended, timeout=CANCEL_ENDS_WITHIN_S)
    assert ended == ["terminated"] and not any(received)  # not a byte came
    assert task.error is None or task.error == "The download of test-task was cancelled; nothing was kept."
    assert not server.state.release.is_set()  # ended by the cancel, not by the server answering
    assert cache_files(tmp_path) == []


def test_a_cancel_mid_transfer_ends_the_task_and_keeps_nothing(remote, tmp_path):
    server, payload = remote
    server.state.mode = "hold"  # half the file, then nothing until released (never, here)
    task, ended, received = start(tmp_path)
    wait_for(lambda: received and received[-1] > 0)
    part = tmp_path / "cache" / "test-task.pth.part"
    wait_for(part.exists)  # the bytes go to disk as they arrive, not into memory
    task.cancel()
    qgis_events.wait_for(lambda: ended, timeout=CANCEL_ENDS_WITHIN_S)
    assert ended == ["terminated"]
    assert task.error == "The download of test-task was cancelled; nothing was kept."
    assert 0 < max(received) < len(payload) and not server.state.sent_all
    assert cache_files(tmp_path) == []


def test_a_redirect_is_followed_and_the_file_verified(remote, tmp_path):
    server, payload = remote
    catalog.remove_entry("test-task")
    blob = hashlib.sha1(b"blob %d\0" % len(payload) + payload).hexdigest()
    catalog.add_entry(catalog.ModelEntry("test-task", "hrnet_tiny", "tests", "a test entry", "paper",
                                         server.base + "/moved.pth", f"git-blob-sha1:{blob}"))
    task, ended, received = start(tmp_path)
    wait_for(lambda: ended)
    assert ended == ["completed"] and task.error is None
    assert [r[0] for r in server.state.requests] == ["/moved.pth", "/t.pth"]
    assert (tmp_path / "cache" / "test-task.pth").read_bytes() == payload
    assert cache_files(tmp_path) == ["test-task.pth", "test-task.pth.sha256"]
    assert received[-1] == len(payload)


def test_an_http_error_is_one_sentence_and_keeps_nothing(remote, tmp_path):
    server, _ = remote
    task, ended, _ = start(tmp_path, mirror=server.base + "/nowhere")
    wait_for(lambda: ended)
    assert ended == ["terminated"]
    url = f"{server.base}/nowhere/test-task.pth"
    assert task.error == (f"Could not download test-task from {url} (HTTP 404 Not Found); "
                          "check the network or proxy settings, or set a mirror.")
    assert cache_files(tmp_path) == []


def test_a_stalled_transfer_ends_with_a_sentence_and_keeps_nothing(remote, tmp_path, monkeypatch):
    from ritm_qgis import qgis_download as download_task

    server, _ = remote
    server.state.mode = "hold"  # half the file, then nothing
    monkeypatch.setattr(download_task, "STALL_TIMEOUT_MS", 1500)
    task, ended, received = start(tmp_path)
    wait_for(lambda: ended)
    assert ended == ["terminated"]
    assert task.error == (f"Could not download test-task from {server.base}/t.pth (the transfer stalled: no data "
                          "came in time); check the network or proxy settings, or set a mirror.")
    assert cache_files(tmp_path) == []


def test_a_connection_closed_early_is_one_sentence_and_keeps_nothing(remote, tmp_path):
    server, payload = remote
    server.state.mode = "truncate"  # promises the whole file, sends 40 %, hangs up
    task, ended, _ = start(tmp_path)
    wait_for(lambda: ended)
    assert ended == ["terminated"]
    sent = int(len(payload) * 0.4)
    assert task.error == (f"Could not download test-task from {server.base}/t.pth (the connection closed after "
                          f"{sent} of {len(payload)} bytes); check the network or proxy settings, or set a mirror.")
    assert cache_files(tmp_path) == []


# The rules every weights download follows (models/download_policy.py), here on QGIS's network stack.


def test_a_link_planted_at_the_part_file_is_not_written_through(remote, tmp_path):
    _, payload = remote
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"not the cache's to overwrite")
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "test-task.pth.part").symlink_to(outside)
    task, ended, _ = start(tmp_path)
    wait_for(lambda: ended)
    assert ended == ["completed"] and task.error is None
    assert outside.read_bytes() == b"not the cache's to overwrite"
    assert (tmp_path / "cache" / "test-task.pth").read_bytes() == payload
    assert not (tmp_path / "cache" / "test-task.pth").is_symlink()
    assert cache_files(tmp_path) == ["test-task.pth", "test-task.pth.sha256"]


@pytest.mark.parametrize("target", ["ftp://127.0.0.1:1/t.pth", "http://127.0.0.2:{port}/t.pth"])
def test_a_redirect_to_another_scheme_or_http_host_is_refused(remote, tmp_path, target):
    server, _ = remote
    port = server.base.rsplit(":", 1)[1]
    server.state.redirects["/mirror/test-task.pth"] = target.format(port=port)
    task, ended, _ = start(tmp_path, mirror=server.base + "/mirror")
    wait_for(lambda: ended)
    assert ended == ["terminated"]
    assert task.error == (f"Refusing to download from {target.format(port=port)}: only https:// addresses (and "
                          "http:// to the mirror or URL you configured) are allowed, also after a redirect.")
    assert [r[0] for r in server.state.requests] == ["/mirror/test-task.pth"]  # the redirect was not followed
    assert cache_files(tmp_path) == []


def test_an_endless_body_is_stopped_at_the_cap(remote, tmp_path):
    from ritm_qgis.models.download_policy import DownloadLimits

    server, _ = remote
    server.state.mode = "endless"
    task = ModelDownloadTask("test-task", directory=str(tmp_path / "cache"), limits=DownloadLimits(max_bytes=3_000_000))
    ended = []
    task.taskTerminated.connect(lambda: ended.append("terminated"))
    task.taskCompleted.connect(lambda: ended.append("completed"))
    QgsApplication.taskManager().addTask(task)
    wait_for(lambda: ended)
    assert ended == ["terminated"]
    assert task.error == (f"The download from {server.base}/t.pth was stopped after 3000000 bytes, more than the file "
                          "can be; the server is not sending the expected file (check the URL or mirror).")
    assert server.state.bytes_sent < 3_000_000 + (16 << 20)
    assert cache_files(tmp_path) == []


def test_a_trickle_is_stopped_by_the_minimum_rate(remote, tmp_path):
    from ritm_qgis.models.download_policy import DownloadLimits

    server, _ = remote
    server.state.mode = "trickle"  # one byte per 0.3 s
    limits = DownloadLimits(min_rate=100.0, rate_window_s=1.5)
    task = ModelDownloadTask("test-task", directory=str(tmp_path / "cache"), limits=limits)
    ended = []
    task.taskTerminated.connect(lambda: ended.append("terminated"))
    QgsApplication.taskManager().addTask(task)
    wait_for(lambda: ended)
    assert ended == ["terminated"] and task.error.startswith(f"The download from {server.base}/t.pth was stopped: ")
    assert "less than 100 bytes per second" in task.error and "choose a faster mirror" in task.error
    assert cache_files(tmp_path) == []
