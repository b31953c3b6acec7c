"""Progress bars on stderr for the command line (tqdm), fed by the engine's progress callbacks.

The engine reports either counts, ``progress(done, total)``, or a fraction with a message,
``progress(fraction, message)``; ``ProgressBar.counts`` and ``ProgressBar.fraction`` take each.
The bar appears at the first report, so a run that fails before any progress prints only its error.
"""

from __future__ import annotations

import sys

from tqdm import tqdm


class ProgressBar:
    def __init__(self, label: str, unit: str = "it", unit_scale: bool = False, enabled: bool = True):
        self.options = dict(desc=label, unit=unit, unit_scale=unit_scale, file=sys.stderr, dynamic_ncols=True)
        self.enabled = enabled
        self._bar = None

    @property
    def bar(self) -> tqdm:
        if self._bar is None:
            self._bar = tqdm(disable=not self.enabled, **self.options)
        return self._bar

    def counts(self, done: float, total: float | None) -> None:
        if total and self.bar.total != total:
            self.bar.total = total
        self.bar.update(done - self.bar.n)
        if total and done >= total:
            self.close()

    def fraction(self, fraction: float, message: str = "") -> None:
        if self.bar.total != 100:
            self.bar.total = 100
            self.bar.bar_format = "{desc} {percentage:5.1f}%|{bar}| {elapsed}<{remaining} {postfix}"
        self.bar.set_postfix_str(message, refresh=False)
        self.bar.update(min(100.0, 100.0 * fraction) - self.bar.n)

    def write(self, line: str) -> None:
        """A line above the bar (or alone when there is none yet)."""
        tqdm.write(line, file=sys.stderr)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
