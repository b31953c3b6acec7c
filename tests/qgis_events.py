"""Waiting in a QGIS test: process Qt events until a condition holds, or fail after a timeout."""

import time

from qgis.PyQt.QtCore import QCoreApplication


def wait_for(condition, timeout):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        QCoreApplication.processEvents()
        time.sleep(0.01)
