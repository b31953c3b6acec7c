"""The oneDNN convolution rewrite: same outputs as the eager module, every conv replaced."""

import pytest
import torch
from torch import nn

from ritm_qgis.engine.runtime import onednn_fusion

pytestmark = pytest.mark.skipif(not onednn_fusion.available(), reason="this torch build has no oneDNN")


class Block(nn.Module):
    """The wirings the rewrite handles: conv->ReLU, conv + shortcut -> ReLU, conv -> LeakyReLU,
    a bias-free strided conv, and a conv whose output has two users (left unfused)."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(4, 8, 3, padding=1)
        self.b = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.c = nn.Conv2d(8, 8, 1)
        self.d = nn.Conv2d(8, 16, 3, stride=2, padding=1, bias=False)
        self.relu = nn.ReLU(inplace=True)
        self.leaky = nn.LeakyReLU(0.2)

    def forward(self, x):
        y = self.relu(self.a(x))
        z = self.relu(self.b(y) + y)
        shared = self.c(z)
        w = self.leaky(shared) + shared
        return self.d(w)


class Wrapper(nn.Module):
    """Python control flow on the input: not traceable as a whole, so its children are fused."""

    def __init__(self):
        super().__init__()
        self.body = Block()
        self.head = nn.Sequential(nn.Conv2d(16, 2, 1), nn.ReLU())

    def forward(self, x):
        if x.shape[1] != 4:
            raise ValueError("4 channels expected")
        return self.head(self.body(x))


def _randomised(module):
    torch.manual_seed(0)
    with torch.no_grad():
        for p in module.parameters():
            p.normal_(0, 0.3)
    return module.eval()


def test_fused_module_matches_eager_for_other_sizes_and_batches():
    block = _randomised(Block())
    example = torch.rand(1, 4, 32, 32).contiguous(memory_format=torch.channels_last)
    fused = onednn_fusion.fuse_convolutions(block, (example,))
    assert fused.fused_convolutions == 4
    kinds = [n.target for n in fused.graph.nodes if n.op == "call_function"]
    assert torch.ops.mkldnn._convolution_pointwise.binary in kinds  # b + y -> relu fused
    # convs and ReLUs absorbed; the LeakyReLU stays, its conv's output has a second user
    assert [n.target for n in fused.graph.nodes if n.op == "call_module"] == ["leaky"]
    with torch.no_grad():
        for shape in [(1, 4, 32, 32), (2, 4, 45, 27), (3, 4, 7, 64)]:
            x = torch.rand(*shape)
            assert torch.allclose(fused(x.contiguous(memory_format=torch.channels_last)), block(x), atol=1e-5)


def test_fuse_model_descends_into_children_of_an_untraceable_module():
    model = _randomised(Wrapper())
    x = torch.rand(2, 4, 40, 24)
    with torch.no_grad():
        expected = model(x)
    fused, count = onednn_fusion.fuse_model(model, (x.contiguous(memory_format=torch.channels_last),))
    assert count == 5 and fused is model
    assert not any(isinstance(m, nn.Conv2d) for m in fused.modules())
    with torch.no_grad():
        assert torch.allclose(fused(x), expected, atol=1e-5)
        with pytest.raises(ValueError):  # the wrapper's own forward is untouched
            fused(torch.rand(1, 3, 8, 8))
