"""Downloading a model of the list inside QGIS: a ``QgsTask`` on QGIS's own network stack.

Every download inside QGIS goes through here: the dock adds the task to QGIS's task manager, and a
Processing algorithm runs it in its own thread (``download_in_qgis``, the fetch function it gives the
engine's ``choices.model_spec``). The command line, outside QGIS, downloads with urllib
(``models/weights.download``). QGIS glue shared by ``gui`` and ``algorithms``, one layer below them.

The request goes through ``QgsNetworkAccessManager`` (the task thread's instance), so the user's
proxy, SSL and authentication settings apply, as for any other download QGIS makes. The task shows
in QGIS's task manager with its progress and can be cancelled there or from the dock. Bytes are
streamed into ``NAME.pth.part`` as they arrive; the file takes its name only once it is complete
and matches its published digest. A cancelled, failed or mismatching download leaves no file.
The rules of every weights download apply here too (``ritm_qgis/models/download_policy.py``): the
``.part`` file is created fresh, never through a link; each redirect is checked (https, or http to
the configured origin) before it is followed; the size is capped and a too slow transfer stopped.
"""

from __future__ import annotations

import os
from pathlib import Path

from qgis.core import QgsNetworkAccessManager, QgsTask
from qgis.PyQt import sip
from qgis.PyQt.QtCore import QEventLoop, QTimer, QUrl, pyqtSignal
from qgis.PyQt.QtNetwork import QNetworkReply, QNetworkRequest

MIRROR_SETTING = "ritm_qgis/weights_mirror"
STALL_TIMEOUT_MS = 60_000  # no byte for this long: the download fails with a message
CANCEL_POLL_MS = 100  # how often the transfer looks at the task's cancel flag


def mirror_setting() -> str:
    """The mirror base URL saved in QGIS's settings (empty: the environment's, else none)."""
    from qgis.core import QgsSettings

    return str(QgsSettings().value(MIRROR_SETTING, "") or "").strip()


def save_mirror_setting(url: str) -> None:
    from qgis.core import QgsSettings

    QgsSettings().setValue(MIRROR_SETTING, url.strip())


