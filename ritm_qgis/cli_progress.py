"""Progress bars on stderr for the command line (tqdm), fed by the engine's progress callbacks.

A ``ProgressBar`` is itself the engine's ``progress(done, total, message=None)`` callable.
The bar appears at the first report, so a run that fails before any progress prints only its error.
"""

from __future__ import annotations

import sys
import time

from tqdm import tqdm


class ProgressBar:
    def __init__(self, label: str, unit: str = "it", unit_scale: bool = False, enabled: bool = True):
        self.options = dict(desc=label, unit=unit, unit_scale=unit_scale, file=sys.stderr, dynamic_ncols=True)
        self.enabled = enabled
        self._bar = None
        self._started = time.time()

    @property
    def bar(self) -> tqdm:
        if self._bar is None:
            self._bar = tqdm(disable=not self.enabled, **self.options)
            self._bar.start_t = self._started  # rates and times count from the start of the work
        return self._bar

    def __call__(self, done: float, total: float | None, message: str | None = None) -> None:
        """The engine's ``progress(done, total, message)`` (``ritm_qgis.core.progress``)."""
        if total and self.bar.total != total:
            self.bar.total = total
        if message:
            self.bar.set_postfix_str(message, refresh=False)
        self.bar.update(done - self.bar.n)
        if total and done >= total:
            self.close()

    def write(self, line: str) -> None:
        """A line above the bar (or alone when there is none yet)."""
        tqdm.write(line, file=sys.stderr)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
