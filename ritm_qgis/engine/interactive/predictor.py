"""The click-by-click segmentation session (the engine's interactive predictor).

    session = Predictor(backend, zoom_in=True, flip=True, threshold=0.49)
    session.set_image(image)                     # once per image; any size, see image_norm
    pred = session.add_click(row, col, True)     # -> Prediction(prob (H, W) float32, mask (H, W) bool)
    session.undo(); session.reset()

Two kinds of backend share the session:

* ``NetworkBackend`` wraps a RITM network (forward(image (B, 4, H, W), points (B, 2N, 3)) ->
  {'instances': logits}). For it the session does what RITM's ``BasePredictor`` does in its
  evaluation: the previous probability map is the 4th input channel (zeros before the first
  click), the zoom-in of ``zoom_in.py`` crops around the object from the second click on,
  with ``flip`` the batch also holds the left-right mirrored input and the two logit maps are
  averaged (logits, not probabilities, as RITM does) before the sigmoid, and the mask is
  probability > ``threshold`` (0.49). These steps are objects (``transforms.py``: ``ZoomIn``,
  ``LimitLongestSide``, ``Flip``, each with forward and inverse and its own state), composed per
  click by ``Predictor._plan`` and undone in reverse by ``_finish``.
* ``GrabCutBackend`` (``grabcut_backend.py``) needs no weights: it gets the whole image, the
  clicks and the previous probability map and returns a probability-like map; zoom-in and
  flip do not apply to it.

Clicks are (row, col) pixel indices of the image given to ``set_image``, origin top-left.

``predict_batch`` advances several sessions by one click each with one forward pass per
input shape, for the evaluation.

Deviation from RITM, on purpose: when the zoom-in keeps an old box but the previous
prediction became empty, RITM feeds the whole image yet pastes the result into the old box;
here that click simply uses the whole image.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from ritm_qgis.core.defaults import MASK_THRESHOLD
from ritm_qgis.core.errors import RitmError
from ritm_qgis.engine.geo.image_norm import to_rgb_float, to_rgb_uint8
from ritm_qgis.engine.interactive import transforms as tf
from ritm_qgis.engine.interactive import zoom_in as zi
from ritm_qgis.engine.interactive.click_encoding import Click, points_array
from ritm_qgis.engine.runtime.device import OPTIMIZE_MODES

DEFAULT_THRESHOLD = MASK_THRESHOLD


@dataclass(frozen=True)
class Prediction:
    """The session's answer to a click, both maps at the size of the image."""

    prob: np.ndarray  # (H, W) float32 in [0, 1]
    mask: np.ndarray  # (H, W) bool, prob > threshold
    roi: tuple | None = None  # box (rmin, rmax, cmin, cmax) the network input was cut from; None = whole image


class Backend:
    """What a session predicts with. Subclasses: NetworkBackend, GrabCutBackend."""

    name = "backend"
    is_network = False

    def predict_direct(self, image_u8: np.ndarray, clicks: Sequence[Click], prev_prob: np.ndarray) -> np.ndarray:
        """Probability map (H, W) float32 for the whole image (non-network backends)."""
        raise NotImplementedError