class ModelDownloadTask(QgsTask):
    """Fetch the model ``name`` of the list into the cache; ``error`` says why when it did not."""

    bytesReceived = pyqtSignal(int, int)  # noqa: N815 - received, total (0 when unknown); from the task's thread

    def __init__(self, name: str, mirror: str | None = None, directory: str | None = None, limits=None,
                 cancel=None):
        super().__init__(f"Downloading RITM model {name}", QgsTask.CanCancel)
        from dataclasses import replace

        from ritm_qgis.models.catalog import download_url, entry
        from ritm_qgis.models.download_policy import DownloadLimits, size_cap
        from ritm_qgis.models.weights import cached_path

        self.name = name
        self.entry = entry(name)
        if self.entry is None or not self.entry.downloadable:
            raise ValueError(f"{name!r} is not a downloadable model of the list")
        self.url = download_url(self.entry, mirror if mirror else None)
        self.dest = cached_path(name, directory)
        limits = limits or DownloadLimits()  # tests pass small thresholds
        self.limits = replace(limits, max_bytes=min(limits.max_bytes, size_cap(self.entry.size, self.entry.size_text)))
        self.error: str | None = None
        self.cancel_asked = cancel  # a callable polled besides the task's own flag (Processing's feedback)

    def stopped(self) -> bool:
        return self.isCanceled() or bool(self.cancel_asked is not None and self.cancel_asked())

    def _cancelled(self) -> str:
        return f"The download of {self.name} was cancelled; nothing was kept."

    def run(self) -> bool:  # the task's thread
        from ritm_qgis.core.errors import RitmError
        from ritm_qgis.models.cache_files import discard, open_fresh
        from ritm_qgis.models.catalog import check_digest, record_verified

        if self.stopped():
            self.error = self._cancelled()
            return False
        part = Path(str(self.dest) + ".part")
        try:
            part.parent.mkdir(parents=True, exist_ok=True)
            with open_fresh(part, part.parent) as out:
                self.error = self._transfer(out)
            if self.error is None and self.stopped():  # cancelled after the last byte: still nothing kept
                self.error = self._cancelled()
            if self.error is not None:
                return False
            mismatch = check_digest(part, self.entry.digest) if self.entry.digest else None
            if mismatch is not None:
                self.error = (f"The file downloaded from {self.url} is not the published {self.name} ({mismatch}, "
                              f"expected {self.entry.digest}); it was deleted.")
                return False
            os.replace(part, self.dest)
            record_verified(self.dest)
        except RitmError as exc:
            self.error = str(exc)
            return False
        except OSError as exc:
            self.error = f"Could not save {self.name} into {self.dest.parent} ({exc.strerror}); nothing was kept."
            return False
        finally:
            try:
                discard(part)
            except (RitmError, OSError):
                pass
        return True

    def _transfer(self, out) -> str | None:
        """Stream the URL into ``out`` in an event loop of this thread; the error sentence, or None.

        A timer looks at ``stopped()`` (the task's flag, or the cancel callable given) while the loop
        runs and aborts the reply: a cancel is a flag the task keeps, so one given before the request
        exists or between two signals is seen all the same (a signal-based cancel can arrive before there is a reply to abort)."""
        from ritm_qgis.core.errors import RitmError
        from ritm_qgis.models.download_policy import RateGuard, check_url, too_large_message

        request = QNetworkRequest(QUrl(self.url))
        # each redirect is shown to check_url before it is followed (Qt's own policies would follow ftp://)
        request.setAttribute(QNetworkRequest.RedirectPolicyAttribute, QNetworkRequest.UserVerifiedRedirectPolicy)
        request.setAttribute(QNetworkRequest.CacheLoadControlAttribute, QNetworkRequest.AlwaysNetwork)
        request.setAttribute(QNetworkRequest.CacheSaveControlAttribute, False)  # not a second copy in QGIS's cache
        request.setTransferTimeout(STALL_TIMEOUT_MS)  # Qt >= 5.15, as in QGIS 3.22's Debian and Windows builds
        reply = QgsNetworkAccessManager.instance().get(request)
        reply.setReadBufferSize(1 << 20)  # Qt reads no further ahead than this: the size cap holds back the sender
        loop = QEventLoop()
        write_failed: list[OSError] = []
        refused: list[str] = []  # the policy's sentence, when a rule stopped the transfer
        written = [0]
        guard = RateGuard(self.limits)

        def stop(sentence):
            if not refused:
                refused.append(sentence)
            reply.abort()

        def save_available():
            if not reply.isOpen():  # aborted: nothing more to read
                return
            data = reply.readAll()
            status = reply.attribute(QNetworkRequest.HttpStatusCodeAttribute)
            if not data or write_failed or refused or (status is not None and not 200 <= int(status) < 300):
                return  # an error page or a redirect's body is not the file
            if written[0] + len(data) > self.limits.max_bytes:
                stop(too_large_message(self.url, self.limits.max_bytes))
                return
            try:
                out.write(bytes(data))
                written[0] += len(data)
                guard.add(len(data))
            except OSError as exc:
                write_failed.append(exc)
                reply.abort()

        def check_redirect(url):
            try:
                check_url(url.toString(), [self.url])
            except RitmError as exc:
                stop(str(exc))
                return
            reply.redirectAllowed.emit()

        def look_at_cancel():
            if self.stopped() and reply.isRunning():
                reply.abort()
            elif reply.isRunning():
                slow = guard.too_slow()
                if slow:
                    stop(slow.replace("The download", f"The download from {self.url}", 1))

        def progress(received, total):
            if total > 0:
                self.setProgress(100.0 * received / total)
            self.bytesReceived.emit(int(received), int(max(total, 0)))

        reply.readyRead.connect(save_available)
        reply.redirected.connect(check_redirect)
        reply.downloadProgress.connect(progress)
        reply.finished.connect(loop.quit)
        poll = QTimer()
        poll.setInterval(CANCEL_POLL_MS)
        poll.timeout.connect(look_at_cancel)
        poll.start()
        try:
            look_at_cancel()
            if not reply.isFinished():
                loop.exec_()
            save_available()  # what arrived with the end of the reply
            if write_failed:
                raise write_failed[0]
            if self.stopped():
                return self._cancelled()
            status = reply.attribute(QNetworkRequest.HttpStatusCodeAttribute)
            location = bytes(reply.rawHeader(b"Location")).decode("latin-1")
            if not refused and location and status is not None and 300 <= int(status) < 400:
                # a redirect Qt ended by itself (ftp://: "unknown protocol"), told in the policy's words
                check_redirect(reply.url().resolved(QUrl(location)))
            if refused:
                return refused[0]
            return self._reply_error(reply, written[0])
        finally:
            poll.stop()
            sip.delete(reply)  # this pool thread runs no event loop that would honour deleteLater()

    def _reply_error(self, reply, written: int) -> str | None:
        status = reply.attribute(QNetworkRequest.HttpStatusCodeAttribute)
        code = reply.error()
        expected = reply.header(QNetworkRequest.ContentLengthHeader)
        cut = expected is not None and int(expected) != written
        if code == QNetworkReply.NoError and (status is None or 200 <= int(status) < 300) and not cut:
            return None
        if cut and (code == QNetworkReply.NoError or code == QNetworkReply.RemoteHostClosedError):
            why = f"the connection closed after {written} of {int(expected)} bytes"
        elif code == QNetworkReply.OperationCanceledError:  # not the user's cancel: a stall timeout aborted it
            why = "the transfer stalled: no data came in time"
        elif status is not None and not 200 <= int(status) < 300:
            reason = reply.attribute(QNetworkRequest.HttpReasonPhraseAttribute) or ""
            why = f"HTTP {int(status)} {reason}".strip()
        else:
            why = reply.errorString().strip() or "no response"
        return (f"Could not download {self.name} from {self.url} ({why}); "
                "check the network or proxy settings, or set a mirror.")


def download_in_qgis(name: str, progress=None, cancel=None) -> None:
    """Download the listed model ``name`` now, in this thread, on QGIS's network stack (its proxy,
    SSL and authentication settings; the mirror saved for the dock); RitmError with the task's
    sentence when it does not arrive. ``progress(received, total)``; ``cancel()`` True stops it."""
    from ritm_qgis.core.errors import RitmError

    task = ModelDownloadTask(name, mirror=mirror_setting() or None, cancel=cancel)
    if progress is not None:
        task.bytesReceived.connect(lambda received, total: progress(received, total or None))
    if not task.run():
        raise RitmError(task.error or f"The download of {name} failed; nothing was kept.")
