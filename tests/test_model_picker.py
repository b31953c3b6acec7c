"""The dock's model list in QGIS: every model of the list, grouped; a downloadable model is
fetched by a QgsTask through QGIS's network stack from a loopback server, with progress and
cancel, then used by the map tool on a real canvas; typing in the box loads nothing."""

import hashlib
from functools import partial

import pytest
from qgis.core import QgsApplication, QgsProject, QgsRasterLayer, QgsSettings
from qgis.PyQt.QtCore import QCoreApplication, Qt
from qgis.PyQt.QtTest import QTest

import qgis_events
from loopback import LoopbackServer
from tiny_model import tiny_checkpoint

from ritm_qgis.engine.geo.synthetic_scene import make_scene, write_scene
from ritm_qgis.qgis_download import MIRROR_SETTING
from ritm_qgis.gui.model_picker import SPEC_ROLE, STATUS_ROLE
from ritm_qgis.gui.settings import PREFIX
from ritm_qgis.models import catalog
from ritm_qgis.plugin import RitmQgisPlugin

pytestmark = pytest.mark.qgis

DEFAULT = catalog.BEST_SHIPPED  # the default model while paper-finetune is not downloaded
IN_USE = f"in use: {DEFAULT} ("  # followed by its architecture and the device


wait_for = partial(qgis_events.wait_for, timeout=90.0)  # generous: a loaded 2-core CI machine is slow, not stuck


def messages_shown(bar) -> list:
    """Everything the message bar was given: pytest-qgis's bar records ``pushMessage`` calls in
    ``messages`` (and shows none of them as items); widgets pushed with ``pushWidget`` are items."""
    pushed = [text for level in sorted(bar.messages) for text in bar.messages[level]]
    return pushed + [item.text() for item in bar.items()]


@pytest.fixture
def clean_settings():
    s = QgsSettings()
    keys = [k for k in s.allKeys() if k.startswith(PREFIX) or k == MIRROR_SETTING]
    old = {k: s.value(k) for k in keys}
    for k in keys:
        s.remove(k)
    yield s
    for k in [k for k in s.allKeys() if k.startswith(PREFIX) or k == MIRROR_SETTING]:
        s.remove(k)
    for k, v in old.items():
        s.setValue(k, v)


