"""The output footprint layer: a GeoPackage layer, created when missing, appended through the edit buffer.

Default path: ``footprints.gpkg`` beside the saved project; for a project never saved (and no
file chosen in the dock) a temporary layer ``footprints`` that the user can save. The layer is named
``footprints`` with the fields every RITM tool saves for a building (``outline_record.FIELDS``:
area_m2, perimeter_m, n_clicks, pixels, model, stretch, source, label (the dock's text box), ...),
one MultiPolygon per building, and the CRS of the raster the first building was drawn on (later
buildings are transformed to the layer's CRS). A layer the tool adds to the project is styled as
outlines over the imagery (a light translucent fill); an existing layer missing some of the fields
gets them, and one made for single polygons gets one feature per part.

When the project is saved while buildings sit in the temporary layer, the next accepted building
moves them into footprints.gpkg beside it (``move_temporary_buildings``), so the project has one
``footprints`` layer; the output layer is kept above rasters added later (``keep_on_top``).

Appends go through QGIS's edit buffer (``beginEditCommand`` / ``addFeatures``): when the layer is
already in edit mode it stays so (the user saves, or undoes with QGIS's own undo); otherwise the
tool opens an edit session, adds, and commits, so the features are on disk at once.
"""

from __future__ import annotations

import os

from qgis.core import (QgsCoordinateReferenceSystem, QgsCoordinateTransform, QgsFeature, QgsField, QgsFields,
                       QgsFillSymbol, QgsProject, QgsSingleSymbolRenderer, QgsVectorFileWriter, QgsVectorLayer,
                       QgsWkbTypes)
from qgis.PyQt.QtCore import QDateTime, QVariant

from ritm_qgis.core.errors import RitmError
from ritm_qgis.layer_source import layer_parts, source_of
from ritm_qgis.engine.interactive.outline_record import FIELDS, record_attributes

LAYER_NAME = "footprints"


REQUIRED = ("area_m2", "perimeter_m", "n_clicks", "model", "created")


def default_output_path(project: QgsProject | None = None) -> str:
    """footprints.gpkg beside the saved project; '' for a project never saved (a temporary layer)."""
    project = project or QgsProject.instance()
    if not project.fileName():
        return ""
    return os.path.join(project.homePath(), "footprints.gpkg")


_QT_TYPES = {"int": QVariant.Int, "float": QVariant.Double, "str": QVariant.String, "bool": QVariant.Bool,
             "datetime": QVariant.DateTime, "id": QVariant.String}


def output_fields() -> QgsFields:
    """``outline_record.FIELDS`` as QGIS fields."""
    fields = QgsFields()
    for name, kind in FIELDS.items():
        fields.append(QgsField(name, _QT_TYPES[kind]))
    return fields


def style_outlines(layer: QgsVectorLayer) -> None:
    """Outlines over the imagery: a bright edge and a light translucent fill that leaves the roofs visible."""
    symbol = QgsFillSymbol.createSimple({"color": "255,214,0,38", "outline_color": "255,214,0,255",
                                         "outline_width": "0.6", "outline_width_unit": "MM"})
    layer.setRenderer(QgsSingleSymbolRenderer(symbol))


def temporary_output_layer(crs: QgsCoordinateReferenceSystem) -> QgsVectorLayer:
    """A memory layer ``footprints`` with the output fields, in the project and styled."""
    layer = QgsVectorLayer(f"MultiPolygon?crs={crs.authid() or crs.toWkt()}", LAYER_NAME, "memory")
    if not crs.authid():
        layer.setCrs(crs)
    layer.dataProvider().addAttributes(output_fields().toList())
    layer.updateFields()
    style_outlines(layer)
    QgsProject.instance().addMapLayer(layer)
    return layer


