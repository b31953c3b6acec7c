"""CPU inference through OpenVINO with most convolutions in int8 (the 'openvino-int8' speed-up).

Built from the fp32 OpenVINO network (``openvino_cpu``) without any quantization toolkit: a
FakeQuantize node (OpenVINO's opset) is put on the input of each chosen convolution (per tensor,
256 levels: unsigned [0, max] after a ReLU, symmetric otherwise, the range observed on the
calibration inputs' overall min and max) and one on its weights (per output channel,
symmetric, on int8's grid but using 7 bits: ``WEIGHT_STRETCH``). OpenVINO's CPU plugin then runs
those convolutions with its int8 kernels (``jit_avx2_I8`` and the like; VNNI / AMX where the CPU
has them) and everything else in fp32.

Kept in fp32 (``KEEP_FP32``): the input side (the image's and the clicks' first convolutions up
to and including the one that takes their sum: quantizing it too took the mean mask IoU to fp32
on validation sessions from 0.97 to 0.89), the OCR's object-context attention (its small 1x1
convolutions: with them in int8, NoC20@85 moved by +0.27 on 48 held-out aerial buildings with
the clicks held fixed; kept in fp32, by 0.00 there and +0.04 on all 186; docs/benchmarks.md) and
the classifiers (the one-channel convolutions giving the logits: cheap). HRNet's stages and the
OCR head's large convolutions run in int8. The calibration inputs are real network inputs of
simulated sessions (``interactive.calibration_clicks``), given by the caller as a callable so that
a cached network never computes them.

The quantized network (OpenVINO IR with its FakeQuantize nodes) is stored in ``build_cache``
keyed by the weights' digest, the network's source code, OpenVINO's version and the CPU. A network
just built is compared with the PyTorch network on a small real input (``check``): the masks must
agree to ``CHECK_IOU`` and the probabilities on average to ``CHECK_MEAN_GAP``, else RuntimeError
(the caller runs OpenVINO fp32 instead). The check input and the PyTorch logits for it are kept in
the entry, so a network read from the cache is checked the same way without a PyTorch pass
(``cached``); a cached entry that fails is removed and built again. A build that fails its
check is remembered too (``cached`` says why): those weights then run in fp32 without a new
attempt.
"""

from __future__ import annotations

import logging

import numpy as np

from ritm_qgis.core.defaults import MASK_THRESHOLD
from ritm_qgis.engine.runtime import build_cache, openvino_cpu

log = logging.getLogger(__name__)

PATH = "openvino-int8"
FORMAT = 4  # the recipe below: a change of groups, levels or estimator changes it (and the cache key)
KEEP_FP32 = ("input", "attention", "classifier")
GROUPS = ("input", "body", "head", "attention", "classifier")
ACT_LEVELS = 256
WEIGHT_LEVELS = 255
# Weights use 7 of int8's 8 bits (|q| <= 63): without VNNI, x86's int8 product (vpmaddubsw) adds
# two u8 x s8 products in int16 and saturates beyond 32767, which 8-bit weights reach (measured:
# mean mask IoU to fp32 0.968 -> 0.975 on validation sessions, the same as without saturation).
WEIGHT_STRETCH = 127 / 63
CHECK_IOU = 0.9
CHECK_MEAN_GAP = 0.03

# How many times this process quantized a network (not counting networks read from the cache).
quantizations = 0


def conv_groups(model) -> dict:
    """{group: [Convolution nodes]} in the order they run. 'input': before and including the
    first convolution of a sum (the image's and the clicks' features added); 'classifier':
    one output channel; after the input side, from the first convolution of a concatenation
    (HRNet's branches joined for OCR) on, 'head' for the convolutions of a concatenation (the
    OCR's 3x3 on the joined branches, its soft-region classifier, the fusion of context and
    features) and 'attention' for the others (the object-context attention's small 1x1
    convolutions); 'body': the rest (the HRNet's stages)."""
    convs = [op for op in model.get_ordered_ops() if op.get_type_name() == "Convolution"]
    groups = {g: [] for g in GROUPS}
    stage = "input"
    for conv in convs:
        source = conv.input_value(0).get_node().get_type_name()
        if int(conv.input_value(1).get_partial_shape()[0].get_length()) == 1:
            groups["classifier"].append(conv)
            continue
        if stage == "body" and source == "Concat":
            stage = "head"
        if stage == "head":
            groups["head" if source == "Concat" else "attention"].append(conv)
            continue
        groups[stage].append(conv)
        if stage == "input" and source == "Add":
            stage = "body"
    if stage == "input":  # no sum of image and clicks: only the first convolution is the input side
        groups["body"], groups["input"] = groups["input"][1:], groups["input"][:1]
    return groups


