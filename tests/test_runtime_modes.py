"""Honest speed-up modes (refusals, fallbacks reported, the path per input size), the optional
OpenVINO path and the on-disk cache of what it builds, and the simulator's thread count."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from torch import nn

from ritm_qgis.core.errors import RitmError
from ritm_qgis.engine.interactive.interactive_settings import interactive_predictor
from ritm_qgis.engine.interactive.predictor import NetworkBackend
from ritm_qgis.engine.runtime import build_cache, cpu_bf16, modes, openvino_cpu
from tiny_model import one_torch_thread, tiny_net  # noqa: F401 (module fixtures)

needs_openvino = pytest.mark.skipif(not openvino_cpu.available(),
                                    reason="the optional openvino package is not installed (pip install openvino)")


def scene(h, w, seed=0):
    rng = np.random.default_rng(seed)
    img = rng.normal(90, 20, (h, w, 3))
    img[h // 3:h // 2, w // 3:w // 2] = 210
    return np.clip(img, 0, 255).astype(np.uint8)


CLICKS = [(h, w, True) for h, w in [(80, 100), (70, 95)]] + [(10, 10, False)]


def session_probs(backend, img, clicks=CLICKS):
    session = interactive_predictor(backend)
    session.set_image(img)
    return [session.add_click(*c).prob for c in clicks]


# ------------------------------------------------------------------ honest modes
def test_bf16_is_refused_on_a_cpu_without_bf16_hardware(tiny_net, monkeypatch):
    monkeypatch.setenv(cpu_bf16.NATIVE_BF16_ENV, "0")
    with pytest.raises(RitmError, match="bfloat16 in hardware.*--optimize auto"):
        NetworkBackend(tiny_net, device="cpu", optimize="bf16")
    assert NetworkBackend(tiny_net, device="cpu", optimize="auto").optimize != "bf16"
    # a oneDNN ISA ceiling below bf16 counts as a CPU without it, whatever the processor has
    monkeypatch.delenv(cpu_bf16.NATIVE_BF16_ENV)
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert not cpu_bf16.native_bf16()
    assert modes.auto_mode("cpu") == ("openvino-int8" if openvino_cpu.available() else "onednn")
    monkeypatch.setenv(cpu_bf16.NATIVE_BF16_ENV, "1")
    assert cpu_bf16.native_bf16() and modes.auto_mode("cpu") == "bf16"
    assert modes.auto_mode("cuda") == "fold"


class MisfoldedNet(nn.Module):
    """A RITM-shaped network whose ``conv1`` / ``bn1`` names fool BatchNorm folding: the ReLU
    sits between them, so the folded network computes something else (the check must catch it)."""

    with_prev_mask = True

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv1 = nn.Conv2d(4, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.bn1.running_mean.uniform_(-1, 1)
        self.bn1.running_var.uniform_(0.5, 2)
        self.bn1.weight.data.uniform_(0.5, 2)
        self.bn1.bias.data.uniform_(-1, 1)
        self.head = nn.Conv2d(8, 1, 1)

    def forward(self, image, points):
        return {"instances": self.head(self.bn1(torch.relu(self.conv1(image))))}


def test_a_failed_check_is_reported_as_the_path_that_ran():
    img = scene(120, 160)
    with pytest.warns(RuntimeWarning, match="changed the outputs"):
        backend = NetworkBackend(MisfoldedNet().eval(), device="cpu", optimize="fold")
    assert backend.optimize == "none"
    session_probs(backend, img, CLICKS[:1])
    assert set(backend.paths_run) == {"none"}  # not 'fold': what ran


def test_onednn_runs_small_inputs_on_the_folded_network(tiny_net):
    backend = NetworkBackend(tiny_net, device="cpu", optimize="onednn")
    plain = NetworkBackend(tiny_net, device="cpu", optimize="none")
    assert backend.optimize == "onednn"
    side = int(np.sqrt(NetworkBackend.SMALL_INPUT_PIXELS))
    for size, path in ((side // 2, "fold"), (side + 8, "onednn")):
        x = torch.rand(2, 4, size, size, generator=torch.Generator().manual_seed(size))
        pts = torch.tensor([[[size / 2, size / 3, 0.0], [-1.0, -1.0, -1.0]]] * 2)
        backend.paths_run.clear()
        got = backend.forward(x, pts)
        assert dict(backend.paths_run) == {path: 1}
        assert float((got - plain.forward(x, pts)).abs().max()) < 1e-4


def test_the_click_simulator_pool_follows_the_thread_limits(monkeypatch):
    from ritm_qgis.core import threads

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert threads.worker_count() == 1
    monkeypatch.delenv("OMP_NUM_THREADS")
    n = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert threads.worker_count() == 1
        seen = set()
        import threading

        assert threads.map_samples(lambda x: seen.add(threading.get_ident()) or x * 2, range(8)) == \
            [x * 2 for x in range(8)]
        assert seen == {threading.get_ident()}  # one thread allowed: no pool
    finally:
        torch.set_num_threads(n)


# ------------------------------------------------------------------ the build cache
def test_cache_entries_are_keyed_by_weights_runtime_and_cpu(tmp_path, monkeypatch):
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    key = build_cache.entry_key("p", "a" * 64, "rt 1")
    assert build_cache.lookup(key, tmp_path) is None
    with build_cache.writing(key, tmp_path) as folder:
        (folder / "x").write_text("built")
    entry = build_cache.lookup(key, tmp_path)
    assert entry is not None and (entry / "x").read_text() == "built"
    assert not list(tmp_path.glob("*.incomplete.*"))
    others = [build_cache.entry_key("p", "b" * 64, "rt 1"), build_cache.entry_key("p", "a" * 64, "rt 2")]
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "avx2")
    others.append(build_cache.entry_key("p", "a" * 64, "rt 1"))
    assert len({build_cache.entry_dir(k, tmp_path) for k in [key, *others]}) == 4
    # a failed build leaves nothing behind; a damaged key file makes the entry disappear
    with pytest.raises(ValueError):
        with build_cache.writing(others[0], tmp_path) as folder:
            raise ValueError("conversion failed")
    assert build_cache.lookup(others[0], tmp_path) is None and len(list(tmp_path.iterdir())) == 1
    (entry / build_cache.KEY_FILE).write_text("{")
    assert build_cache.lookup(key, tmp_path) is None and not entry.exists()


@needs_openvino
def test_openvino_mode_is_exact_and_built_once(tiny_net, tmp_path, monkeypatch):
    monkeypatch.setenv(build_cache.ROOT_ENV, str(tmp_path / "built"))
    heard = []
    before = openvino_cpu.conversions
    backend = NetworkBackend(tiny_net, device="cpu", optimize="openvino",
                             progress=lambda done, total, message=None: heard.append((done, total)))
    assert backend.optimize == "openvino" and openvino_cpu.conversions == before + 1
    assert heard == [(0, 1), (1, 1)]
    img = scene(200, 260)
    ref = session_probs(NetworkBackend(tiny_net, device="cpu", optimize="none"), img)
    got = session_probs(backend, img)
    assert max(float(np.abs(a - b).max()) for a, b in zip(ref, got)) < 1e-4
    assert set(backend.paths_run) == {"openvino"}
    (entry,) = (tmp_path / "built").iterdir()
    key = json.loads((entry / build_cache.KEY_FILE).read_text())
    assert key["path"] == "openvino-f32" and key["runtime"].startswith("openvino ")
    stamp = (entry / "model.bin").stat().st_mtime_ns

    again = NetworkBackend(tiny_net, device="cpu", optimize="openvino")  # read from the cache, not converted
    assert openvino_cpu.conversions == before + 1 and again._openvino.source == "cache"
    assert (entry / "model.bin").stat().st_mtime_ns == stamp
    assert np.abs(session_probs(again, img)[-1] - ref[-1]).max() < 1e-4
    blobs = list((entry / "compiled").iterdir())  # OpenVINO's compiled form, kept beside the IR
    assert blobs
    for blob in blobs:  # damaged: OpenVINO compiles again
        os.chmod(blob, 0o600)
        with open(blob, "r+b") as f:
            f.truncate(100)
    from_blobs = NetworkBackend(tiny_net, device="cpu", optimize="openvino")
    assert from_blobs._openvino.source == "cache" and openvino_cpu.conversions == before + 1
    assert np.abs(session_probs(from_blobs, img)[-1] - ref[-1]).max() < 1e-4

    # a damaged entry is converted again, not fatal
    with open(entry / "model.bin", "r+b") as f:
        f.truncate(100)
    rebuilt = NetworkBackend(tiny_net, device="cpu", optimize="openvino")
    assert rebuilt.optimize == "openvino" and rebuilt._openvino.source == "converted"
    assert openvino_cpu.conversions == before + 2
    assert np.abs(session_probs(rebuilt, img)[-1] - ref[-1]).max() < 1e-4
    assert NetworkBackend(tiny_net, device="cpu", optimize="openvino")._openvino.source == "cache"


@needs_openvino
def test_a_cached_openvino_network_is_checked_against_its_stored_logits(tiny_net, tmp_path, monkeypatch):
    monkeypatch.setenv(build_cache.ROOT_ENV, str(tmp_path / "built"))
    before = openvino_cpu.conversions
    first = NetworkBackend(tiny_net, device="cpu", optimize="openvino")
    (entry,) = (tmp_path / "built").iterdir()
    passes = []
    hook = tiny_net.register_forward_hook(lambda *_: passes.append(1))
    try:
        again = NetworkBackend(tiny_net, device="cpu", optimize="openvino")
        assert again._openvino.source == "cache" and passes == []  # no PyTorch pass to check it
        img = scene(120, 150)
        assert np.abs(session_probs(again, img)[-1] - session_probs(first, img)[-1]).max() < 1e-6
        with np.load(entry / openvino_cpu.CHECK_FILE) as data:  # logits that disagree with the network
            stored = {k: data[k] for k in data.files}
        stored["logits"] = stored["logits"] + 0.5
        np.savez(entry / openvino_cpu.CHECK_FILE, **stored)
        rebuilt = NetworkBackend(tiny_net, device="cpu", optimize="openvino")
        assert rebuilt._openvino.source == "converted" and openvino_cpu.conversions == before + 2 and passes
    finally:
        hook.remove()


@needs_openvino
def test_a_checkpoint_used_before_is_ready_without_reading_its_weights(tmp_path, monkeypatch):
    from tiny_model import tiny_checkpoint

    monkeypatch.setenv(build_cache.ROOT_ENV, str(tmp_path / "built"))
    monkeypatch.setenv(cpu_bf16.NATIVE_BF16_ENV, "0")
    path = tiny_checkpoint(tmp_path, name="m.pth", seed=1)
    before = openvino_cpu.conversions
    first = NetworkBackend.from_checkpoint(path, device="cpu", optimize="openvino")  # read in full, converted
    assert first.optimize == "openvino" and first.info is not None and openvino_cpu.conversions == before + 1
    quick = NetworkBackend.from_checkpoint(path, device="cpu", optimize="openvino")
    assert quick.optimize == "openvino" and quick._openvino.source == "cache"
    assert quick._model is None and quick.info is None  # the weights were not read
    assert quick.name == first.name and quick.with_prev_mask == first.with_prev_mask
    img = scene(120, 150)
    assert np.abs(session_probs(quick, img)[-1] - session_probs(first, img)[-1]).max() < 1e-6
    assert quick.model is not None and quick.info.weights_sha256 == first.info.weights_sha256  # read when asked
    assert NetworkBackend.from_checkpoint(path, device="cpu", optimize="none")._openvino is None  # other paths load

    # other weights in the same file: read in full again, converted again
    from ritm_qgis.models import create_model, save_checkpoint
    from ritm_qgis.models.testing import randomize_

    save_checkpoint(path, randomize_(create_model("hrnet_tiny"), seed=7), arch="hrnet_tiny")
    changed = NetworkBackend.from_checkpoint(path, device="cpu", optimize="openvino")
    assert changed.info is not None and changed.info.weights_sha256 != first.info.weights_sha256
    assert changed._openvino.source == "converted" and openvino_cpu.conversions == before + 2


def test_openvino_without_the_package_is_refused(tiny_net, monkeypatch):
    monkeypatch.setattr(openvino_cpu, "available", lambda: False)  # stands in for a QGIS without the package
    monkeypatch.setenv(cpu_bf16.NATIVE_BF16_ENV, "0")
    with pytest.raises(RitmError, match="pip install openvino"):
        NetworkBackend(tiny_net, device="cpu", optimize="openvino")
    assert modes.auto_mode("cpu") == "onednn"
    assert NetworkBackend(tiny_net, device="cpu").optimize == "onednn"


def test_free_memory_goes_back_to_the_system_between_batches():
    import sys

    from ritm_qgis.core.memory import release_free_memory

    assert release_free_memory() == sys.platform.startswith("linux")  # glibc here; a no-op elsewhere


def test_the_installer_offers_openvino_only_where_auto_would_run_it(monkeypatch):
    import platform

    from ritm_qgis import deps

    assert deps.optional_speedups("cuda") == []
    origin = deps._module_origin
    monkeypatch.setattr(deps, "_module_origin", lambda m: None if m == "openvino" else origin(m))  # not installed
    applies = platform.machine().lower() in ("x86_64", "amd64") and not deps.gpu_present() and \
        not deps._cpu_has_bf16()
    assert deps.optional_speedups() == ([deps.OPENVINO_REQUIREMENT] if applies else [])
    import sys

    if sys.platform.startswith("linux") and not os.environ.get(cpu_bf16.NATIVE_BF16_ENV) and \
            not os.environ.get("ONEDNN_MAX_CPU_ISA"):
        assert deps._cpu_has_bf16() == cpu_bf16.native_bf16()  # the installer and the engine agree


def test_below_avx2_auto_folds_and_the_fused_paths_are_refused(tiny_net, monkeypatch, tmp_path):
    from tiny_model import tiny_checkpoint

    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "SSE41")  # stands in for a CPU without AVX2
    monkeypatch.setenv(cpu_bf16.NATIVE_BF16_ENV, "0")
    assert not modes.avx2() and modes.auto_mode("cpu") == "fold"
    assert NetworkBackend(tiny_net, device="cpu").optimize == "fold"
    path = tiny_checkpoint(tmp_path, name="m.pth", seed=1)
    for mode in ("onednn", "openvino", "openvino-int8"):
        with pytest.raises(RitmError, match="needs a CPU with AVX2"):
            NetworkBackend(tiny_net, device="cpu", optimize=mode)
        with pytest.raises(RitmError, match="needs a CPU with AVX2"):  # from a checkpoint file too
            NetworkBackend.from_checkpoint(path, device="cpu", optimize=mode)
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert modes.avx2() == bool(torch.cpu._is_avx2_supported())
