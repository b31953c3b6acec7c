"""CPU inference through OpenVINO, in fp32 (the optional 'openvino' speed-up).

OpenVINO (``pip install openvino``, a package of its own, not a requirement of the plugin)
converts the PyTorch network once into its own graph and compiles that for the CPU with its
fused kernels: in fp32 the probabilities match the unmodified network to about 1e-6 and a pass
is 1.2-1.6x faster than the project's oneDNN path (docs/benchmarks.md), on CPUs with or without
bf16 hardware, for any input size and number of clicks (the graph has dynamic shapes).

Converting takes 10-60 s; its result (OpenVINO's IR, ``model.xml`` / ``model.bin``, weights kept
in fp32) is stored in ``build_cache`` keyed by the weights' digest, the network's source code,
OpenVINO's version and the CPU, so a network used before is ready in well under a second (read and
compile; the compiled form is kept by OpenVINO's own cache in the entry's ``compiled/`` folder,
which makes compiling 3x faster). The entry also keeps a check input and the PyTorch network's
logits for it, taken at the conversion: a cached network is checked against those (one small
OpenVINO pass) instead of running the PyTorch network again. A cached entry that cannot be read,
or whose outputs disagree with the stored logits, is rebuilt.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import sys
import warnings

import numpy as np

from ritm_qgis.engine.runtime import build_cache

log = logging.getLogger(__name__)

PATH = "openvino-f32"
# Largest |logit difference| to the PyTorch network accepted on the construction check (fp32 both).
ATOL = 1e-3

# How many times this process converted a network (not counting networks read from the cache).
conversions = 0
CHECK_FILE = "check.npz"  # the check input and the PyTorch network's logits for it, taken at the conversion


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
        self.source = source  # 'converted', 'cache' or 'background' (read from the cache by openvino_prefetch)

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
    if isinstance(model, str):  # read first: OpenVINO then keys its compiled form by the IR's content
        model = core.read_model(model)
    return core.compile_model(model, "CPU", {
        "INFERENCE_PRECISION_HINT": "f32",  # never bf16 / fp16 behind the user's back: this path is exact
        "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_NUM_THREADS": int(threads)})


def _torch_logits(net, example):
    import torch

    image, points = example
    with torch.inference_mode():
        return net(image, points)["instances"].float()


def _gap(reference, fast: OpenVinoNetwork, example) -> float:
    return float((_torch_logits(reference, example) - fast(*example)).abs().max())


def network_modules(net) -> list[str]:
    """The modules of the project's code ``net`` is made of (torch's own layers left out: their
    arithmetic is not ours to track)."""
    names = {type(m).__module__ for m in net.modules()}
    return sorted(n for n in names if n and not n.startswith("torch."))


def code_digest(modules) -> str:
    """SHA-256 of the source files of ``modules`` (names; found by name if not imported): a network
    whose code changed (a plugin update) is converted again although its weights did not."""
    h = hashlib.sha256()
    for name in sorted(modules):
        path = getattr(sys.modules.get(name), "__file__", None)
        if path is None and name.startswith("ritm_qgis."):  # the project's own modules are found by name,
            try:  # without running them (a background load must not import PyTorch: openvino_prefetch)
                spec = importlib.util.find_spec(name)
                path = spec.origin if spec is not None else None
            except (ImportError, ValueError):
                path = None
        h.update(name.encode() + b"\0")
        if path:
            try:
                with open(path, "rb") as f:
                    h.update(f.read())
            except OSError:
                pass
    return h.hexdigest()[:16]


# The network being loaded from the cache in the background (``openvino_prefetch``), at most one:
# [(threads, callable that waits for the load and returns (cache entry, compiled network) or None)].
_pending: list = []


def offer_loaded(threads: int, wait) -> None:
    """``wait()`` will give (entry, the compiled network of that cache entry for ``threads``, already
    checked as ``load_entry`` checks it), or None: ``load_entry`` takes the network instead of
    compiling when it reads that entry with as many threads."""
    _pending[:] = [(int(threads), wait)]


def _take_loaded(entry, threads: int):
    """The network loaded in the background for ``entry`` and ``threads``, or None. A background
    load is waited for first, taken or not: OpenVINO must never read networks in two threads at
    once (each switches the process's locale to "C" and back, and two at once leave it "C", so every
    text file the process reads after that is decoded as ASCII; measured with two compiles)."""
    if not _pending:
        return None
    offered, wait = _pending.pop()
    loaded = wait()
    if loaded is None or offered != int(threads) or str(loaded[0]) != str(entry):
        return None
    return loaded[1]


def compile_checked(entry, threads: int, accept):
    """(the compiled network of the cache entry ``entry``, ``accept(stored logits, its logits)`` =
    (ok, how) on the check input stored in the entry). Raises what reading the entry raises."""
    compiled = _compile(str(entry / "model.xml"), threads, entry / "compiled")
    with np.load(entry / CHECK_FILE) as data:
        image, points, ref = (np.ascontiguousarray(data[k], np.float32) for k in ("image", "points", "logits"))
    got = np.asarray(compiled([image, points])[0], dtype=np.float32)
    return compiled, accept(ref, got) if got.shape == ref.shape else (False, "another output shape")


def load_entry(entry, threads: int, accept, what: str, redo: str) -> OpenVinoNetwork | None:
    """The network of the cache entry ``entry``, compiled and run on the check input stored in it;
    ``accept(stored logits, its logits)`` -> (ok, how) judges it. None when it is refused or cannot
    be read: the entry is then removed (the warning names the network, ``what``, and says it is
    made again, ``redo``). A network compiled and checked in the background (``offer_loaded``) is
    taken as it is."""
    ready = _take_loaded(entry, threads)
    if ready is not None:
        return OpenVinoNetwork(ready, "background")
    try:
        compiled, (ok, how) = compile_checked(entry, threads, accept)
        if ok:
            return OpenVinoNetwork(compiled, "cache")
        log.warning("The cached %s in %s disagrees with the weights (%s); %s.", what, entry, how, redo)
    except (RuntimeError, OSError, ValueError, KeyError) as exc:  # unreadable IR or check file: build again
        log.warning("The cached %s in %s cannot be used (%s); %s.",
                    what, entry, str(exc).splitlines()[0] if str(exc) else type(exc).__name__, redo)
    build_cache.discard(entry)
    return None


def _exact(ref, got) -> tuple[bool, str]:
    gap = float(np.abs(got - ref).max())
    return gap <= ATOL, f"largest logit difference {gap:.2e} > {ATOL}"


def _store_check(folder, example, logits) -> None:
    image, points = example
    np.savez(folder / CHECK_FILE, image=image.float().numpy(), points=points.float().numpy(),
             logits=logits.numpy())


def cache_key(weights_digest: str, channels: int, modules) -> dict:
    """The build cache's key of a conversion (``openvino_int8`` reads its IR too)."""
    return build_cache.entry_key(PATH, weights_digest, f"openvino {version()}", channels=int(channels),
                                 network_code=code_digest(modules))


