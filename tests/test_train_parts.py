"""Training pieces without a network: click sampler, iterative clicks, losses, augmentation."""

import math

import numpy as np
import pytest
import torch

from ritm_qgis.engine.training.augment import Augment, pad_to
from ritm_qgis.engine.training.losses import normalized_focal_loss, ritm_loss, sigmoid_bce
from ritm_qgis.engine.training.sampler import MultiPointSampler, click_count_probs, next_points


def _square_label(h=60, w=80):
    label = np.zeros((h, w), np.int8)
    label[20:40, 30:50] = 1
    return label


# ----------------------------------------------------------------------------- sampler


def test_sampler_clicks_fall_in_the_right_regions():
    label = _square_label()
    label[:, :5] = -1  # an ignored strip
    s = MultiPointSampler(max_num_points=24, prob_gamma=0.8)
    rng = np.random.default_rng(0)
    n_neg_total = 0
    for _ in range(300):
        pts = s.sample(label, rng)
        assert pts.shape == (48, 3) and pts.dtype == np.float32
        pos, neg = pts[:24], pts[24:]
        used_pos = pos[pos[:, 0] >= 0]
        used_neg = neg[neg[:, 0] >= 0]
        assert len(used_pos) >= 1  # at least one positive click, always first
        assert pos[0, 0] >= 0
        ys, xs = used_pos[:, 0].astype(int), used_pos[:, 1].astype(int)
        assert (label[ys, xs] == 1).all()
        if len(used_neg):
            ys, xs = used_neg[:, 0].astype(int), used_neg[:, 1].astype(int)
            assert (label[ys, xs] == 0).all()  # background, never ignored
        n_neg_total += len(used_neg)
        # used rows are contiguous from the top of each half; the rest is -1 padding
        assert (pos[len(used_pos):] == -1).all() and (neg[len(used_neg):] == -1).all()
    assert n_neg_total > 0


def test_sampler_click_counts_follow_gamma():
    label = _square_label()
    s = MultiPointSampler(max_num_points=24, prob_gamma=0.8)
    rng = np.random.default_rng(1)
    counts = np.array([(s.sample(label, rng)[:24, 0] >= 0).sum() for _ in range(1500)])
    p = click_count_probs(24, 0.8)
    assert p[0] == pytest.approx(0.2 / (1 - 0.8 ** 24))
    assert np.mean(counts == 1) == pytest.approx(p[0], abs=0.035)
    assert np.mean(counts == 2) == pytest.approx(p[1], abs=0.035)
    assert counts.max() <= 24 and counts.min() >= 1


def test_sampler_border_strategy_stays_near_the_object():
    label = np.zeros((200, 200), np.int8)
    label[90:110, 90:110] = 1
    s = MultiPointSampler(negative_probs=(0.0, 0.0, 1.0))
    rng = np.random.default_rng(2)
    band = s.border_region(label == 1)
    for _ in range(50):
        neg = s.sample(label, rng)[24:]
        neg = neg[neg[:, 0] >= 0].astype(int)
        assert band[neg[:, 0], neg[:, 1]].all()
    assert not band[0, 0] and band.sum() > 0


def test_next_points_clicks_the_deepest_error_in_the_free_slot():
    label = np.zeros((1, 40, 40), np.int8)
    label[0, 5:35, 5:35] = 1
    prob = np.zeros((1, 40, 40), np.float32)
    prob[0, 5:35, 5:20] = 1  # right half of the object missed: false negatives
    pts = np.full((1, 8, 3), -1, np.float32)
    pts[0, 0] = (10, 10, 100)
    rng = np.random.default_rng(0)
    new = next_points(prob, label, pts, 1, rng)
    y, x, idx = new[0, 3]  # positive slot N - 1
    assert idx == 1 and 5 <= y < 35 and 20 <= x < 35
    assert (new[0, 4:] == -1).all()  # no negative click added
    assert (new[0, :3] == pts[0, :3]).all()
    # a perfect prediction leaves the clicks alone
    same = next_points(label.astype(np.float32), label, pts, 1, rng)
    assert (same == pts).all()
    # false positives give a negative click in slot 2N - k
    prob2 = label.astype(np.float32).copy()
    prob2[0, 0:40, 36:40] = 1
    neg = next_points(prob2, label, pts, 2, rng)
    assert neg[0, 6, 2] == 2 and neg[0, 6, 1] >= 36


