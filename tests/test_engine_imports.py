"""The engine (everything but the QGIS glue) must run on a machine without QGIS."""

import subprocess
import sys
import textwrap

from conftest import ROOT

# Modules allowed to import qgis: the plugin entry, the provider, the algorithms, the GUI and the glue
# shared by the GUI and the algorithms (layer styles, layer sources, downloads on QGIS's network stack).
GLUE = ("ritm_qgis.plugin", "ritm_qgis.provider", "ritm_qgis.algorithms", "ritm_qgis.gui", "ritm_qgis.layer_stretch",
        "ritm_qgis.layer_source", "ritm_qgis.qgis_download")

SCRIPT = textwrap.dedent(
    """
    import importlib, importlib.abc, pkgutil, sys

    class NoQgis(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("qgis", "PyQt5", "processing"):
                raise ImportError(f"{name} is unavailable in this test")
            return None

    sys.meta_path.insert(0, NoQgis())
    import ritm_qgis, ritm_qgis.models
    glue = %r
    names = ["ritm_qgis", "ritm_qgis.models"]
    for pkg in (ritm_qgis, ritm_qgis.models):
        names += [m.name for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + ".")]
    failed = []
    for name in names:
        if name.startswith(glue) or name.endswith(".__main__"):
            continue
        try:
            importlib.import_module(name)
        except Exception as exc:
            failed.append(f"{name}: {exc!r}")
    leaked = [m for m in sys.modules if m.split(".")[0] in ("qgis", "PyQt5")]
    print("IMPORTED", len(names))
    print("FAILED", failed)
    print("LEAKED", leaked)
    """
)


def run_without_qgis():
    out = subprocess.run([sys.executable, "-c", SCRIPT % (GLUE,)], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_engine_imports_with_qgis_unimportable():
    out = run_without_qgis()
    assert "FAILED []" in out, out
    assert "LEAKED []" in out, out
    count = int(out.split("IMPORTED")[1].split()[0])
    assert count >= 8  # the walk really found the engine modules


def test_the_blocker_really_blocks_qgis():
    # the same blocker makes the glue fail: proves the check above can fail
    script = SCRIPT.split("import ritm_qgis, ritm_qgis.models")[0] + "import ritm_qgis.plugin\n"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode != 0 and "unavailable in this test" in out.stderr
