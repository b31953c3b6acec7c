"""Training augmentation in plain NumPy/OpenCV, the pipeline of RITM's training configs:

1. uniform random resize by a factor in ``scale`` (0.75-1.40; bilinear image, nearest label);
2. horizontal flip (p = 0.5); optionally vertical flip and 90-degree rotations (aerial views have
   no "up", so ``vflip``/``rot90`` are off for natural images and worth turning on for aerial);
3. pad to at least the crop size (centred, image 0); padded pixels are labelled ignored (-1),
   so they never receive a click nor count in the loss;
4. random crop (320x480 by default), retried so that it shows at least ``min_object_area``
   object pixels (RITM re-augments a sample until it holds an object);
5. brightness/contrast (p = 0.75; brightness +-0.25 of 255, contrast factor 1 + [-0.15, 0.4]);
6. RGB shift (p = 0.75; each channel +-10).

Input and output: image (H, W, 3) uint8, label (H, W) int8 with 1 object, 0 background,
-1 ignored.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["Augment", "pad_to", "random_crop"]


def pad_to(image: np.ndarray, label: np.ndarray, height: int, width: int):
    """Centre-pad to at least (height, width): image with 0, label with -1 (ignored)."""
    h, w = label.shape
    ph, pw = max(0, height - h), max(0, width - w)
    if not ph and not pw:
        return image, label
    top, left = ph // 2, pw // 2
    image = cv2.copyMakeBorder(image, top, ph - top, left, pw - left, cv2.BORDER_CONSTANT, value=(0, 0, 0))
    label = np.pad(label, ((top, ph - top), (left, pw - left)), constant_values=-1)
    return image, label


def random_crop(image, label, height, width, rng, min_object_area=0, tries=20):
    """A uniformly placed crop; up to ``tries`` draws until it holds ``min_object_area`` object pixels."""
    h, w = label.shape
    best = None
    for _ in range(max(1, tries)):
        y = int(rng.integers(0, h - height + 1))
        x = int(rng.integers(0, w - width + 1))
        lab = label[y:y + height, x:x + width]
        area = int((lab == 1).sum())
        if best is None or area > best[0]:
            best = (area, y, x)
        if area >= min_object_area:
            break
    _, y, x = best
    return image[y:y + height, x:x + width], label[y:y + height, x:x + width]


@dataclass
class Augment:
    crop_size: tuple = (320, 480)  # (height, width)
    scale: tuple = (0.75, 1.40)
    hflip: float = 0.5
    vflip: float = 0.0
    rot90: bool = False
    brightness: tuple = (-0.25, 0.25)
    contrast: tuple = (-0.15, 0.40)
    color_prob: float = 0.75
    rgb_shift: int = 10
    rgb_shift_prob: float = 0.75
    min_object_area: int = 40
    train: bool = True  # False: only pad + a crop (validation)

    def __call__(self, image: np.ndarray, label: np.ndarray, rng: np.random.Generator):
        image = np.asarray(image, np.uint8)
        label = np.asarray(label, np.int8)
        ch, cw = self.crop_size
        if self.train:
            s = float(rng.uniform(*self.scale))
            h, w = label.shape
            nh, nw = max(1, round(h * s)), max(1, round(w * s))
            if (nh, nw) != (h, w):
                image = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
                label = cv2.resize(label, (nw, nh), interpolation=cv2.INTER_NEAREST)
            if rng.random() < self.hflip:
                image, label = image[:, ::-1], label[:, ::-1]
            if rng.random() < self.vflip:
                image, label = image[::-1], label[::-1]
            if self.rot90:
                k = int(rng.integers(0, 4))
                image, label = np.rot90(image, k), np.rot90(label, k)
        image, label = pad_to(np.ascontiguousarray(image), np.ascontiguousarray(label), ch, cw)
        image, label = random_crop(image, label, ch, cw, rng, self.min_object_area if self.train else 0)
        image = np.ascontiguousarray(image)
        if self.train:
            img = image.astype(np.float32)
            if rng.random() < self.color_prob:
                alpha = 1.0 + rng.uniform(*self.contrast)
                beta = rng.uniform(*self.brightness) * 255.0
                img = img * alpha + beta
            if rng.random() < self.rgb_shift_prob:
                img = img + rng.uniform(-self.rgb_shift, self.rgb_shift, size=3).astype(np.float32)
            image = np.clip(img, 0, 255).astype(np.uint8)
        return image, np.ascontiguousarray(label)