def cached(weights_digest: str, channels: int, modules, threads: int) -> OpenVinoNetwork | None:
    """The network converted before for these weights (``channels`` inputs, made of ``modules``),
    compiled and checked against the logits stored at its conversion; None when there is none, or
    when it cannot be read or disagrees (then it is removed, to be converted again)."""
    entry = build_cache.lookup(cache_key(weights_digest, channels, modules))
    if entry is None:
        return None
    return load_entry(entry, threads, _exact, "OpenVINO network", "converting again")


def build(net, weights_digest: str, example, check_example, threads: int, cache: bool = True,
          progress=None) -> OpenVinoNetwork:
    """``net`` (eval, CPU, fp32) compiled by OpenVINO, read from the cache when it was converted
    before (``cached``). ``example`` = (image, points) the conversion traces; ``check_example`` is
    run through both networks at a conversion (max |logit difference| <= ATOL, else RuntimeError)
    and kept in the entry with the PyTorch logits. ``progress(done, total, message)`` hears of a
    conversion."""
    import openvino as ov

    channels, modules = int(example[0].shape[1]), network_modules(net)
    if cache:
        fast = cached(weights_digest, channels, modules, threads)
        if fast is not None:
            return fast
    if progress is not None:
        progress(0, 1, "Converting the network for OpenVINO (once per model and CPU)")
    model = _convert(net, example)
    fast = OpenVinoNetwork(_compile(model, threads), "converted")
    ref = _torch_logits(net, check_example)
    gap = float((ref - fast(*check_example)).abs().max())
    if not gap <= ATOL:
        raise RuntimeError(f"OpenVINO's network changed the outputs by {gap:.2e} (> {ATOL})")
    if cache:
        try:
            with build_cache.writing(cache_key(weights_digest, channels, modules)) as folder:
                ov.save_model(model, str(folder / "model.xml"), compress_to_fp16=False)
                _store_check(folder, check_example, ref)
        except OSError as exc:  # a read-only or full cache: the network still runs, converted next time again
            log.warning("Could not store the OpenVINO network in the cache (%s).", exc)
    if progress is not None:
        progress(1, 1, None)
    return fast