class NetworkBackend(Backend):
    """A RITM network on a device, run under ``torch.inference_mode``.

    model: a torch module with RITM's forward contract. device: 'auto' | 'cpu' | 'cuda[:N]'
    or a torch.device. precision: 'fp32' | 'fp16' | 'bf16' (autocast, CUDA only).
    optimize: how the network is sped up; ``self.optimize`` is the path actually built (a
    check that fails changes it, with a warning) and ``self.paths_run`` counts the forward
    passes per path. ``self.model`` is the PyTorch network run (the reference for 'openvino').

    * 'fold': BatchNorms folded into the convolutions, channels-last layout (checked against
      the unmodified network on a small input; outputs agree to about 1e-5). Cheap, no
      warm-up.
    * 'onednn' (CPU only; elsewhere 'fold'): 'fold', then every convolution run by oneDNN's
      fused kernel on weights prepacked once, with its ReLU and residual addition absorbed
      (``onednn_fusion``). Any input size, no warm-up; checked like 'fold'. Inputs smaller
      than ``SMALL_INPUT_PIXELS`` (240 x 240) run the 'fold' network (counted as 'fold').
    * 'openvino' (CPU only; needs the openvino package): the network converted and compiled by
      OpenVINO in fp32 (``runtime.openvino_cpu``), exact to about 1e-6 and faster than 'onednn';
      the conversion is cached on disk (``runtime.build_cache``, keyed by ``weights_digest``,
      computed when not given), so only the first use of a model pays it (``progress`` hears of
      it). Falls back to 'onednn' with a warning when the conversion or its check fails.
    * 'openvino-int8' (CPU only; needs the openvino package): 'openvino' with HRNet's stages and
      the OCR head's large convolutions in int8 (``runtime.openvino_int8``: the input side, the
      object-context attention and the classifiers stay fp32), calibrated on shipped aerial
      crops with clicks simulated by the fp32 network; built once per model and CPU and cached
      like 'openvino'; checked against the fp32 network on a real crop (mask IoU, mean
      probability change). Falls back to 'openvino' with a
      warning when it cannot be built or fails its check (remembered: not built again).
    * 'bf16' (CPU only; elsewhere 'fold'; refused on a CPU without bf16 hardware): 'onednn' on
      a bfloat16 copy of the network whose
      input side (normalisation, click encoder, first convolution) stays fp32
      (``runtime.cpu_bf16``): about 3.3x faster than fp32 where the CPU has bf16 in hardware
      (AMX, AVX512-BF16), slower elsewhere. Probabilities move by a few 1e-3; checked against
      the fp32 network at construction (falls back to 'onednn' with a warning beyond 0.05).
    * 'int8' (CPU only; elsewhere 'fold'): the HRNet quantized to int8 (post-training static
      quantization, calibrated on synthetic aerial scenes: ``runtime.quantize``), click branch
      and output in fp32; checked against fp32 like 'bf16'. Not chosen by 'auto'.
    * 'none': the network as given (RITM's arithmetic).
    * 'auto' (default): on the CPU in fp32, 'bf16' where the CPU computes bf16 natively, else
      (with AVX2) 'openvino-int8' where the openvino package is installed, else 'onednn', and
      'fold' below AVX2; elsewhere 'fold' (``runtime.modes``).

    net_clicks_limit: feed only the first N clicks to the network (RITM's option; None = all).
    cuda_graphs: on CUDA, replay the forward pass from CUDA graphs once an input shape repeats
    (module ``cuda_graphs``; at batch 1 the GPU is otherwise bound by kernel launches).
    A CUDA out-of-memory error moves the network to the CPU with a warning and retries.
    """

    is_network = True
    OPTIMIZE = OPTIMIZE_MODES
    # Below this many input pixels (per image of the batch) 'onednn' runs its folded network
    # instead: oneDNN's weights are laid out for 400 x 400 and re-laid out on every pass at
    # other sizes, which costs more than it saves on small inputs (measured crossover between
    # 240 x 192 and 280 x 224 px, hrnet18s: docs/benchmarks.md).
    SMALL_INPUT_PIXELS = 240 * 240

    def __init__(self, model, device="auto", precision: str = "fp32", optimize: str = "auto",
                 net_clicks_limit: int | None = None, name: str | None = None, cuda_graphs: bool = True,
                 weights_digest: str | None = None, progress=None):
        import torch

        from ritm_qgis.engine.runtime.device import check_precision, optimize_model_with_path, resolve_device
        from ritm_qgis.engine.runtime.modes import CPU_ONLY, auto_mode, check_mode

        device = device if isinstance(device, torch.device) else resolve_device(device)
        precision = check_precision(precision)
        if optimize is True or optimize is None:
            optimize = "auto"
        elif optimize is False:
            optimize = "none"
        if optimize not in self.OPTIMIZE:
            raise RitmError(f"Unknown optimisation '{optimize}'; use one of {', '.join(self.OPTIMIZE)}.")
        requested = optimize
        if optimize == "auto":
            optimize = auto_mode(device.type, precision)
        check_mode(optimize, device.type)
        if optimize in CPU_ONLY and device.type != "cpu":
            optimize = "fold"
        self._set_up(device, precision, requested, optimize, net_clicks_limit, name or type(model).__name__,
                     _takes_prev_mask(model))
        model = plain = model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
        channels = 4 if self.with_prev_mask else 3

        def example(size):
            return (torch.rand(1, channels, size, size, generator=torch.Generator().manual_seed(0)),
                    torch.tensor([[[size / 2, size / 2, 0.0], [-1.0, -1.0, -1.0]]]))

        if optimize == "openvino-int8":
            self._openvino_int8_or_fp32(plain, weights_digest, example, progress)
        if self.optimize == "openvino":
            model = self._openvino_or_onednn(plain, weights_digest, example, progress)
        self.channels_last = self.optimize in ("fold", "onednn", "bf16", "int8")
        if self.channels_last:
            # oneDNN lays the weights out for one input size: the zoom-in's 400 is the usual one.
            model, path = optimize_model_with_path(model, self.device, channels_last=True, fold_bn=True,
                                                   example=example(64))
            if self.optimize == "onednn":
                folded = model
                model, path = optimize_model_with_path(folded, self.device, channels_last=True, fold_bn=False,
                                                       example=example(64), onednn_example=example(400))
                if path == "onednn":
                    self._small_model = folded
            if self.optimize in ("bf16", "int8"):
                model = self._checked_low_precision(plain, model, example(400), example(96))
            elif path != self.optimize:
                self._report_fallback(path)
        if self._openvino is None:
            self.model = model.to(self.device)
        if self.channels_last and self.model is not plain and self.device.type == "cpu" and \
                hasattr(self.model, "local_disks"):  # our copy; on CUDA the whole-image maps replay in graphs
            self.model.local_disks = True
        if cuda_graphs and self.device.type == "cuda":
            from ritm_qgis.engine.runtime.cuda_graphs import CudaGraphRunner

            self._graphs = CudaGraphRunner(self._eager)

    def _set_up(self, device, precision, requested, optimize, net_clicks_limit, name, with_prev_mask):
        """The state every backend has, whatever network it runs."""
        import collections

        self.device, self.precision = device, precision
        self.requested = requested
        self.optimize = optimize  # the path actually run (a failed check changes it, with a warning)
        self.paths_run = collections.Counter()  # forward passes per path (the small-input one included)
        self.net_clicks_limit = net_clicks_limit
        self.name = name
        self.with_prev_mask = with_prev_mask
        self._model = self._load_model = None
        self._small_model = None
        self._openvino = None
        self._graphs = None
        self.channels_last = False

    @property
    def needs_warm_up(self) -> bool:
        """Whether a pass before the first click pays: not for OpenVINO, whose first pass at a new
        input size costs about 0.1 s more than the next (fresh memory, page by page), against
        0.4-0.5 s for the warm-up pass (hrnet18s at 400 x 400, one thread, quiet CPU;
        ``bench/bench_first_pass.py``, docs/benchmarks.md)."""
        return self._openvino is None

    @property
    def loaded_in_background(self) -> bool:
        """Whether the OpenVINO network was read from the build cache in the background while the
        process started (``openvino_prefetch``)."""
        return self._openvino is not None and self._openvino.source == "background"

    def _report_fallback(self, path):
        import warnings

        if path != "none":  # 'none': optimize_model has said why already
            warnings.warn(f"--optimize {self.optimize} could not be applied to this network; it runs as "
                          f"--optimize {path}.", RuntimeWarning, stacklevel=3)
        self.optimize = path

    def _openvino_or_onednn(self, plain, weights_digest, example, progress):
        """The OpenVINO network (``self._openvino``; ``self.model`` stays the PyTorch one for
        reference), or, when it fails, ``plain`` with self.optimize = 'onednn' and a warning."""
        import warnings

        import torch

        from ritm_qgis.engine.runtime import openvino_cpu

        if weights_digest is None:
            from ritm_qgis.models.checkpoint import weights_sha256

            weights_digest = weights_sha256(plain.state_dict())
        try:
            self._openvino = openvino_cpu.build(plain, weights_digest, example(400), example(64),
                                                threads=torch.get_num_threads(), progress=progress)
            self.model = plain
        except Exception as exc:  # noqa: BLE001 - a conversion can fail in many ways; oneDNN still runs
            why = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
            warnings.warn(f"--optimize openvino failed on this network ({why}); "
                          "running it as --optimize onednn instead.", RuntimeWarning, stacklevel=3)
            self.optimize = "onednn"
        return plain

    def _openvino_int8_or_fp32(self, plain, weights_digest, example, progress):
        """The int8 OpenVINO network (``self._openvino``), calibrated on the shipped aerial crops
        with clicks simulated by the fp32 network; when it cannot be built or fails its check,
        self.optimize = 'openvino' (fp32) with a warning."""
        import warnings

        import torch

        from ritm_qgis.engine.interactive import calibration_clicks
        from ritm_qgis.engine.runtime import openvino_int8

        if weights_digest is None:
            from ritm_qgis.models.checkpoint import weights_sha256

            weights_digest = weights_sha256(plain.state_dict())
        channels = 4 if self.with_prev_mask else 3
        try:
            self._openvino = openvino_int8.build(
                plain, weights_digest, example(400),
                lambda forward: calibration_clicks.calibration_inputs(forward, channels),
                calibration_clicks.check_input(channels), threads=torch.get_num_threads(), progress=progress)
            self.model = plain
        except Exception as exc:  # noqa: BLE001 - quantizing can fail in many ways; OpenVINO fp32 still runs
            why = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
            warnings.warn(f"--optimize openvino-int8 failed on this network ({why}); "
                          "running it as --optimize openvino (fp32) instead.", RuntimeWarning, stacklevel=3)
            self.optimize = "openvino"

    def _checked_low_precision(self, plain, folded, layout_example, check_example):
        """The bf16 / int8 model if its probabilities stay near the fp32 network's, else 'onednn' in fp32."""
        import warnings

        from ritm_qgis.engine.runtime import cpu_bf16, quantize
        from ritm_qgis.engine.runtime.device import optimize_model_with_path

        try:
            if self.optimize == "bf16":
                fast = cpu_bf16.bf16_model(folded, layout_example)
                gap = cpu_bf16.prob_gap(plain, fast, check_example)
            else:
                from ritm_qgis.engine.interactive.calibration import calibration_inputs

                fast = quantize.quantize_int8(folded, calibration_inputs(check_example[0].shape[1]))
                gap = quantize.prob_gap(plain, fast, check_example)
            reason = f"changed this network's probabilities by {gap:.3f} (> {cpu_bf16.PROB_TOLERANCE})"
        except RuntimeError as exc:
            gap, reason = float("inf"), f"is not available here ({exc})"
        if gap <= cpu_bf16.PROB_TOLERANCE:
            return fast
        warnings.warn(f"--optimize {self.optimize} {reason}; running the network in fp32 (--optimize onednn) "
                      "instead.", RuntimeWarning, stacklevel=3)
        self.optimize = "onednn"
        fast, path = optimize_model_with_path(folded, self.device, channels_last=True, fold_bn=False,
                                              example=check_example, onednn_example=layout_example)
        if path == "onednn":
            self._small_model = folded
        elif path != self.optimize:
            self._report_fallback(path)
        return fast

    @property
    def model(self):
        """The PyTorch network (for 'openvino' the reference, read from its file when first asked
        for where the OpenVINO network came from the build cache: ``from_checkpoint``)."""
        if self._model is None and self._load_model is not None:
            self._model, self._load_model = self._load_model(), None
        return self._model

    @model.setter
    def model(self, value):
        self._model, self._load_model = value, None

    @classmethod
    def from_checkpoint(cls, path_or_name, device="auto", **kwargs) -> "NetworkBackend":
        """Load a network through ``ritm_qgis.models.checkpoint.load_model`` (not at once where
        its OpenVINO network is in the build cache: ``_from_build_cache``)."""
        from ritm_qgis.engine.runtime.device import resolve_device

        try:
            from ritm_qgis.models.checkpoint import load_model
        except ImportError as exc:  # the models package is not installed or incomplete
            raise RitmError(
                f"Cannot load RITM networks ({exc}); reinstall ritm-qgis, or use '--checkpoint grabcut' "
                "for the weight-free GrabCut backend."
            ) from exc
        dev = resolve_device(device) if not hasattr(device, "type") else device
        quick = cls._from_build_cache(path_or_name, dev, kwargs)
        if quick is not None:
            return quick
        model, info = load_model(path_or_name, dev)
        arch = info.get("arch") if isinstance(info, dict) else getattr(info, "arch", None)
        name = _display_name(path_or_name, arch)
        kwargs.setdefault("weights_digest", getattr(info, "weights_sha256", None))
        backend = cls(model, device=dev, name=name, **kwargs)
        backend.info = info
        if getattr(info, "path", None) and kwargs["weights_digest"]:
            from ritm_qgis.engine.runtime import checkpoint_index, openvino_cpu

            checkpoint_index.remember(info.path, weights_sha256=kwargs["weights_digest"], arch=arch,
                                      with_prev_mask=backend.with_prev_mask,
                                      modules=openvino_cpu.network_modules(model))
        return backend

    @classmethod
    def _from_build_cache(cls, path_or_name, device, kwargs) -> "NetworkBackend | None":
        """A backend on the OpenVINO network of the build cache without reading the weights, when
        the path would be 'openvino' or 'openvino-int8' and the file is one loaded before
        (``checkpoint_index``); its PyTorch network is read only if asked for. None otherwise: the
        caller loads in full."""
        import torch

        from ritm_qgis.engine.runtime import checkpoint_index, openvino_cpu
        from ritm_qgis.engine.runtime.modes import auto_mode, check_mode
        from ritm_qgis.models.checkpoint import load_model, resolve_checkpoint

        optimize, precision = kwargs.get("optimize", "auto"), kwargs.get("precision", "fp32")
        if optimize in (True, None):
            optimize = "auto"
        if device.type != "cpu" or precision != "fp32" or set(kwargs) - {"optimize", "precision", "progress",
                                                                          "net_clicks_limit", "cuda_graphs"}:
            return None
        mode = auto_mode("cpu", precision) if optimize == "auto" else optimize
        if mode not in ("openvino", "openvino-int8") or not openvino_cpu.available():
            return None
        check_mode(mode, "cpu")  # refused here as in the full load
        try:
            path = resolve_checkpoint(path_or_name)
        except RitmError:
            return None  # said by the full load
        facts = checkpoint_index.recall_network(path)
        if facts is None:
            return None
        digest, arch, prev, modules = facts
        channels, threads, fast, why = facts.channels, torch.get_num_threads(), None, None
        if mode == "openvino-int8":
            from ritm_qgis.engine.runtime import openvino_int8

            fast, why = openvino_int8.cached(digest, channels, modules, threads)
            if why is not None:
                mode = "openvino"
        if mode == "openvino":
            fast = openvino_cpu.cached(digest, channels, modules, threads)
        if fast is None:
            return None
        if why is not None:
            import warnings

            warnings.warn(f"--optimize openvino-int8 failed on this network ({why}); running it as "
                          "--optimize openvino (fp32) instead.", RuntimeWarning, stacklevel=3)
        backend = cls.__new__(cls)
        backend._set_up(device, precision, optimize, mode, kwargs.get("net_clicks_limit"),
                        _display_name(path_or_name, arch), prev)
        backend._openvino = fast

        def load():
            model, backend.info = load_model(path, device)
            for p in model.parameters():
                p.requires_grad_(False)
            return model.eval()

        backend._load_model = load
        backend.info = None  # what load_model says about the file, once it was read
        return backend

    def image_tensor(self, rgb: np.ndarray):
        """(H, W, 3) float32 -> (1, 3, H, W) tensor on the backend's device."""
        import torch

        return torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))[None].to(self.device)

    def _run(self, images, points):
        import torch

        images = images.to(self.device)
        points = points.to(self.device)
        if self._openvino is not None:
            self.paths_run[self.optimize] += 1
            return self._openvino(images, points)
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        if self._graphs is not None:  # CUDA only, dropped on a fallback to the CPU
            with torch.inference_mode():
                return self._graphs(images, points)
        return self._eager(images, points)

    def _eager(self, images, points):
        import torch

        from ritm_qgis.engine.runtime.device import autocast

        model, path = self.model, self.optimize
        if self._small_model is not None and images.shape[2] * images.shape[3] < self.SMALL_INPUT_PIXELS:
            model, path = self._small_model, "fold"
        self.paths_run[path] += 1
        with torch.inference_mode(), autocast(self.device, self.precision):
            out = model(images, points)["instances"]
        return out.float().contiguous()

    def forward(self, images, points):
        """Logits (B, 1, h, w) float32 for a (B, C, h, w) input batch and (B, 2N, 3) points."""
        import torch

        from ritm_qgis.engine.runtime.device import empty_cuda_cache, is_out_of_memory, warn_cpu_fallback

        try:
            return self._run(images, points)
        except Exception as exc:  # noqa: BLE001 - only CUDA OOM is handled, the rest re-raised
            if self.device.type != "cuda" or not is_out_of_memory(exc):
                raise
            warn_cpu_fallback(self.device, exc)
            self._graphs = None
            self.device = torch.device("cpu")
            self.model.to(self.device)
            self.precision = "fp32"
            empty_cuda_cache()
            return self._run(images, points)