def _add_missing_fields(layer: QgsVectorLayer, path: str) -> None:
    missing = [f for f in output_fields() if layer.fields().indexOf(f.name()) < 0]
    required = [f.name() for f in missing if f.name() in REQUIRED]
    if required:
        raise RitmError(f"The layer '{LAYER_NAME}' of '{path}' lacks the field(s) {', '.join(required)}; "
                        "choose another output file in the dock.")
    if not missing:
        return
    if not layer.dataProvider().addAttributes(missing):
        raise RitmError(f"Could not add the field(s) {', '.join(f.name() for f in missing)} to '{path}'; "
                        "choose another output file in the dock.")
    layer.updateFields()


def _create(path: str, crs: QgsCoordinateReferenceSystem) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)) or ".", exist_ok=True)
    options = QgsVectorFileWriter.SaveVectorOptions()
    options.driverName = "GPKG"
    options.layerName = LAYER_NAME
    if os.path.exists(path):
        options.actionOnExistingFile = QgsVectorFileWriter.CreateOrOverwriteLayer
    writer = QgsVectorFileWriter.create(path, output_fields(), QgsWkbTypes.MultiPolygon, crs,
                                        QgsProject.instance().transformContext(), options)
    err = writer.hasError()
    msg = writer.errorMessage()
    del writer  # closes the file
    if err != QgsVectorFileWriter.NoError:
        raise RitmError(f"Could not create the footprint layer in '{path}': {msg}")


def open_output_layer(path: str, crs: QgsCoordinateReferenceSystem, add_to_project: bool = True) -> QgsVectorLayer:
    """The ``footprints`` layer of ``path`` (created with ``crs`` when absent), the project's copy if loaded."""
    path = os.path.abspath(path)
    source = source_of(path, LAYER_NAME)
    for layer in QgsProject.instance().mapLayers().values():
        if isinstance(layer, QgsVectorLayer) and _same_source(layer, path):
            _add_missing_fields(layer, path)
            return layer
    has_layer = False
    if os.path.exists(path):
        probe = QgsVectorLayer(source, LAYER_NAME, "ogr")
        has_layer = probe.isValid()
    if not has_layer:
        _create(path, crs)
    layer = QgsVectorLayer(source, LAYER_NAME, "ogr")
    if not layer.isValid():
        raise RitmError(f"'{path}' has no usable '{LAYER_NAME}' layer; choose another output file in the dock.")
    _add_missing_fields(layer, path)
    if add_to_project:
        style_outlines(layer)
        QgsProject.instance().addMapLayer(layer)
    return layer


def move_temporary_buildings(temporary: QgsVectorLayer, layer: QgsVectorLayer) -> int:
    """Copy the buildings of the temporary layer into ``layer`` (the file that now has a place, once
    the project is saved) and take the temporary layer out of the project; returns how many moved.
    The temporary layer stays when the copy fails, so nothing is lost."""
    features = list(temporary.getFeatures())
    if features:
        transform = transform_to_layer(temporary.crs(), layer)
        copies = []
        for feature in features:
            copy = QgsFeature(layer.fields())
            geometry = feature.geometry()
            if transform is not None:
                geometry.transform(transform)
            copy.setGeometry(geometry)
            for field in temporary.fields():
                if layer.fields().indexOf(field.name()) >= 0:
                    copy[field.name()] = feature[field.name()]
            copies.append(copy)
        kept = "they are still in the temporary layer."
        add_through_edit_buffer(
            layer, copies, "RITM buildings of the temporary layer",
            cannot_edit=f"The buildings of the temporary layer could not be moved to '{layer.source()}'; {kept}",
            cannot_add=f"The buildings of the temporary layer could not be moved to '{layer.source()}'; {kept}",
            cannot_save=f"The buildings of the temporary layer could not be saved to '{layer.source()}' and are "
                        "still in the temporary layer")
    QgsProject.instance().removeMapLayer(temporary.id())
    return len(features)


def keep_on_top(layer: QgsVectorLayer | None) -> None:
    """Move the output layer to the top of its group, so rasters added later do not hide the outlines."""
    if layer is None:
        return
    try:
        node = QgsProject.instance().layerTreeRoot().findLayer(layer.id())
    except RuntimeError:  # the layer was deleted
        return
    parent = node.parent() if node is not None else None
    if parent is None or parent.children().index(node) == 0:
        return
    parent.insertChildNode(0, node.clone())
    parent.removeChildNode(node)


