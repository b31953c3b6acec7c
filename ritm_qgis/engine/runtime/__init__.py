"""Where and how the networks run: ``device`` (resolve cpu/cuda, precision, ``optimize_model``),
``onednn_fusion`` (CPU fused kernels), ``cpu_bf16`` (bf16 past fp32 input layers on CPUs with bf16 in hardware),
``quantize`` (int8 post-training quantization), ``cuda_graphs`` (replayed forward passes on CUDA),
``openvino_cpu`` (the optional OpenVINO fp32 path), ``build_cache`` (what the paths build, kept on disk),
``modes`` (what 'auto' picks; the modes this CPU cannot run well).
"""