def chosen_convs(model, keep=KEEP_FP32) -> list:
    return [c for g, convs in conv_groups(model).items() if g not in keep for c in convs]


def _source_key(output) -> tuple:
    return output.get_node().get_friendly_name(), output.get_index()


def activation_ranges(model_xml: str, keys: list, inputs, threads: int, progress=None,
                      aggregate: str = "max") -> dict:
    """{(node name, output index): (low, high)} of the tensors ``keys`` over ``inputs``: the
    overall min and max (``aggregate='max'``), or the mean over the inputs of each input's min
    and max (``'mean'``: finer steps, but what it clips cost more: mean mask IoU to fp32 0.917
    against 0.968 on validation sessions, docs/benchmarks.md)."""
    import openvino as ov

    core = ov.Core()
    probe = core.read_model(model_xml)
    by_key = {}
    for op in probe.get_ordered_ops():
        for out in op.outputs():
            if _source_key(out) in keys:
                by_key[_source_key(out)] = out
    wanted = [k for k in keys if k in by_key]
    probe.add_outputs([by_key[k] for k in wanted])
    compiled = core.compile_model(probe, "CPU", {"INFERENCE_PRECISION_HINT": "f32",
                                                 "INFERENCE_NUM_THREADS": int(threads)})
    lows = {k: [] for k in wanted}
    highs = {k: [] for k in wanted}
    first = len(compiled.outputs) - len(wanted)
    for n, (image, points) in enumerate(inputs):
        result = compiled([image, points])
        for i, k in enumerate(wanted):
            a = result[compiled.outputs[first + i]]
            lows[k].append(float(a.min()))
            highs[k].append(float(a.max()))
        if progress is not None:
            progress(n + 1, len(inputs))
    pick_low, pick_high = (np.mean, np.mean) if aggregate == "mean" else (np.min, np.max)
    return {k: (-_round_up(-float(pick_low(lows[k]))), _round_up(float(pick_high(highs[k])))) for k in wanted}


def _round_up(x: float) -> float:
    """``x`` rounded up to 3 significant digits: the fp32 network's last-bit differences between
    runs (another thread count, an IR read back) do not move a range, so a rebuild gives the
    same int8 network."""
    if x == 0 or not np.isfinite(x):
        return float(x)
    step = 10.0 ** (np.floor(np.log10(abs(x))) - 2)
    return float(np.ceil(x / step) * step)


def _fake_quantize(source, low, high, levels):
    import openvino.opset13 as ops

    low, high = np.asarray(low, np.float32), np.asarray(high, np.float32)
    return ops.fake_quantize(source, low, high, low, high, levels).output(0)


