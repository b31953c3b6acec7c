"""Downloading a model of the list inside QGIS: a ``QgsTask`` on QGIS's own network stack.

``QgsBlockingNetworkRequest`` goes through ``QgsNetworkAccessManager``, so the user's proxy, SSL
and authentication settings apply, as for any other download QGIS makes. The task shows in QGIS's
task manager with its progress and can be cancelled there or from the dock. The file is written
to the cache only once it is complete and matches its published digest (``.part`` then rename);
a cancelled, failed or mismatching download leaves no file.
"""

from __future__ import annotations

import os
from pathlib import Path

from qgis.core import QgsBlockingNetworkRequest, QgsFeedback, QgsTask
from qgis.PyQt.QtCore import QUrl, pyqtSignal
from qgis.PyQt.QtNetwork import QNetworkRequest

MIRROR_SETTING = "ritm_qgis/weights_mirror"
STALL_TIMEOUT_MS = 60_000  # no byte for this long: the download fails with a message


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

    def __init__(self, name: str, mirror: str | None = None, directory: str | None = None):
        super().__init__(f"Downloading RITM model {name}", QgsTask.CanCancel)
        from ritm_qgis.models.catalog import download_url, entry
        from ritm_qgis.models.weights import cached_path

        self.name = name
        self.entry = entry(name)
        if self.entry is None or not self.entry.downloadable:
            raise ValueError(f"{name!r} is not a downloadable model of the list")
        self.url = download_url(self.entry, mirror if mirror else None)
        self.dest = cached_path(name, directory)
        self.error: str | None = None
        self._feedback = QgsFeedback()

    def cancel(self) -> None:
        self._feedback.cancel()
        super().cancel()

    def _progress(self, received, total) -> None:
        if total > 0:
            self.setProgress(100.0 * received / total)
        self.bytesReceived.emit(int(received), int(max(total, 0)))

    def run(self) -> bool:  # the task's thread
        from ritm_qgis.models.catalog import check_digest, record_verified

        request = QgsBlockingNetworkRequest()
        request.downloadProgress.connect(self._progress)
        net = QNetworkRequest(QUrl(self.url))
        if hasattr(net, "setTransferTimeout"):  # Qt >= 5.15: a stalled transfer ends in an error, not a hang
            net.setTransferTimeout(STALL_TIMEOUT_MS)
        code = request.get(net, True, self._feedback)
        if self.isCanceled() or self._feedback.isCanceled():
            self.error = f"The download of {self.name} was cancelled; nothing was kept."
            return False
        if code != QgsBlockingNetworkRequest.NoError:
            self.error = (f"Could not download {self.name} from {self.url} ({request.errorMessage().strip()}); "
                          "check the network or proxy settings, or set a mirror.")
            return False
        part = Path(str(self.dest) + ".part")
        try:
            part.parent.mkdir(parents=True, exist_ok=True)
            part.write_bytes(bytes(request.reply().content()))
            mismatch = check_digest(part, self.entry.digest) if self.entry.digest else None
            if mismatch is not None:
                self.error = (f"The file downloaded from {self.url} is not the published {self.name} ({mismatch}, "
                              f"expected {self.entry.digest}); it was deleted.")
                return False
            os.replace(part, self.dest)
            record_verified(self.dest)
        except OSError as exc:
            self.error = f"Could not save {self.name} into {self.dest.parent} ({exc.strerror}); nothing was kept."
            return False
        finally:
            if part.exists():
                part.unlink()
        return True
