"""Write tests/data/paper_fork_*: run the paper authors' own model code on a fork-layout checkpoint.

Usage (FORK: a checkout of github.com/tanguy-magne/ritm_interactive_segmentation, branch master;
it is only imported from there, never copied into this project):

    .venv/bin/python scripts/make_paper_fork_reference.py FORK

The fork's network is built exactly as its aerial training config builds it, its key layout is
written to tests/data/paper_fork_hrnet18_layout.json.gz; then tests/paper_fork.py's checkpoint is
loaded back through the fork's own loader (``isegm.utils.serialization.load_model``) and its
sigmoid outputs for tests/paper_fork.py's inputs go to tests/data/paper_fork_reference.npz.
"""

import gzip
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]


def main(fork: str) -> None:
    np.int = int  # the fork predates NumPy 1.24, which removed this alias
    sys.path.insert(0, fork)
    sys.path.insert(0, str(ROOT / "tests"))
    from isegm.model.is_hrnet_model import HRNetModel
    from isegm.utils.serialization import load_model

    import paper_fork

    net = HRNetModel(width=18, ocr_width=64, with_aux_output=True, use_leaky_relu=True, use_rgb_conv=False,
                     use_disks=True, norm_radius=5, with_prev_mask=True)
    layout = [[k, list(v.shape), str(v.dtype).replace("torch.", "")] for k, v in net.state_dict().items()]
    paper_fork.DATA.mkdir(exist_ok=True)
    with gzip.open(paper_fork.DATA / "paper_fork_hrnet18_layout.json.gz", "wt") as fh:
        json.dump({"source": "tanguy-magne/ritm_interactive_segmentation master, HRNetModel of "
                             "models/iter_mask/train_sat_img.py", "layout": layout}, fh)
    assert json.loads(json.dumps(net._config)) == json.loads(json.dumps(paper_fork.fork_config())), net._config

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fork.pth"
        paper_fork.write_fork_checkpoint(path)
        data = torch.load(str(path), map_location="cpu", weights_only=False)
        model = load_model(data["config"])  # the fork's loader
        model.load_state_dict(data["state_dict"], strict=True)
    model.eval()
    image, points = paper_fork.fork_inputs()
    with torch.no_grad():
        out = model(torch.from_numpy(image), torch.from_numpy(points))
    prob = torch.sigmoid(out["instances"]).numpy()
    aux = torch.sigmoid(out["instances_aux"]).numpy()
    np.savez_compressed(paper_fork.DATA / "paper_fork_reference.npz", prob=prob, aux=aux)
    print(f"{len(layout)} keys; probabilities {prob.min():.3f}..{prob.max():.3f}, mean {prob.mean():.3f}")


if __name__ == "__main__":
    main(sys.argv[1])