def insert_fake_quantize(model, convs, ranges: dict) -> int:
    """FakeQuantize on the inputs and weights of ``convs`` (in place); returns how many
    convolutions were quantized (one without an observed range stays fp32)."""
    shared = {}
    done = 0
    for conv in convs:
        source = conv.input_value(0)
        weights = conv.input_value(1)
        if _source_key(source) not in ranges or weights.get_node().get_type_name() != "Constant":
            continue
        key = _source_key(source)
        if key not in shared:  # one FakeQuantize per tensor, whatever reads it
            lo, hi = ranges[key]
            if lo >= 0:
                low, high = 0.0, max(hi, 1e-6)
            else:
                a = max(-lo, hi, 1e-6)
                low, high = -a * (ACT_LEVELS // 2) / (ACT_LEVELS // 2 - 1), a
            shared[key] = _fake_quantize(source, low, high, ACT_LEVELS)
        conv.input(0).replace_source_output(shared[key])
        w = weights.get_node().get_data()
        bound = np.maximum(np.abs(w).reshape(w.shape[0], -1).max(axis=1), 1e-12)
        bound = bound.reshape((-1,) + (1,) * (w.ndim - 1))
        bound = bound * WEIGHT_STRETCH
        conv.input(1).replace_source_output(_fake_quantize(weights, -bound, bound, WEIGHT_LEVELS))
        done += 1
    model.validate_nodes_and_infer_types()
    return done


def quantize(model_xml: str, inputs, threads: int, keep=KEEP_FP32, progress=None, aggregate: str = "max"):
    """The fp32 IR at ``model_xml`` with FakeQuantize on the convolutions outside ``keep``,
    activation ranges from ``inputs`` = [(image, points), ...]."""
    import openvino as ov

    global quantizations
    model = ov.Core().read_model(model_xml)
    convs = chosen_convs(model, keep)
    keys = list(dict.fromkeys(_source_key(c.input_value(0)) for c in convs))
    ranges = activation_ranges(model_xml, keys, inputs, threads, progress, aggregate)
    if insert_fake_quantize(model, convs, ranges) == 0:
        raise RuntimeError("no convolution of this network can be quantized")
    quantizations += 1
    return model


def agreement(reference_logits, logits) -> tuple[float, float]:
    """(mask IoU, mean |probability difference|) of two logit maps."""
    p0 = 1.0 / (1.0 + np.exp(-np.asarray(reference_logits, np.float64)))
    p1 = 1.0 / (1.0 + np.exp(-np.asarray(logits, np.float64)))
    m0, m1 = p0 > MASK_THRESHOLD, p1 > MASK_THRESHOLD
    union = (m0 | m1).sum()
    iou = float((m0 & m1).sum() / union) if union else 1.0
    return iou, float(np.abs(p0 - p1).mean())


def _agrees(ref, got) -> tuple[bool, str]:
    iou, gap = agreement(ref, got)
    ok = iou >= CHECK_IOU and gap <= CHECK_MEAN_GAP
    return ok, f"mask IoU {iou:.3f} (>= {CHECK_IOU}), mean probability change {gap:.3f} (<= {CHECK_MEAN_GAP})"


def _check(net, fast, check) -> tuple[bool, str, np.ndarray]:
    """(agrees, how, the PyTorch logits) of ``fast`` against ``net`` on ``check``."""
    import torch

    image, points = check
    with torch.inference_mode():
        ref = net(torch.from_numpy(image), torch.from_numpy(points))["instances"].float().numpy()
    got = fast(torch.from_numpy(image), torch.from_numpy(points)).numpy()
    return (*_agrees(ref, got), ref)


def _key(weights_digest: str, channels: int, modules) -> dict:
    return build_cache.entry_key(PATH, weights_digest, f"openvino {openvino_cpu.version()}", channels=int(channels),
                                 format=FORMAT, network_code=openvino_cpu.code_digest(modules))


REFUSED_FILE = "refused.txt"  # an entry that says why these weights' int8 network failed its check


def _refusal(entry) -> str | None:
    if not (entry / REFUSED_FILE).is_file():
        return None
    try:
        return (entry / REFUSED_FILE).read_text(encoding="utf-8").strip() or "its check failed"
    except OSError:
        return None


def _from_entry(key: dict, threads: int) -> tuple[openvino_cpu.OpenVinoNetwork | None, str | None]:
    entry = build_cache.lookup(key)
    if entry is None:
        return None, None
    why = _refusal(entry)
    if why is not None:
        return None, why
    return openvino_cpu.load_entry(entry, threads, _agrees, "int8 OpenVINO network", "building it again"), None


def cached(weights_digest: str, channels: int, modules,
           threads: int) -> tuple[openvino_cpu.OpenVinoNetwork | None, str | None]:
    """(the int8 network built before for these weights, compiled and checked against the
    PyTorch logits stored at its build, or None; why its build was refused, or None). None and
    None when there is no entry, or when it cannot be read or fails the check (then it is removed,
    to be built again). A refusal is remembered on this CPU, runtime and code: such weights are
    not quantized again at every load."""
    return _from_entry(_key(weights_digest, channels, modules), threads)


def _fp32_network(net, weights_digest, example, threads, cache, folder):
    """(fp32 IR path, compiled fp32 network): ``openvino_cpu``'s cached conversion (made and
    stored now when missing, so 'openvino' never converts again), else converted into ``folder``."""
    import openvino as ov

    import torch

    small = (torch.rand(1, example[0].shape[1], 64, 64, generator=torch.Generator().manual_seed(0)),
             torch.tensor([[[32.0, 32.0, 0.0], [-1.0, -1.0, -1.0]]]))
    if cache:
        fp32 = openvino_cpu.build(net, weights_digest, example, small, threads, cache=True)
        entry = build_cache.lookup(openvino_cpu.cache_key(weights_digest, int(example[0].shape[1]),
                                                          openvino_cpu.network_modules(net)))
        if entry is not None and (entry / "model.xml").is_file():
            return str(entry / "model.xml"), fp32
    xml = str(folder / "fp32.xml")
    ov.save_model(openvino_cpu._convert(net, example), xml, compress_to_fp16=False)
    return xml, openvino_cpu.OpenVinoNetwork(openvino_cpu._compile(xml, threads), "converted")


def build(net, weights_digest: str, example, calibration, check, threads: int, cache: bool = True,
          progress=None) -> openvino_cpu.OpenVinoNetwork:
    """``net`` (eval, CPU, fp32) quantized and compiled by OpenVINO, read from the cache when it
    was built before. ``example`` = (image, points) tensors the conversion traces;
    ``calibration(forward)`` -> [(image, points) arrays] given the fp32 network's forward
    (called only on a build); ``check`` = (image, points) arrays (see the module doc).
    ``progress(done, total, message)`` hears of a build."""
    import tempfile
    from pathlib import Path

    import openvino as ov

    key = _key(weights_digest, int(example[0].shape[1]), openvino_cpu.network_modules(net))
    if cache:
        fast, why = _from_entry(key, threads)
        if fast is not None:
            return fast
        if why is not None:
            raise RuntimeError(f"{why} (when it was built; remembered in the build cache)")

    def step(done, total, message=None):
        if progress is not None:
            progress(done, total, message)

    message = "Building the int8 OpenVINO network (once per model and CPU)"
    step(0, 3, message)
    with tempfile.TemporaryDirectory(prefix="ritm-int8-") as tmp:
        xml, reference = _fp32_network(net, weights_digest, example, threads, cache, Path(tmp))
        step(1, 3, message)

        def forward(image, points):
            import torch

            return reference(torch.from_numpy(image), torch.from_numpy(points)).numpy()

        inputs = calibration(forward)
        step(2, 3, message)
        model = quantize(xml, inputs, threads)
    fast = openvino_cpu.OpenVinoNetwork(openvino_cpu._compile(model, threads), "converted")
    ok, how, ref = _check(net, fast, check)
    if not ok:
        why = f"the int8 network is too far from fp32 on the check input: {how}"
        if cache:
            try:
                with build_cache.writing(key) as folder:
                    (folder / REFUSED_FILE).write_text(why + "\n", encoding="utf-8")
            except OSError:
                pass
        raise RuntimeError(why)
    if cache:
        try:
            with build_cache.writing(key) as folder:
                ov.save_model(model, str(folder / "model.xml"), compress_to_fp16=False)
                np.savez(folder / openvino_cpu.CHECK_FILE, image=check[0], points=check[1], logits=ref)
        except OSError as exc:  # a read-only or full cache: the network still runs, built next time again
            log.warning("Could not store the int8 OpenVINO network in the cache (%s).", exc)
        entry = build_cache.lookup(key)
        if entry is not None:  # compiled once more from the entry, so OpenVINO keeps the compiled blob
            try:  # there now: the next load of this model compiles in a third of the time
                fast = openvino_cpu.OpenVinoNetwork(
                    openvino_cpu._compile(str(entry / "model.xml"), threads, entry / "compiled"), "converted")
            except RuntimeError as exc:
                log.warning("Could not keep the compiled int8 OpenVINO network (%s).", exc)
    step(3, 3, None)
    return fast
