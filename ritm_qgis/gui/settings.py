"""The dock's settings, persisted in QgsSettings under ``ritm_qgis/``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from qgis.core import QgsSettings

from ritm_qgis.core.defaults import MASK_THRESHOLD

PREFIX = "ritm_qgis/maptool/"


@dataclass(frozen=True)
class ToolSettings:
    model: str = ""  # a name of the model list or a checkpoint file; empty: the default (catalog.default_model)
    device: str = "auto"  # auto | cpu | cuda:N (engine/runtime/device.device_choices)
    threshold: float = MASK_THRESHOLD
    simplify_px: float = 1.0  # simplification tolerance, raster pixels
    regularize: bool = True  # square outlines shaped like buildings (regularize.square_building)
    min_area_m2: float = 2.0
    output_path: str = ""  # empty: footprints.gpkg beside the project (see output.default_output_path)
    stretch: str = "layer"  # what the model sees: layer (as drawn) | percentile | minmax | LOW,HIGH
    label: str = ""  # written to the 'label' field of each accepted building

    def outline(self):
        from ritm_qgis.engine.interactive.raster_session import OutlineSettings

        return OutlineSettings(threshold=self.threshold, simplify_px=self.simplify_px,
                               regularize=self.regularize, min_area_m2=self.min_area_m2)


def load_settings(settings: QgsSettings | None = None) -> ToolSettings:
    s = settings or QgsSettings()
    values = {}
    for f in fields(ToolSettings):
        try:  # QgsSettings converts stored text ("true", "0.5") to the field's type
            values[f.name] = s.value(PREFIX + f.name, f.default, type=type(f.default))
        except (TypeError, ValueError):
            values[f.name] = f.default
    return ToolSettings(**values)


def save_settings(tool_settings: ToolSettings, settings: QgsSettings | None = None) -> None:
    s = settings or QgsSettings()
    for name, value in asdict(tool_settings).items():
        s.setValue(PREFIX + name, value)
