"""Screenshots of the plugin's missing-packages message and its install dialog, from real QGIS under Xvfb.

    python3 scripts/screenshots_deps.py        # writes docs/deps/message_bar.png and docs/deps/install_dialog.png

Builds the plugin zip (scripts/package_plugin.sh), unzips it into a fresh QGIS profile, and loads
it with Debian's /usr/bin/python3 (PyQGIS, no venv: torch and the geo stack are missing there, as
for a new user) on an X server of its own (xvfb-run), then grabs the QGIS widgets.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "deps"


def outer() -> int:
    subprocess.run(["bash", str(ROOT / "scripts" / "package_plugin.sh")], check=True, cwd=ROOT)
    version = next(line.split("=", 1)[1].strip() for line in (ROOT / "metadata.txt").read_text().splitlines()
                   if line.startswith("version="))
    with tempfile.TemporaryDirectory(prefix="ritm-shots-") as tmp:
        config = Path(tmp) / "QGIS3"
        plugins = config / "profiles" / "default" / "python" / "plugins"
        plugins.mkdir(parents=True)
        with zipfile.ZipFile(ROOT / "dist" / f"ritm_qgis.{version}.zip") as zf:
            zf.extractall(plugins)
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "QT_QPA_PLATFORM")}
        env.update(PYTHONPATH=str(plugins), PATH="/usr/bin:/bin", QGIS_CUSTOM_CONFIG_PATH=str(config))
        OUT.mkdir(parents=True, exist_ok=True)
        cmd = ["xvfb-run", "-a", "-s", "-screen 0 1400x900x24", "/usr/bin/python3", __file__, "--inner", str(OUT)]
        return subprocess.run(cmd, env=env, cwd=tmp).returncode


def inner(out: Path) -> int:
    from qgis.core import QgsApplication
    from qgis.gui import QgsMapCanvas, QgsMessageBar
    from qgis.PyQt.QtCore import QTimer
    from qgis.PyQt.QtWidgets import QMainWindow, QPushButton, QVBoxLayout, QWidget

    app = QgsApplication([], True)
    app.initQgis()
    window = QMainWindow()
    window.setWindowTitle("QGIS")
    central = QWidget()
    layout = QVBoxLayout(central)
    bar = QgsMessageBar()
    canvas = QgsMapCanvas()
    layout.addWidget(bar)
    layout.addWidget(canvas, 1)
    window.setCentralWidget(central)
    window.resize(1000, 260)

    class Iface:  # the part of QgisInterface the plugin uses when it is loaded without QGIS's main window
        def messageBar(self):  # noqa: N802
            return bar

        def mainWindow(self):  # noqa: N802
            return window

    import ritm_qgis

    plugin = ritm_qgis.classFactory(Iface())
    plugin.initGui()
    window.show()

    def shoot():
        app.processEvents()
        window.grab().save(str(out / "message_bar.png"))
        button = next(b for item in bar.items() for b in item.findChildren(QPushButton)
                      if b.text() == "Install dependencies...")
        button.click()
        dialog = plugin.deps_dialog
        dialog.resize(980, 620)
        QTimer.singleShot(500, lambda: finish(dialog))

    def finish(dialog):
        app.processEvents()
        dialog.grab().save(str(out / "install_dialog.png"))
        plugin.unload()
        print(f"screenshots: {out / 'message_bar.png'}, {out / 'install_dialog.png'}")
        sys.stdout.flush()
        os._exit(0)  # skip QGIS's exit-time teardown, which can crash headless

    QTimer.singleShot(800, shoot)
    app.exec_()
    return 1


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--inner":
        sys.exit(inner(Path(sys.argv[2])))
    sys.exit(outer())
