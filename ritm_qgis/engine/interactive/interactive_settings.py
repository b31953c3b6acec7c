"""Settings for a person clicking (map tool, ``predict``, Processing), as in RITM's interactive demo.

RITM evaluates with one set of zoom-in settings and runs its demo with another. The evaluation's
(``ZoomInParams()``, kept by ``evaluate``) sends the first click through the network on the
whole image at full resolution: on a 1000 x 1000 image several times the cost of a later click. The demo's, used here for interactive work:

* a fixed focus crop: every zoom-in crop is resized to 400 x 400 (``target_size=(400, 400)``),
  so every click after the first feeds the network one input size;
* ``skip_clicks=-1``: the first click already uses a crop, so it costs what a later click costs;
  from the second click on the crop follows the object as in the evaluation (expansion 1.4, at
  least 200 px, and at least ``LATER_CROP_FLOOR_M`` of ground on rasters finer than 0.45 m);
* the first click's crop (issue 22) is ``FIRST_CLICK_M`` metres of ground centred on the click,
  resampled to ``NETWORK_PIXEL_M`` per pixel (``zoom_in.ZoomInParams.first_crop_m``): at 0.5 m
  that is the map tool's 384-px window, at 0.1 m, 0.3 m or 1.5 m about the same ground at about
  the same scale (the window holds at least 180 m, ``context_window.default_min_side``, and the
  first crop, cut to the window, goes to 400 px: 0.45-0.5 m per network pixel; below 0.09 m the
  window stops at 2048 px and the crop goes to a smaller input at 0.5 m), and in ``predict`` on a
  large image 400 px around the click instead of the whole image resized to 400 px (a blob
  several times the roof). Without a georeference 0.5 m is assumed;
* ``max_size=800``: whole-image passes (zoom-in turned off) are resized to at most 800 px on
  the longer side (RITM's ``--limit-longest-size``).

``load_interactive_backend`` also runs the network once on that input size while the model
loads, so the one-off costs (oneDNN kernels for the shape, memory pools) never land on a click;
not the OpenVINO network, whose one-off for a new input size (about 0.1 s) is less than the
pass a warm-up costs (0.4-0.5 s; docs/benchmarks.md). The map tool loads without the warm-up and
runs it right after, while the user reaches for the mouse (``gui/worker.py``); ``predict`` calls
``load_in_background`` first, which loads a cached OpenVINO network and gives it that pass in the
background while the command still starts.
"""

from __future__ import annotations

from ritm_qgis.engine.interactive import zoom_in as zi
from ritm_qgis.engine.interactive.predictor import DEFAULT_THRESHOLD, Predictor
from ritm_qgis.engine.interactive.raster_session import OutlineSettings

FOCUS_CROP = (400, 400)
FIRST_CLICK_M = 200.0  # the ground the first click sees: the map tool's 384-px window at 0.5 m (and a bit)
NETWORK_PIXEL_M = 0.5  # ... at about the shipped aerial models' training resolution: 400 px, FOCUS_CROP's size
LATER_CROP_FLOOR_M = 90.0  # 200 px at 0.45 m: later crops keep their 200 px at 0.45 m and coarser
INTERACTIVE_ZOOM = zi.ZoomInParams(target_size=FOCUS_CROP, skip_clicks=-1, first_crop_m=FIRST_CLICK_M,
                                   network_pixel_m=NETWORK_PIXEL_M, min_crop_floor_m=LATER_CROP_FLOOR_M)
MAX_SIZE = 800
# How the map tool turns a mask into the polygon it draws (the dock's defaults; evaluate --as-drawn)
TOOL_OUTLINE = OutlineSettings(simplify_px=1.0, regularize=True, min_area_m2=2.0, regularize_mode="building")


def interactive_predictor(backend, threshold: float = DEFAULT_THRESHOLD, flip: bool = True,
                          zoom_in: bool | zi.ZoomInParams = True) -> Predictor:
    """A session with the map tool's settings (network backends) or the plain one (GrabCut)."""
    if not backend.is_network:
        return Predictor(backend, threshold=threshold)
    zoom = zoom_in if isinstance(zoom_in, zi.ZoomInParams) else (INTERACTIVE_ZOOM if zoom_in else False)
    return Predictor(backend, zoom_in=zoom, flip=flip, threshold=threshold, max_size=MAX_SIZE)


def warm_up(backend, flip: bool = True) -> None:
    """One untimed pass at the focus crop's size (batch 2 with flip), if ``backend`` is a network."""
    if not backend.is_network:
        return
    import torch

    channels = 4 if backend.with_prev_mask else 3
    batch = 2 if flip else 1
    images = torch.zeros((batch, channels, *FOCUS_CROP))
    points = torch.tensor([[[FOCUS_CROP[0] / 2, FOCUS_CROP[1] / 2, 0.0], [-1.0, -1.0, -1.0]]] * batch)
    backend.forward(images, points)
    if hasattr(backend, "paths_run"):  # count the clicks' passes only
        backend.paths_run.clear()


def load_in_background(spec: str, device: str = "auto", precision: str = "fp32", optimize: str = "auto",
                       threads: int | None = None, flip: bool = True, zoom_in: bool = True) -> bool:
    """Start loading ``spec``'s cached OpenVINO network, with one pass at the focus crop's size
    (``zoom_in``), in the background, for a ``load_interactive_backend`` with the same arguments
    that comes later in this process (``runtime.openvino_prefetch``, whose thread finds out whether
    anything is cached); False where the load would not run OpenVINO on the CPU. ``threads``: what
    PyTorch will be set to (None: its default)."""
    from ritm_qgis.engine.runtime import openvino_prefetch
    from ritm_qgis.engine.runtime.device import cuda_gpus

    if precision != "fp32" or device not in ("auto", "cpu") or (device == "auto" and cuda_gpus(import_torch=False)):
        return False
    warm = (1 if not flip else 2, *FOCUS_CROP) if zoom_in else None
    return openvino_prefetch.start(spec, optimize, threads or openvino_prefetch.default_threads(), warm)


def load_interactive_backend(spec: str, device: str = "auto", precision: str = "fp32", optimize: str = "auto",
                             flip: bool = True, warm: bool = True, progress=None):
    """``backends.build_backend`` followed by ``warm_up`` where the backend gains from one (``warm``;
    ``needs_warm_up``): the model is ready for the first click. ``progress`` as in ``build_backend``."""
    from ritm_qgis.engine.interactive.backends import build_backend

    backend = build_backend(spec, device, precision, optimize, progress=progress)
    if warm and getattr(backend, "needs_warm_up", True):
        warm_up(backend, flip)
    return backend
