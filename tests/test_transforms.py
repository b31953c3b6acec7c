"""The predictor's steps as transform objects (issue 26): each with forward, inverse and its own
state, composed per click by the predictor (its results are covered by test_predictor.py,
test_first_click.py and test_interactive_speed.py, unchanged)."""

import numpy as np
import pytest
import torch

from ritm_qgis.engine.interactive import transforms as tf
from ritm_qgis.engine.interactive import zoom_in as zi
from ritm_qgis.engine.interactive.click_encoding import Click
from tiny_model import one_torch_thread, tiny_net  # noqa: F401


def test_zoom_in_cuts_resizes_and_pastes_back_with_its_own_box():
    params = zi.ZoomInParams(target_size=(40, 40), skip_clicks=-1, first_crop=30)
    crop = tf.ZoomIn.choose(params, [Click(50, 60, True)], None, None, (100, 120))
    assert crop.roi == crop.box == (35, 64, 45, 74) and crop.out_hw == (40, 40)
    image = torch.arange(100 * 120, dtype=torch.float32).reshape(1, 1, 100, 120)
    x, lists = crop.forward(image, [[Click(50, 60, True)]])
    assert x.shape == (1, 1, 40, 40)
    assert lists[0][0].row == pytest.approx(40 * 15 / 30) and lists[0][0].col == pytest.approx(40 * 15 / 30)
    back = crop.inverse(torch.ones(1, 1, 40, 40))
    assert back.shape == (1, 1, 100, 120) and back.sum() == 30 * 30 and back[0, 0, 35, 45] == 1


def test_longest_side_limit_only_for_large_images():
    assert tf.LimitLongestSide.choose(800, (600, 700)) is None and tf.LimitLongestSide.choose(None, (9000, 10)) is None
    limit = tf.LimitLongestSide.choose(400, (600, 1000))
    assert limit.box == (0, 599, 0, 999) and limit.out_hw == (240, 400)


def test_flip_mirrors_the_batch_and_its_inverse_averages_the_logits():
    x = torch.rand(1, 3, 8, 10)
    y, lists = tf.Flip().forward(x, [[Click(2, 3, True)]])
    assert y.shape == (2, 3, 8, 10) and torch.equal(y[1], torch.flip(x[0], dims=[2]))
    assert (lists[1][0].row, lists[1][0].col) == (2, 6)
    logits = torch.stack([x[0, :1], torch.flip(x[0, :1], dims=[2]) + 2.0])  # the mirror pass says +2
    assert torch.allclose(tf.Flip().inverse(logits), x[:1, :1] + 1.0)


def test_the_chain_is_crop_then_flip_and_undone_in_reverse():
    crop = tf.LimitLongestSide.choose(50, (100, 100))
    chain = tf.compose(crop, flip=True)
    assert [type(t) for t in chain] == [tf.LimitLongestSide, tf.Flip]
    x, lists = tf.run_forward(chain, torch.zeros(1, 3, 100, 100), [Click(10, 90, True)])
    assert x.shape == (2, 3, 50, 50) and len(lists) == 2
    prob = tf.run_inverse(chain, torch.zeros(2, 1, 50, 50))  # logit 0 -> probability 0.5 everywhere
    assert prob.shape == (1, 1, 100, 100) and torch.allclose(prob, torch.full_like(prob, 0.5))
    assert tf.compose(None, flip=False) == []


def test_the_predictor_composes_them_per_click(tiny_net):
    from ritm_qgis.engine.interactive.interactive_settings import interactive_predictor
    from ritm_qgis.engine.interactive.predictor import NetworkBackend, Predictor

    backend = NetworkBackend(tiny_net, device="cpu", optimize="none")
    image = np.random.default_rng(0).integers(0, 255, (300, 900, 3)).astype(np.uint8)
    session = interactive_predictor(backend)
    session.set_image(image)
    plan = session._plan([Click(150, 450, True)], None, None, None)
    assert [type(t) for t in plan.transforms] == [tf.ZoomIn, tf.Flip] and plan.roi == plan.transforms[0].box
    whole = Predictor(backend, zoom_in=False, flip=False, max_size=800)
    whole.set_image(image)
    plan = whole._plan([Click(150, 450, True)], None, None, None)
    assert [type(t) for t in plan.transforms] == [tf.LimitLongestSide] and plan.net_input.shape[2:] == (267, 800)
    assert whole.add_click(150, 450, True).prob.shape == (300, 900)
