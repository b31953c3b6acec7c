"""Processing algorithm: the paper's Table 1 and Figure 1 from per-sample IoU arrays."""

from __future__ import annotations

import os
import tempfile

from qgis.core import (
    QgsProcessing,
    QgsProcessingAlgorithm,
    QgsProcessingException,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterString,
)


class NocReportAlgorithm(QgsProcessingAlgorithm):
    IOUS = "IOUS"
    THRESHOLDS = "THRESHOLDS"
    MAX_CLICKS = "MAX_CLICKS"
    OUTPUT_HTML = "OUTPUT_HTML"
    OUTPUT_JSON = "OUTPUT_JSON"

    def name(self):
        return "noc_report"

    def displayName(self):  # noqa: N802
        return "NoC report from IoU arrays"

    def group(self):
        return "Evaluation"

    def groupId(self):  # noqa: N802
        return "evaluation"

    def shortHelpString(self):  # noqa: N802
        return (
            "Computes the paper's Table 1 (NoC@80/85/90, >=max@t, Avg IoU under both definitions) and the "
            "IoU-vs-clicks figure from per-sample IoU arrays (.npy files of shape samples x clicks, as written "
            "by 'evaluate_noc' or RITM; rows containing NaN are empty samples and are dropped and counted). "
            "Each file is one model, named after the file."
        )

    def createInstance(self):  # noqa: N802
        return NocReportAlgorithm()

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterMultipleLayers(
            self.IOUS, "IoU arrays (.npy, one per model)", QgsProcessing.TypeFile))
        self.addParameter(QgsProcessingParameterString(
            self.THRESHOLDS, "IoU thresholds (comma-separated)", defaultValue="0.8,0.85,0.9"))
        self.addParameter(QgsProcessingParameterNumber(
            self.MAX_CLICKS, "Click budget (0 = all clicks in the arrays)", QgsProcessingParameterNumber.Integer,
            defaultValue=0, minValue=0))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.OUTPUT_HTML, "HTML report", "HTML files (*.html)"))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.OUTPUT_JSON, "Metrics as JSON", "JSON files (*.json)", optional=True, createByDefault=False))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        from ritm_qgis.engine.protocol.noc import load_iou_array, parse_thresholds
        from ritm_qgis.core.errors import RitmError
        from ritm_qgis.engine.reports.figures import plot_iou_curves
        from ritm_qgis.engine.protocol.noc import noc_report
        from ritm_qgis.engine.reports.report_html import write_html_report

        paths = self.parameterAsFileList(parameters, self.IOUS, context)
        if not paths:
            raise QgsProcessingException("Choose at least one IoU array (.npy file).")
        max_clicks = self.parameterAsInt(parameters, self.MAX_CLICKS, context) or None
        out_html = self.parameterAsFileOutput(parameters, self.OUTPUT_HTML, context)
        out_json = self.parameterAsFileOutput(parameters, self.OUTPUT_JSON, context)
        try:
            thresholds = parse_thresholds(self.parameterAsString(parameters, self.THRESHOLDS, context))
            reports = []
            for i, path in enumerate(paths):
                if feedback.isCanceled():
                    return {}
                name = os.path.splitext(os.path.basename(path))[0]
                reports.append(noc_report(name, load_iou_array(path), thresholds, max_clicks))
                feedback.setProgress(80 * (i + 1) / len(paths))
            if len({r.max_clicks for r in reports}) > 1:
                raise RitmError("the arrays hold different numbers of clicks; set a click budget to compare them")
            with tempfile.TemporaryDirectory() as tmp:
                figure = plot_iou_curves(reports, os.path.join(tmp, "curve.png"))
                write_html_report(out_html, reports, figure)
            if out_json:
                import json

                from ritm_qgis.core.atomic import write_text_atomically

                write_text_atomically(out_json, json.dumps({r.name: r.to_json() for r in reports}, indent=2))
        except RitmError as exc:
            raise QgsProcessingException(str(exc)) from None
        for r in reports:
            feedback.pushInfo(f"{r.name}: {r.n_samples} samples ({r.n_empty_dropped} empty dropped), "
                              + ", ".join(f"NoC@{t:g}={v:.2f}" for t, v in r.noc.items()))
        feedback.setProgress(100)
        return {self.OUTPUT_HTML: out_html, self.OUTPUT_JSON: out_json}
