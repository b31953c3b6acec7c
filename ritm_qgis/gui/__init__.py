"""The interactive map tool (click a building, see its outline, accept), its dock and settings.

QGIS glue only: the per-click logic is ``ritm_qgis.engine.interactive.raster_session`` (no QGIS there).
"""
