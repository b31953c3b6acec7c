"""Where and how the networks run: ``device`` (resolve cpu/cuda, precision, ``optimize_model``),
``onednn_fusion`` (CPU fused kernels), ``cuda_graphs`` (replayed forward passes on CUDA).
"""