def _same_source(layer: QgsVectorLayer, path: str) -> bool:
    """Whether ``layer`` is the footprints layer of the file ``path`` (a file's only layer counts)."""
    file, name = layer_parts(layer)
    return bool(file) and os.path.abspath(file) == path and name in (None, LAYER_NAME)


def transform_to_layer(src_crs: QgsCoordinateReferenceSystem, layer: QgsVectorLayer):
    """The transform from ``src_crs`` into the layer's CRS (None when they are the same); a CRS
    missing on one side only is refused, since the outline would land in the wrong place."""
    if src_crs.isValid() != layer.crs().isValid():
        missing = f"the layer '{layer.name()}'" if src_crs.isValid() else "the raster"
        raise RitmError(f"Cannot add the building: {missing} has no CRS, so its coordinates cannot be matched; "
                        "assign a CRS or choose another output file in the dock.")
    if not src_crs.isValid() or src_crs == layer.crs():
        return None
    return QgsCoordinateTransform(src_crs, layer.crs(), QgsProject.instance())


def append_records(layer: QgsVectorLayer, records, src_crs: QgsCoordinateReferenceSystem,
                   label: str = "") -> list[QgsFeature]:
    """Add each building (an ``OutlineRecord`` in ``src_crs``) through the edit buffer (module doc):
    one feature per building, or per part where the layer holds single polygons; returns the features."""
    from qgis.core import QgsGeometry

    transform = transform_to_layer(src_crs, layer)
    single = not QgsWkbTypes.isMultiType(layer.wkbType())
    feats = []
    for record in records:
        for part in (record.parts() if single else ([] if record.is_empty else [record])):
            g = QgsGeometry()
            g.fromWkb(part.geometry.wkb)
            if transform is not None:
                g.transform(transform)
            f = QgsFeature(layer.fields())
            f.setGeometry(g)
            for name, value in record_attributes(part, label).items():
                if layer.fields().indexOf(name) < 0:
                    continue
                if name == "created":
                    value = QDateTime(value)
                f[name] = value
            feats.append(f)
    if not feats:
        return []
    add_through_edit_buffer(
        layer, feats, "RITM building",
        cannot_edit=f"The layer '{layer.name()}' cannot be edited; choose another output file in the dock.",
        cannot_add=f"Could not add the building to '{layer.name()}'.",
        cannot_save=f"Could not save the building to '{layer.name()}'")
    return feats


def add_through_edit_buffer(layer: QgsVectorLayer, feats: list, command: str, *, cannot_edit: str,
                            cannot_add: str, cannot_save: str) -> None:
    """Add ``feats`` as one undoable edit command. A layer already in edit mode stays so (the user
    saves); otherwise the edit session is opened, committed, and rolled back on a failure. Only our
    own session is ever rolled back, so the user's pending edits are never discarded."""
    was_editing = layer.isEditable()
    if not was_editing and not layer.startEditing():
        raise RitmError(cannot_edit)
    layer.beginEditCommand(command)
    if not layer.addFeatures(feats):
        layer.destroyEditCommand()
        if not was_editing:
            layer.rollBack()
        raise RitmError(cannot_add)
    layer.endEditCommand()
    if not was_editing and not _commit(layer):
        errors = "; ".join(layer.commitErrors())
        layer.rollBack()
        raise RitmError(f"{cannot_save}: {errors}")
    layer.triggerRepaint()


def _commit(layer: QgsVectorLayer, tries: int = 2) -> bool:
    """Commit the edit buffer; once more after a failure, which keeps the buffer: another program
    (a Processing run writing another layer of the file) may hold the GeoPackage's write lock for
    longer than the 5 s GDAL waits for it."""
    for _ in range(tries - 1):
        if layer.commitChanges():
            return True
    return layer.commitChanges()
