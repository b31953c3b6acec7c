"""The dock's settings, persisted in QgsSettings under ``ritm_qgis/``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from qgis.core import QgsSettings

from ritm_qgis.core.defaults import MASK_THRESHOLD

PREFIX = "ritm_qgis/maptool/"


@dataclass(frozen=True)
class ToolSettings:
    model: str = "grabcut"  # 'grabcut', an official model name, or a checkpoint file
    device: str = "auto"  # auto | cpu | cuda
    threshold: float = MASK_THRESHOLD
    simplify_px: float = 1.0  # simplification tolerance, raster pixels
    regularize: bool = False
    min_area_m2: float = 2.0
    output_path: str = ""  # empty: footprints.gpkg beside the project (see output.default_output_path)

    def outline(self):
        from ritm_qgis.engine.interactive.raster_session import OutlineSettings

        return OutlineSettings(threshold=self.threshold, simplify_px=self.simplify_px,
                               regularize=self.regularize, min_area_m2=self.min_area_m2)


def load_settings(settings: QgsSettings | None = None) -> ToolSettings:
    s = settings or QgsSettings()
    values = {}
    for f in fields(ToolSettings):
        default = f.default
        raw = s.value(PREFIX + f.name, default)
        try:
            if isinstance(default, bool):
                value = raw if isinstance(raw, bool) else str(raw).lower() in ("true", "1", "yes")
            elif isinstance(default, float):
                value = float(raw)
            else:
                value = str(raw) if raw is not None else default
        except (TypeError, ValueError):
            value = default
        values[f.name] = value
    return ToolSettings(**values)


def save_settings(tool_settings: ToolSettings, settings: QgsSettings | None = None) -> None:
    s = settings or QgsSettings()
    for name, value in asdict(tool_settings).items():
        s.setValue(PREFIX + name, value)
