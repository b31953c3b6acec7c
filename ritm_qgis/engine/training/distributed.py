"""PyTorch's own distributed engine, for ``torchrun --nproc_per_node N ritm-qgis train ...``.

torchrun sets ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT``; when
they are present the process group is initialised (NCCL on CUDA, gloo on the CPU), each process
takes GPU ``LOCAL_RANK``, the model is wrapped in ``DistributedDataParallel`` and the data in a
``DistributedSampler``. Without them everything is a plain single process, so the same command
runs from one CPU process to N GPUs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = ["DistInfo", "setup", "cleanup", "all_gather_objects", "barrier"]


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup(device_type: str) -> DistInfo:
    """Initialise the process group when launched by torchrun; returns this process's place."""
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    info = DistInfo(int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0")), world)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
    return info


def cleanup() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    if info.enabled:
        import torch.distributed as dist

        dist.barrier()


def all_gather_objects(info: DistInfo, value) -> list:
    """Every rank's ``value`` (a picklable object), in rank order; ``[value]`` without DDP."""
    if not info.enabled:
        return [value]
    import torch.distributed as dist

    out = [None] * info.world_size
    dist.all_gather_object(out, value)
    return out