def test_next_points_on_threads_draws_the_same_clicks_as_in_sequence():
    rng = np.random.default_rng(5)
    label = np.zeros((12, 60, 80), np.int8)
    prob = np.zeros((12, 60, 80), np.float32)
    for b in range(12):
        label[b, 5 + b:40 + b, 10:30 + 3 * b] = 1
        label[b, :, :3] = -1
        prob[b, 10:50, 20 + b:60] = rng.random()
    prob[3] = label[3]  # no error: that sample keeps its clicks
    pts = np.full((12, 8, 3), -1, np.float32)
    seq = next_points(prob, label, pts, 1, np.random.default_rng(1), parallel=False)
    par = next_points(prob, label, pts, 1, np.random.default_rng(1), parallel=True)
    assert (seq == par).all() and (seq[3] == pts[3]).all()
    assert (seq[:, :, 2] == 1).sum() == 11


# ----------------------------------------------------------------------------- losses


def test_normalized_focal_loss_matches_hand_computation():
    # p = 0.5 everywhere: pt = 0.5, beta = 0.25 each, renormalised to 1; loss = 0.5 * ln 2 per pixel
    logits = torch.zeros(1, 1, 1, 2)
    target = torch.tensor([[[[1.0, 0.0]]]])
    assert normalized_focal_loss(logits, target).item() == pytest.approx(0.5 * math.log(2), rel=1e-6)
    # p = 0.75 on both pixels: pixel 1 (y=1) pt=0.75 beta=1/16, pixel 2 (y=0) pt=0.25 beta=9/16;
    # mult = 2 / (10/16) = 3.2, so beta' = 0.2 and 1.8
    logits = torch.full((1, 1, 1, 2), math.log(3.0))
    expected = (-0.5 * 0.2 * math.log(0.75) - 0.5 * 1.8 * math.log(0.25)) / 2
    assert normalized_focal_loss(logits, target).item() == pytest.approx(expected, rel=1e-5)
    # an ignored pixel counts for nothing: one valid pixel, pt = 0.75, beta' = 1
    target_ign = torch.tensor([[[[1.0, -1.0]]]])
    assert normalized_focal_loss(logits, target_ign).item() == pytest.approx(-0.5 * math.log(0.75), rel=1e-5)
    # per-sample values for a batch
    both = normalized_focal_loss(torch.cat([torch.zeros(1, 1, 1, 2), logits]), torch.cat([target, target]))
    assert both.shape == (2,) and both[1].item() == pytest.approx(expected, rel=1e-5)


def test_bce_and_combined_loss():
    logits = torch.zeros(1, 1, 2, 2)
    target = torch.tensor([[[[1.0, 0.0], [1.0, -1.0]]]])
    # 3 valid pixels of ln 2 each, averaged over all 4 pixels (ignored ones count zero, as RITM)
    assert sigmoid_bce(logits, target).item() == pytest.approx(3 * math.log(2) / 4, rel=1e-6)
    total, parts = ritm_loss({"instances": logits, "instances_aux": logits}, target)
    assert total.item() == pytest.approx(parts["nfl"].item() + 0.4 * parts["aux_bce"].item(), rel=1e-6)
    # the focal loss pushes the right way: a better prediction has a lower loss
    good = torch.tensor([[[[3.0, -3.0], [3.0, 0.0]]]])
    assert normalized_focal_loss(good, target).item() < normalized_focal_loss(logits, target).item()


# ----------------------------------------------------------------------------- augmentation


def test_augment_shapes_values_and_padding():
    rng = np.random.default_rng(0)
    image = np.full((100, 150, 3), 128, np.uint8)
    label = _square_label(100, 150)
    aug = Augment(crop_size=(64, 96))
    for _ in range(20):
        img, lab = aug(image, label, rng)
        assert img.shape == (64, 96, 3) and img.dtype == np.uint8
        assert lab.shape == (64, 96) and set(np.unique(lab)) <= {-1, 0, 1}
    # an image smaller than the crop is padded; the padding is ignored (-1) and black
    small_img = np.full((20, 30, 3), 200, np.uint8)
    small_lab = np.ones((20, 30), np.int8)
    img, lab = Augment(crop_size=(40, 50), train=False)(small_img, small_lab, rng)
    assert img.shape == (40, 50, 3) and (lab == -1).sum() == 40 * 50 - 20 * 30
    assert (img[lab == -1] == 0).all() and (img[lab == 1] == 200).all()
    pi, pl = pad_to(small_img, small_lab, 20, 30)
    assert pi is small_img and pl is small_lab
    # colour jitter changes pixel values in training mode but keeps the label exact
    aug2 = Augment(crop_size=(100, 150), scale=(1.0, 1.0), hflip=0.0, color_prob=1.0, rgb_shift_prob=1.0)
    img, lab = aug2(image, label, rng)
    assert (lab == label).all() and not (img == image).all()
