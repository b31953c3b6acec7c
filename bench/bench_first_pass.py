"""Why a cached OpenVINO network's first click is slower than the next ones, and what a static
input shape would change.

For the network ``auto`` runs for ``--model`` (OpenVINO fp32 or int8, read from the build cache;
built first where it is missing), each round compiles it afresh, as a new ``predict`` process
does, and runs the map tool's input (``--batch`` 2 = the flip pass, 4 channels, ``--size`` px
square, one more click per pass) ``--passes`` times. Two forms, taking turns:

- ``dynamic``: the cached network as the project runs it (any input size);
- ``image-static``: the same network with the image's shape fixed to the click's (the clicks
  stay dynamic), so OpenVINO prepares its kernels and memory plan at compile time.

Printed per form (medians over ``--rounds``): compile time (from OpenVINO's compiled-blob cache,
filled by an untimed compile first), the first pass, the passes after it, and the first pass's
minor page faults and kernel (system) CPU time: the memory a pass touches for the first time.

    .venv/bin/python bench/bench_first_pass.py [--model aerial-finetuned-h18s] [--threads 1]
        [--rounds 5] [--passes 8] [--size 400] [--batch 2]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time

import numpy as np


def entry_xml(model: str) -> tuple[str, str] | None:
    """(path that ran, the cache entry's model.xml) of ``model`` on this CPU; None without OpenVINO."""
    from ritm_qgis.engine.interactive.interactive_settings import load_interactive_backend
    from ritm_qgis.engine.runtime import build_cache, checkpoint_index, openvino_cpu, openvino_int8
    from ritm_qgis.models.checkpoint import resolve_checkpoint

    backend = load_interactive_backend(model, "cpu", "fp32", "auto", warm=False)
    path = backend.optimize
    if path not in ("openvino", "openvino-int8"):
        return None
    facts = checkpoint_index.recall(resolve_checkpoint(model))
    channels = 4 if facts["with_prev_mask"] else 3
    digest, modules = facts["weights_sha256"], facts["modules"]
    key = openvino_int8._key(digest, channels, modules) if path == "openvino-int8" else \
        openvino_cpu.cache_key(digest, channels, modules)
    return path, str(build_cache.lookup(key) / "model.xml")


def one_round(xml: str, form: str, args, cache_dir: str) -> dict:
    import openvino as ov

    core = ov.Core()
    core.set_property({"CACHE_DIR": cache_dir})
    t0 = time.perf_counter()
    model = core.read_model(xml)
    channels = int(model.inputs[0].get_partial_shape()[1].get_length())
    if form == "image-static":
        model.reshape({model.inputs[0]: [args.batch, channels, args.size, args.size],
                       model.inputs[1]: [args.batch, -1, 3]})
    compiled = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY",
                                                 "INFERENCE_NUM_THREADS": args.threads})
    request = compiled.create_infer_request()
    compile_s = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    image = rng.random((args.batch, channels, args.size, args.size), dtype=np.float32)
    if channels == 4:
        image[:, 3] = 0
    times, faults, sys_ms = [], 0, 0.0
    for n in range(1, args.passes + 1):
        points = np.full((args.batch, 2 * n, 3), -1.0, np.float32)
        for i in range(n):
            points[:, i] = [args.size / 2 + 3 * i, args.size / 2, i]
        before = resource.getrusage(resource.RUSAGE_SELF)
        t = time.perf_counter()
        request.infer([image, points])
        times.append(1e3 * (time.perf_counter() - t))
        after = resource.getrusage(resource.RUSAGE_SELF)
        if n == 1:
            faults, sys_ms = after.ru_minflt - before.ru_minflt, 1e3 * (after.ru_stime - before.ru_stime)
    return {"compile_s": compile_s, "first": times[0], "after": float(np.median(times[1:])),
            "faults": faults, "sys_ms": sys_ms}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="aerial-finetuned-h18s")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--passes", type=int, default=8)
    parser.add_argument("--size", type=int, default=400)
    parser.add_argument("--batch", type=int, default=2)
    args = parser.parse_args(argv)
    if args.passes < 2 or args.rounds < 1:
        parser.error("--passes must be at least 2 and --rounds at least 1")

    import torch

    torch.set_num_threads(args.threads)
    found = entry_xml(args.model)
    if found is None:
        print(f"{args.model}: --optimize auto does not run OpenVINO on this machine; nothing to measure.")
        return 0
    path, xml = found
    forms = ("dynamic", "image-static")
    results = {form: [] for form in forms}
    with tempfile.TemporaryDirectory(prefix="ritm-first-pass-") as tmp:
        caches = {form: f"{tmp}/{form}" for form in forms}
        for form in forms:  # fills OpenVINO's compiled-blob cache, as a model used before has it
            one_round(xml, form, argparse.Namespace(**{**vars(args), "passes": 2}), caches[form])
        for _ in range(args.rounds):
            for form in forms:
                results[form].append(one_round(xml, form, args, caches[form]))
    print(f"{args.model} ({path}), {args.threads} thread(s), input {args.batch}x{args.size}x{args.size}, "
          f"{args.rounds} rounds of {args.passes} passes, medians:")
    for form in forms:
        r = {k: float(np.median([x[k] for x in results[form]])) for k in results[form][0]}
        print(f"  {form:12s} compile {r['compile_s']:.2f} s | first pass {r['first']:.0f} ms, after it "
              f"{r['after']:.0f} ms (first +{r['first'] - r['after']:.0f} ms) | first pass: "
              f"{r['faults']:.0f} page faults, {r['sys_ms']:.0f} ms in the kernel")
    return 0


if __name__ == "__main__":
    sys.exit(main())
