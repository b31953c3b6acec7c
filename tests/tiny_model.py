"""A tiny random RITM network saved as a checkpoint, built in the test (no downloads)."""

import os


def tiny_checkpoint(folder, name="tiny.pth", seed=0) -> str:
    import torch

    from ritm_qgis.models import create_model, save_checkpoint
    from ritm_qgis.models.testing import randomize_

    path = os.path.join(str(folder), name)
    if not os.path.exists(path):
        torch.manual_seed(seed)
        model = create_model("hrnet_tiny")
        randomize_(model)
        save_checkpoint(path, model, arch="hrnet_tiny")
    return path
