"""Processing algorithm: the paper's Table 1 and Figure 1 from per-sample IoU arrays."""

from __future__ import annotations

import os
import tempfile

from qgis.core import (
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterString,
)

from ritm_qgis.engine.jobs.limits import MAX_CLICKS

from .base import RitmAlgorithm


class NocReportAlgorithm(RitmAlgorithm):
    IOUS = "IOUS"
    THRESHOLDS = "THRESHOLDS"
    MAX_CLICKS = "MAX_CLICKS"
    OUTPUT_HTML = "OUTPUT_HTML"
    OUTPUT_JSON = "OUTPUT_JSON"

    NAME = "noc_report"
    DISPLAY_NAME = "NoC report from IoU arrays"
    GROUP = "Evaluation"
    GROUP_ID = "evaluation"
    HELP = (
        "Computes the paper's Table 1 (NoC@80/85/90, >=max@t, Avg IoU under both definitions) and the "
        "IoU-vs-clicks figure from per-sample IoU arrays (.npy files of shape samples x clicks, as written "
        "by 'evaluate_noc' or RITM; rows containing NaN are empty samples and are dropped and counted). "
        "Each file is one model, named after the file."
    )

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterMultipleLayers(
            self.IOUS, "IoU arrays (.npy, one per model)", QgsProcessing.TypeFile))
        self.addParameter(QgsProcessingParameterString(
            self.THRESHOLDS, "IoU thresholds (comma-separated)", defaultValue="0.8,0.85,0.9"))
        self.addParameter(QgsProcessingParameterNumber(
            self.MAX_CLICKS, "Click budget (0 = all clicks in the arrays)", QgsProcessingParameterNumber.Integer,
            defaultValue=0, minValue=0, maxValue=MAX_CLICKS))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.OUTPUT_HTML, "HTML report", "HTML files (*.html)"))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.OUTPUT_JSON, "Metrics as JSON", "JSON files (*.json)", optional=True, createByDefault=False))

    def check_parameters(self, parameters, context):
        from ritm_qgis.engine.protocol.noc import parse_thresholds

        if parameters.get(self.THRESHOLDS) not in (None, ""):
            parse_thresholds(str(parameters[self.THRESHOLDS]), self.describe(self.THRESHOLDS))
        return None

    def process(self, parameters, context, run):
        from ritm_qgis.core.atomic import OutputSet
        from ritm_qgis.core.cancel import check_cancel
        from ritm_qgis.core.errors import RitmError
        from ritm_qgis.engine.jobs.same_file import Place, refuse_outputs_among_inputs
        from ritm_qgis.engine.protocol.noc import noc_report, parse_thresholds
        from ritm_qgis.engine.reports.iou_arrays import read_iou_array
        from ritm_qgis.engine.reports.figures import plot_iou_curves
        from ritm_qgis.engine.reports.report_html import write_html_report

        paths = self.parameterAsFileList(parameters, self.IOUS, context)
        if not paths:
            raise QgsProcessingException(f"Choose at least one IoU array (.npy file) for {self.describe(self.IOUS)}.")
        max_clicks = self.parameterAsInt(parameters, self.MAX_CLICKS, context) or None
        out_html = self.parameterAsFileOutput(parameters, self.OUTPUT_HTML, context)
        out_json = self.parameterAsFileOutput(parameters, self.OUTPUT_JSON, context)
        thresholds = parse_thresholds(self.parameterAsString(parameters, self.THRESHOLDS, context),
                                      self.describe(self.THRESHOLDS))
        refuse_outputs_among_inputs(
            [Place(self.describe(k), p) for k, p in ((self.OUTPUT_HTML, out_html), (self.OUTPUT_JSON, out_json)) if p],
            [Place(self.describe(self.IOUS), p) for p in paths])
        reports = []
        for i, path in enumerate(paths):
            check_cancel(run.cancelled)
            name = os.path.splitext(os.path.basename(path))[0]
            reports.append(noc_report(name, read_iou_array(path), thresholds, max_clicks))
            run.progress(0.8 * (i + 1) / len(paths))
        if len({r.max_clicks for r in reports}) > 1:
            raise RitmError(f"The arrays hold different numbers of clicks; set {self.describe(self.MAX_CLICKS)} "
                            "to compare them.")
        with OutputSet() as staging, tempfile.TemporaryDirectory() as tmp:
            figure = plot_iou_curves(reports, os.path.join(tmp, "curve.png"))
            write_html_report(staging.staged(out_html), reports, figure)
            if out_json:
                import json

                with open(staging.staged(out_json), "w", encoding="utf-8") as f:
                    f.write(json.dumps({r.name: r.to_json() for r in reports}, indent=2))
        for r in reports:
            run.info(f"{r.name}: {r.n_samples} samples ({r.n_empty_dropped} empty dropped), "
                     + ", ".join(f"NoC@{t:g}={v:.2f}" for t, v in r.noc.items()))
        return {self.OUTPUT_HTML: out_html, self.OUTPUT_JSON: out_json}