@pytest.fixture
def remote(tmp_path, monkeypatch):
    """A downloadable entry 'test-remote' served by a loopback server that sends half the file, then
    waits until the test releases it (so a cancel always lands mid-download)."""
    monkeypatch.setenv("RITM_QGIS_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv(catalog.MIRROR_ENV, raising=False)
    payload = open(tiny_checkpoint(tmp_path), "rb").read()
    blob = hashlib.sha1(b"blob %d\0" % len(payload) + payload).hexdigest()
    with LoopbackServer({"/t.pth": payload}) as server:
        server.state.mode = "hold"
        catalog.add_entry(catalog.ModelEntry("test-remote", "hrnet_tiny", "tests", "a test entry", "paper",
                                             server.base + "/t.pth", f"git-blob-sha1:{blob}"))
        try:
            yield server, payload
        finally:
            server.state.release.set()  # never leave a response waiting
            catalog.remove_entry("test-remote")


@pytest.fixture
def started(qgis_iface, qgis_canvas, qgis_new_project, clean_settings, tmp_path, monkeypatch):
    """The plugin with its tool just started from the toolbar button (the first model still loading)."""
    monkeypatch.setenv("RITM_QGIS_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "scene.tif"
    write_scene(make_scene(size=256, n_buildings=4, seed=1), str(path))
    layer = QgsRasterLayer(str(path), "scene")
    QgsProject.instance().addMapLayer(layer)
    qgis_iface.setActiveLayer(layer)
    p = RitmQgisPlugin(qgis_iface)
    p.initGui()
    p.map_tool.action.trigger()
    try:
        yield p
    finally:
        picker = p.map_tool.dock.model if p.map_tool.dock is not None else None
        if picker is not None and picker.task is not None:  # a test that failed mid-download
            picker.cancel_download()
            wait_for(lambda: picker.task is None)
        p.unload()


@pytest.fixture
def plugin(started):
    started.map_tool.tool.wait_idle()
    return started


def rows(combo):
    return [(combo.itemText(i), combo.itemData(i, SPEC_ROLE), combo.itemData(i, STATUS_ROLE),
             bool(combo.model().item(i).flags() & Qt.ItemIsSelectable)) for i in range(combo.count())]


def test_the_list_is_grouped_and_typing_loads_nothing(remote, plugin, qgis_iface):
    dock, tool = plugin.map_tool.dock, plugin.map_tool.tool
    combo = dock.model.combo
    listed = rows(combo)
    headings = [text for text, spec, _, selectable in listed if spec is None]
    assert headings == ["Shipped with the plugin", "Downloadable",
                        "Not for outlining buildings (demonstrations, whole tiles)"]
    assert all(not selectable for _, spec, _, selectable in listed if spec is None)
    by_name = {spec: (text, status) for text, spec, status, _ in listed if spec}
    for name in ("grabcut", "aerial-finetuned-h18s", "aerial-finetuned-tiny", "natural-tiny", "grabcut-multi"):
        assert by_name[name][1] == "shipped" and " — " in by_name[name][0]  # name — one-line description
    # the demonstrations that get worse with clicks, and whole-tile GrabCut, come last, under their own heading
    specs = [spec for _, spec, _, _ in listed]
    apart = specs[specs.index(None, specs.index("paper-finetune")) + 1:]
    assert set(apart) == {"aerial-finetuned-tiny", "aerial-finetuned-tiles-tiny", "aerial-scratch-tiny",
                          "natural-tiny", "grabcut-multi"}
    for name in ("paper-finetune", "paper-scratch", "paper-notrain", "test-remote"):
        assert by_name[name][1] == "downloadable"
    assert by_name["paper-finetune"][0].startswith("paper-finetune (about 41 MB, download) — ")
    assert not combo.isEditable()
    assert dock.in_use.text().startswith(IN_USE) and dock.model.spec() == DEFAULT
    assert dock.model.default_line.text().startswith(f"Default: {DEFAULT} (fewest clicks per building")
    assert dock.model.default_line.toolTip() == catalog.default_model()[1]  # the figures, on hover
    assert dock.model.get_best.isVisibleTo(dock.model) and dock.model.get_best.text() == "Download paper-finetune"
    # typing jumps through the list but commits nothing: no model job, no message
    bar = qgis_iface.messageBar()
    before = messages_shown(bar)
    QTest.keyClicks(combo, "paper-fi")  # the first key opens the list and starts the search in it
    QCoreApplication.processEvents()
    assert combo.view().isVisible()
    assert combo.view().currentIndex().data(SPEC_ROLE) == "paper-finetune"  # highlighted, not chosen
    combo.hidePopup()  # closed without a commit (Esc or a click elsewhere)
    QCoreApplication.processEvents()
    assert dock.model.spec() == DEFAULT and dock.model.task is None  # nothing loaded, nothing downloading
    assert tool.worker.pending == 0 and tool.settings.model == DEFAULT
    assert messages_shown(bar) == before
    assert dock.in_use.text().startswith(IN_USE)


def test_the_in_use_line_says_which_model_is_loading_from_the_start(started):
    dock, tool = started.map_tool.dock, started.map_tool.tool
    assert tool.busy  # the first model loads in the background
    assert dock.in_use.text().startswith(f"in use: loading {DEFAULT} on ")  # not "in use: -"
    tool.wait_idle()
    assert dock.in_use.text().startswith(IN_USE)


def test_download_task_with_progress_and_cancel_then_use(remote, plugin, tmp_path):
    server, payload = remote
    dock, tool = plugin.map_tool.dock, plugin.map_tool.tool
    picker = dock.model
    index = next(i for i in range(picker.combo.count()) if picker.combo.itemData(i, SPEC_ROLE) == "test-remote")
    cache = tmp_path / "cache"

    # choose it: a QgsTask in QGIS's task manager, progress in the dock; then cancel
    picker.combo.setCurrentIndex(index)
    picker.combo.activated.emit(index)
    task = picker.task
    assert task is not None and task in QgsApplication.taskManager().tasks()
    assert picker.progress.isVisibleTo(picker) and picker.cancel_button.isVisibleTo(picker)
    wait_for(lambda: picker.progress.value() > 0)
    assert picker.combo.itemData(picker.combo.currentIndex(), SPEC_ROLE) == DEFAULT  # still the model in use
    QTest.mouseClick(picker.cancel_button, Qt.LeftButton)
    wait_for(lambda: picker.task is None)
    assert not picker.progress.isVisibleTo(picker)
    assert not cache.exists() or sorted(p.name for p in cache.iterdir()) == []  # cancel leaves no file
    assert "cancelled" in dock.status.text()
    assert not any("cancelled" in m for m in messages_shown(plugin.iface.messageBar()))  # the user's own doing
    server.state.release.set()  # let the server finish the abandoned response
    assert picker.spec() == DEFAULT and tool.settings.model == DEFAULT
    tool.wait_idle()
    assert dock.in_use.text().startswith(IN_USE)

    # choose it again and let it finish: verified, in the cache, listed as downloaded, loaded by the tool
    seen = []
    picker.combo.activated.emit(index)
    picker.task.progressChanged.connect(seen.append)
    wait_for(lambda: picker.task is None)
    assert (cache / "test-remote.pth").read_bytes() == payload
    assert sorted(p.name for p in cache.iterdir()) == ["test-remote.pth", "test-remote.pth.sha256"]
    assert seen and max(seen) == pytest.approx(100) and seen == sorted(seen)
    assert picker.spec() == "test-remote" and tool.settings.model == "test-remote"
    tool.wait_idle()
    assert dock.in_use.text().startswith("in use: test-remote (hrnet_tiny) on cpu, ready in ")
    assert ("test-remote", "downloaded") in [(spec, status) for _, spec, status, _ in rows(picker.combo)]
    assert [r[0] for r in server.state.requests] == ["/t.pth", "/t.pth"]  # the cancelled try, then this one
    assert QgsSettings().value(PREFIX + "model") == "test-remote"


def test_a_file_that_is_not_the_published_one_is_not_kept(remote, plugin, qgis_iface, tmp_path):
    server, payload = remote
    server.state.mode = "normal"
    server.state.files["/t.pth"] = payload[:-4] + b"abcd"
    picker = plugin.map_tool.dock.model
    picker.download("test-remote")
    wait_for(lambda: picker.task is None)
    assert not (tmp_path / "cache").exists() or list((tmp_path / "cache").iterdir()) == []
    assert "is not the published test-remote" in plugin.map_tool.dock.status.text()
    assert any("is not the published test-remote" in m for m in messages_shown(qgis_iface.messageBar()))
    assert picker.spec() == DEFAULT


def test_mirror_setting_is_used_for_the_download(remote, plugin, tmp_path):
    server, payload = remote
    server.state.mode = "normal"
    server.state.files["/mirror/test-remote.pth"] = payload
    picker = plugin.map_tool.dock.model
    picker.mirror.setText(server.base + "/mirror")
    picker.download("test-remote")
    wait_for(lambda: picker.task is None)
    assert server.state.requests[-1][0] == "/mirror/test-remote.pth"
    assert QgsSettings().value(MIRROR_SETTING) == server.base + "/mirror"
    assert (tmp_path / "cache" / "test-remote.pth").read_bytes() == payload


def test_a_checkpoint_file_stays_choosable(plugin, tmp_path, monkeypatch):
    monkeypatch.setenv("RITM_QGIS_CACHE", str(tmp_path / "cache"))
    dock, tool = plugin.map_tool.dock, plugin.map_tool.tool
    ckpt = tiny_checkpoint(tmp_path, name="mine.pth")
    dock.model.choose_file(ckpt)
    tool.wait_idle()
    assert tool.settings.model == ckpt and dock.model.spec() == ckpt
    assert dock.in_use.text().startswith(f"in use: {ckpt}")