def _display_name(path_or_name, arch) -> str:
    return f"{path_or_name} ({arch})" if arch and arch != str(path_or_name) else str(path_or_name)


def _takes_prev_mask(model) -> bool:
    """Whether the network wants the previous mask as a 4th input channel (RITM's with_prev_mask)."""
    if hasattr(model, "with_prev_mask"):
        return bool(model.with_prev_mask)
    config = getattr(model, "config", None)
    if hasattr(config, "with_prev_mask"):
        return bool(config.with_prev_mask)
    if hasattr(model, "input_channels"):
        return int(model.input_channels) == 4
    return True


@dataclass
class _Plan:
    """One network input of a session's step, ready to be batched."""

    session: "Predictor"
    net_input: object  # (1 or 2, C, h, w) tensor
    click_lists: list
    view_box: tuple | None  # box the input was cut from (None: whole image, unresized)
    roi: tuple | None  # zoom-in box kept for the next steps
    transforms: list  # transforms.Transform chain of this step (crop, flip)


@dataclass
class _State:
    clicks: list = field(default_factory=list)
    prob: np.ndarray | None = None
    roi: tuple | None = None  # zoom-in box in use (RITM's object roi)
    view_box: tuple | None = None  # box the last network input was cut from


class Predictor:
    """One interactive segmentation session (see module doc).

    backend: a NetworkBackend or GrabCutBackend. zoom_in: True for RITM's defaults, False for
    none, or a ``ZoomInParams``. flip: average with the mirrored pass. threshold: mask = prob >
    threshold. max_size: if set, whole-image passes of a network backend are resized so the
    longer side is at most this (RITM's LimitLongestSide; off by default as in its evaluation).
    """

    def __init__(self, backend: Backend, zoom_in: bool | zi.ZoomInParams = True, flip: bool = True,
                 threshold: float = DEFAULT_THRESHOLD, max_size: int | None = None):
        if not isinstance(backend, Backend):
            raise TypeError(f"backend must be a NetworkBackend or GrabCutBackend, not {type(backend).__name__}")
        self.backend = backend
        if zoom_in is True:
            zoom_in = zi.ZoomInParams()
        self._zoom_spec: zi.ZoomInParams | None = zoom_in or None
        self.zoom_params: zi.ZoomInParams | None = self._zoom_spec.at_resolution(None) if self._zoom_spec else None
        self.flip = bool(flip)
        self.threshold = float(threshold)
        self.max_size = max_size
        self._rgb = None
        self._rgb_u8 = None
        self._image_t = None
        self._state = _State()
        self._history: list[_State] = []

    @property
    def first_crop_m(self) -> float | None:
        """The ground (metres) the first click's crop covers; None when it is counted in pixels."""
        return self._zoom_spec.first_crop_m if self._zoom_spec is not None else None

    def set_ground_resolution(self, metres_per_pixel: float | None, max_first_crop: int | None = None) -> None:
        """The image's pixel size on the ground, for zoom-in sizes given in metres (before clicks);
        ``max_first_crop``: see ``ZoomInParams.at_resolution``."""
        if self._zoom_spec is not None:
            self.zoom_params = self._zoom_spec.at_resolution(metres_per_pixel, max_first_crop)

    # ----------------------------------------------------------------- image and state
    def set_image(self, image) -> None:
        """Start a session on an image (clicks and history are cleared)."""
        rgb = to_rgb_float(image)
        self._rgb = rgb
        self._rgb_u8 = to_rgb_uint8(image) if not self.backend.is_network else None
        self._image_t = self.backend.image_tensor(rgb) if self.backend.is_network else None
        self.reset()

    def reset(self) -> None:
        """Forget all clicks (the image stays)."""
        self._state = _State()
        self._history = []

    @property
    def image_shape(self) -> tuple[int, int]:
        self._require_image()
        return self._rgb.shape[:2]

    @property
    def clicks(self) -> list[Click]:
        return list(self._state.clicks)

    @property
    def prob(self) -> np.ndarray:
        """Current probability map (zeros before the first click)."""
        if self._state.prob is None:
            return np.zeros(self.image_shape, np.float32)
        return self._state.prob.copy()

    @property
    def mask(self) -> np.ndarray:
        return self.prob > self.threshold

    @property
    def roi(self) -> tuple | None:
        """The zoom-in box in use (rmin, rmax, cmin, cmax), or None."""
        return self._state.roi

    def prediction(self) -> Prediction:
        """The current prediction (copies; zeros before the first click)."""
        prob = self.prob
        return Prediction(prob, prob > self.threshold, self._state.view_box)

    def _require_image(self):
        if self._rgb is None:
            raise RitmError("No image is set; call set_image(image) before clicking.")

    def _check_click(self, row, col, positive) -> Click:
        self._require_image()
        h, w = self._rgb.shape[:2]
        try:
            r, c = int(row), int(col)
        except (TypeError, ValueError) as exc:
            raise RitmError(f"Click coordinates must be numbers, got row={row!r}, col={col!r}.") from exc
        if r != row or c != col:
            raise RitmError(f"Click coordinates must be whole pixels, got row={row!r}, col={col!r}.")
        if not (0 <= r < h and 0 <= c < w):
            raise RitmError(
                f"The click at row {r}, column {c} is outside the image, which has rows 0..{h - 1} and "
                f"columns 0..{w - 1}; click inside the image."
            )
        return Click(r, c, bool(positive))

    # ----------------------------------------------------------------- clicking
    def add_click(self, row: int, col: int, positive: bool = True) -> Prediction:
        """Add a click at (row, col) and return the new prediction for the whole image."""
        click = self._check_click(row, col, positive)
        if self.backend.is_network:
            return predict_batch([(self, click)])[0]
        clicks = self._state.clicks + [click]
        prev = self._state.prob if self._state.prob is not None else np.zeros(self.image_shape, np.float32)
        prob = np.asarray(self.backend.predict_direct(self._rgb_u8, clicks, prev), dtype=np.float32)
        return self._commit(clicks, prob, None)

    def undo(self) -> Prediction | None:
        """Remove the last click; the previous prediction comes back exactly. None if no click."""
        if not self._history:
            return None
        self._state = self._history.pop()
        return self.prediction()

    def _commit(self, clicks, prob, roi, view_box=None) -> Prediction:
        self._history.append(self._state)
        self._state = _State(list(clicks), prob, roi, view_box)
        return self.prediction()

    # ----------------------------------------------------------------- network steps
    def _plan(self, clicks, channel_prob, roi_prob, current_roi) -> _Plan:
        import torch

        h, w = self.image_shape
        if self._image_t.device != self.backend.device:
            self._image_t = self._image_t.to(self.backend.device)
        x = self._image_t
        if self.backend.with_prev_mask:
            prev = channel_prob if channel_prob is not None else np.zeros((h, w), np.float32)
            prev_t = torch.from_numpy(np.ascontiguousarray(prev, dtype=np.float32))[None, None].to(x.device)
            x = torch.cat([x, prev_t], dim=1)

        crop = None
        if self.zoom_params is not None:
            crop = tf.ZoomIn.choose(self.zoom_params, clicks, roi_prob, current_roi, (h, w))
        roi_state = crop.roi if crop is not None else current_roi
        if crop is None:
            crop = tf.LimitLongestSide.choose(self.max_size, (h, w))
        transforms = tf.compose(crop, self.flip)
        x, lists = tf.run_forward(transforms, x, clicks)
        return _Plan(self, x, lists, crop.box if crop is not None else None, roi_state, transforms)

    def _finish(self, plan: _Plan, logits) -> np.ndarray:
        import torch.nn.functional as F

        if tuple(logits.shape[2:]) != tuple(plan.net_input.shape[2:]):
            logits = F.interpolate(logits, size=tuple(plan.net_input.shape[2:]), mode="bilinear",
                                   align_corners=True)
        prob = tf.run_inverse(plan.transforms, logits)
        return prob[0, 0].float().cpu().numpy().astype(np.float32, copy=False)


