"""A tiny random RITM network built in the test (no downloads): as a checkpoint file, or as module
fixtures (``from tiny_model import one_torch_thread, tiny_net``)."""

import os

import pytest


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


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """One intra-op thread: on a shared 2-core machine OpenMP's spinning threads make these
    small forward passes several times slower (measured 52 s -> 9 s for the 20-click test)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def tiny_net():
    import torch

    from ritm_qgis.models import create_model
    from ritm_qgis.models.testing import randomize_

    torch.manual_seed(0)
    return randomize_(create_model("hrnet_tiny"), seed=3).eval()
