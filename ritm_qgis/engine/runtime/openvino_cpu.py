"""CPU inference through OpenVINO, in fp32 (the optional 'openvino' speed-up).

OpenVINO (``pip install openvino``, a package of its own, not a requirement of the plugin)
converts the PyTorch network once into its own graph and compiles that for the CPU with its
fused kernels: in fp32 the probabilities match the unmodified network to about 1e-6 and a pass
is 1.2-1.6x faster than the project's oneDNN path (docs/benchmarks.md), on CPUs with or without
bf16 hardware, for any input size and number of clicks (the graph has dynamic shapes).

Converting takes 10-60 s; its result (OpenVINO's IR, ``model.xml`` / ``model.bin``, weights kept
in fp32) is stored in ``build_cache`` keyed by the weights' digest, OpenVINO's version and the CPU,
so a network used before is ready in about a second (read and compile; the compiled form is kept
by OpenVINO's own cache in the entry's ``compiled/`` folder, which makes compiling 3x faster). A cached entry that
cannot be read, or whose outputs disagree with the PyTorch network, is rebuilt.
"""

from __future__ import annotations

import importlib.util
import logging
import warnings

import numpy as np

from ritm_qgis.engine.runtime import build_cache

log = logging.getLogger(__name__)

PATH = "openvino-f32"
# Largest |logit difference| to the PyTorch network accepted on the construction check (fp32 both).
ATOL = 1e-3

# How many times this process converted a network (not counting networks read from the cache).
conversions = 0


def available() -> bool:
    """The openvino package is installed (without importing it: that takes a second)."""
    try:
        return importlib.util.find_spec("openvino") is not None
    except (ImportError, ValueError):
        return False


def version() -> str:
    import openvino as ov

    return str(ov.get_version())


class _Logits:
    """The network's logits alone (OpenVINO converts a module that returns tensors)."""

    @staticmethod
    def wrap(net):
        import torch

        class Logits(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.net = net

            def forward(self, image, points):
                return self.net(image, points)["instances"]

        return Logits().eval()


class OpenVinoNetwork:
    """A compiled network: ``(images, points) -> logits`` as CPU float32 tensors."""

    def __init__(self, compiled, source: str):
        self._compiled = compiled
        self.source = source  # 'converted' or 'cache'

    def __call__(self, images, points):
        import torch

        out = self._compiled([images.detach().float().contiguous().numpy(),
                              points.detach().float().contiguous().numpy()])[0]
        return torch.from_numpy(np.ascontiguousarray(out, dtype=np.float32))


def _convert(net, example):
    import openvino as ov

    global conversions
    image, points = example
    with warnings.catch_warnings():  # TorchScript's notes on the shape checks it traces through
        warnings.simplefilter("ignore")
        model = ov.convert_model(_Logits.wrap(net), example_input=(image, points))
    model.reshape({model.inputs[0]: ov.PartialShape([-1, image.shape[1], -1, -1]),
                   model.inputs[1]: ov.PartialShape([-1, -1, 3])})
    conversions += 1
    return model


def _compile(model, threads: int, blob_dir=None):
    import openvino as ov

    core = ov.Core()
    if blob_dir is not None:  # OpenVINO's own cache of the compiled network: compiling again takes a third
        core.set_property({"CACHE_DIR": str(blob_dir)})
    if isinstance(model, str):
        model = core.read_model(model)
    return core.compile_model(model, "CPU", {
        "INFERENCE_PRECISION_HINT": "f32",  # never bf16 / fp16 behind the user's back: this path is exact
        "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_NUM_THREADS": int(threads)})


def _gap(reference, fast: OpenVinoNetwork, example) -> float:
    import torch

    image, points = example
    with torch.inference_mode():
        ref = reference(image, points)["instances"].float()
    return float((ref - fast(image, points)).abs().max())


def build(net, weights_digest: str, example, check_example, threads: int, cache: bool = True,
          progress=None) -> OpenVinoNetwork:
    """``net`` (eval, CPU, fp32) compiled by OpenVINO, read from the cache when it was converted
    before. ``example`` = (image, points) the conversion traces; ``check_example`` is run through
    both networks (max |logit difference| <= ATOL, else RuntimeError). ``progress(done, total,
    message)`` hears of a conversion."""
    import openvino as ov

    key = build_cache.entry_key(PATH, weights_digest, f"openvino {version()}",
                                channels=int(example[0].shape[1]))
    entry = build_cache.lookup(key) if cache else None
    if entry is not None:
        try:
            fast = OpenVinoNetwork(_compile(str(entry / "model.xml"), threads, entry / "compiled"), "cache")
            if _gap(net, fast, check_example) <= ATOL:
                return fast
            log.warning("The cached OpenVINO network in %s disagrees with the weights; converting again.", entry)
        except RuntimeError as exc:  # unreadable IR (truncated, edited): convert again
            log.warning("The cached OpenVINO network in %s cannot be used (%s); converting again.",
                        entry, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        build_cache.discard(entry)
    if progress is not None:
        progress(0, 1, "Converting the network for OpenVINO (once per model and CPU)")
    model = _convert(net, example)
    fast = OpenVinoNetwork(_compile(model, threads), "converted")
    gap = _gap(net, fast, check_example)
    if not gap <= ATOL:
        raise RuntimeError(f"OpenVINO's network changed the outputs by {gap:.2e} (> {ATOL})")
    if cache:
        try:
            with build_cache.writing(key) as folder:
                ov.save_model(model, str(folder / "model.xml"), compress_to_fp16=False)
        except OSError as exc:  # a read-only or full cache: the network still runs, converted next time again
            log.warning("Could not store the OpenVINO network in the cache (%s).", exc)
    if progress is not None:
        progress(1, 1, None)
    return fast
