"""The one list of stretches, the rule a user's choice becomes, and every text that lists them.

``_KINDS`` below has one line per kind (``stretch_kinds``; a plug-in's or a test's may be added
with ``register_stretch``). Everything that offers or dispatches on a stretch reads it: the rule
(``StretchRule``: its check and the label outputs record), ``parse_stretch``, the CLI's
``--stretch`` help (``cli_help``, ``cli_metavar``), Processing's parameter and help
(``processing_label``, ``help_sentence``), the dock's list (``dock_choices``) and the raster,
image and array paths of ``stretch.py``. Light to import (numpy only), for the glue.
"""

from __future__ import annotations

from dataclasses import dataclass

from ritm_qgis.core.errors import RitmError
from ritm_qgis.engine.geo import stretch_kinds
from ritm_qgis.engine.geo.stretch_kinds import StretchKind

DEFAULT = "percentile"  # of the CLI and Processing; the dock starts at 'layer'

_KINDS: dict[str, StretchKind] = {kind.name: kind for kind in (
    stretch_kinds.LAYER,
    stretch_kinds.PERCENTILE,
    stretch_kinds.MINMAX,
    stretch_kinds.FIXED,
)}


def register_stretch(kind: StretchKind) -> None:
    """Add a kind to the list (a plug-in's or a test's)."""
    if kind.name in _KINDS:
        raise ValueError(f"stretch {kind.name!r} is already registered")
    _KINDS[kind.name] = kind


def unregister_stretch(name: str) -> None:
    _KINDS.pop(name, None)


def stretch_kind(name: str) -> StretchKind:
    try:
        return _KINDS[name]
    except KeyError:
        raise RitmError(f"Unknown stretch '{name}'; use {cli_choices()}.") from None


def _typed() -> list[StretchKind]:
    return [k for k in _KINDS.values() if not k.from_glue]


def _either(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def cli_choices() -> str:
    """'percentile, minmax or LOW,HIGH': what can be typed outside QGIS."""
    return _either([k.typed_as() for k in _typed()])


def cli_metavar() -> str:
    return "{" + ",".join(k.typed_as() for k in _typed()) + "}"


def cli_help() -> str:
    """The help of the CLI's ``--stretch`` (argparse's '%' escaped)."""
    parts = [f"{k.typed_as()} ({'default: ' if k.name == DEFAULT else ''}{k.description})" for k in _typed()]
    text = ("how an image that is not 8-bit becomes the model's 8-bit input: " + _either(parts)
            + "; recorded with the outputs")
    return text.replace("%", "%%")


def processing_label() -> str:
    """Processing's parameter label: 'Input stretch: layer, percentile, minmax or LOW,HIGH'."""
    return "Input stretch: " + _either([k.typed_as() for k in _KINDS.values()])


def help_sentence() -> str:
    """One sentence for Processing's help, every kind with its description."""
    parts = [f"'{k.typed_as()}' ({k.description}{', the default' if k.name == DEFAULT else ''})"
             for k in _KINDS.values()]
    return "Input stretch (what the model sees of a raster that is not 8-bit): " + _either(parts) + "."


def dock_choices() -> list[tuple[str, str]]:
    """(word, description) of the kinds chosen by their name alone; a typed range is typed in the combo."""
    return [(k.name, k.description) for k in _KINDS.values() if k.typed_as() == k.name]


def dock_tooltip() -> str:
    parts = [f"'{k.typed_as()}' ({k.description})" for k in _KINDS.values() if k.typed_as() == k.name]
    ranges = [k.typed_as() for k in _typed() if k.typed_as() != k.name]
    tail = f", or {' or '.join(ranges)} typed here" if ranges else ""
    return "How the raster becomes the model's 8-bit image: " + ", ".join(parts) + tail


@dataclass(frozen=True)
class StretchRule:
    """A user's choice with its numbers: ``kind`` (a registered name), ``low``/``high`` per band where
    the kind has numbers, ``bands`` (1-based) where it picks bands; ``label`` is what outputs record."""

    kind: str = DEFAULT
    low: tuple[float, ...] = ()
    high: tuple[float, ...] = ()
    bands: tuple[int, ...] | None = None

    def __post_init__(self):
        stretch_kind(self.kind).check(self)

    @property
    def label(self) -> str:
        """'percentile', 'minmax', '100,2000', 'layer:59-5982'."""
        return stretch_kind(self.kind).label(self)


def parse_stretch(text: str | StretchRule | None) -> StretchRule:
    """Typed text ('percentile', 'minmax', 'LOW,HIGH', ...) -> a rule (a rule is returned as it is)."""
    if isinstance(text, StretchRule):
        return text
    value = (text or DEFAULT).strip().lower()
    for kind in _typed():
        numbers = kind.parse(value)
        if numbers is not None:
            return StretchRule(kind.name, *numbers)
    raise RitmError(f"--stretch takes {cli_choices()}, not '{text}'.")


def only_typed(rule: StretchRule) -> StretchRule:
    """``rule`` when it can be applied outside QGIS (to an image file or an array); RitmError otherwise."""
    if stretch_kind(rule.kind).from_glue:
        raise RitmError(f"The '{rule.kind}' stretch exists only inside QGIS; use {cli_choices()}.")
    return rule