def _forward_plans(plans: Sequence[_Plan]) -> list:
    """Run the plans' inputs through their backends, batching equal shapes; logits per plan."""
    import torch

    out: list = [None] * len(plans)
    groups: dict = {}
    for i, p in enumerate(plans):
        key = (id(p.session.backend), tuple(p.net_input.shape[1:]), str(p.net_input.device))
        groups.setdefault(key, []).append(i)
    for idx in groups.values():
        backend = plans[idx[0]].session.backend
        images = torch.cat([plans[i].net_input for i in idx], dim=0)
        lists = [cl for i in idx for cl in plans[i].click_lists]
        points = torch.from_numpy(points_array(lists, backend.net_clicks_limit))
        logits = backend.forward(images, points)
        start = 0
        for i in idx:
            n = plans[i].net_input.shape[0]
            out[i] = logits[start:start + n]
            start += n
    return out


def predict_batch(steps: Sequence[tuple[Predictor, Click]]) -> list[Prediction]:
    """Add one click to each of several network sessions, in one forward pass per input shape.

    steps: (session, Click) pairs, each session at most once; returns their Predictions in
    order, exactly as ``session.add_click`` would (up to floating-point batching effects).
    """
    sessions = [s for s, _ in steps]
    if len(set(map(id, sessions))) != len(sessions):
        raise ValueError("each session may appear only once in a batch")
    checked = []
    for s, c in steps:
        if not s.backend.is_network:
            raise ValueError("predict_batch needs network backends; call add_click for the others")
        checked.append(s._check_click(c.row, c.col, c.is_positive))
    plans = []
    for s, c in zip(sessions, checked):
        st = s._state
        plans.append(s._plan(st.clicks + [c], st.prob, st.prob, st.roi))
    logits = _forward_plans(plans)
    results = []
    for s, c, plan, lg in zip(sessions, checked, plans, logits):
        clicks = s._state.clicks + [c]
        prob = s._finish(plan, lg)
        roi, view_box = plan.roi, plan.view_box
        if s.zoom_params is not None and zi.needs_recompute(s.zoom_params, prob, roi):
            # RITM redoes a first whole-image prediction on the crop when the object is small;
            # the 4th channel stays the previous map, the box comes from the new one.
            plan2 = s._plan(clicks, s._state.prob, prob, None)
            prob = s._finish(plan2, _forward_plans([plan2])[0])
            roi, view_box = plan2.roi, plan2.view_box
        results.append(s._commit(clicks, prob, roi, view_box))
    return results
