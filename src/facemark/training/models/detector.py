"""A small single-shot face detector in the style of YuNet / SCRFD: depthwise-separable backbone, a three-level
feature pyramid (strides 8, 16, 32) and anchor-free heads that predict, at every cell of every level, a face
score, the box (distances to its four sides) and 5 landmarks (offsets from the cell). ``fine`` adds a fourth,
narrower level at stride 4 for the smallest faces (issue 37); its cells come after the others', so a model
grown from a three-level one answers as that one does on the cells they share.

Any input size that is a multiple of 32 works (the network is fully convolutional). The output is one tensor
(B, cells, 15): the score logit, 4 box distances in units of the level's stride (log space), 10 landmark
offsets in units of the stride; cells run level by level, row by row (``core.detection`` decodes them).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

STRIDES = (8, 16, 32)
FINE_STRIDE = 4
OUTPUTS = 15   # score, box (l, t, r, b), 5 landmarks (x, y)


def _conv(cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, dilation * (k // 2), dilation, groups, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def _sep(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    """Depthwise 3x3 (dilated by ``dilation``) then pointwise 1x1, each with batch norm and ReLU."""
    return nn.Sequential(_conv(cin, cin, 3, stride, groups=cin, dilation=dilation), _conv(cin, cout, 1))


def _init_output(conv: nn.Conv2d, prior: float = 0.01) -> None:
    """A head's last layer starts with every cell a likely background (focal-loss initialisation)."""
    nn.init.normal_(conv.weight, std=0.01)
    nn.init.constant_(conv.bias, 0.0)
    nn.init.constant_(conv.bias[:1], float(torch.log(torch.tensor(prior / (1 - prior)))))


class FaceDetector(nn.Module):
    """``width``: channels of the first stage (the others are 2x, 3x, 4x, 6x of it); ``neck``: pyramid channels;
    ``dilated``: extra blocks at stride 32 with 2x dilated depthwise convolutions, which widen the coarsest
    level's view for faces that fill the photo; ``fine``: channels of the stride-4 level (0: none), fed by the
    stem's features and the stride-8 level's. ``strides``: the levels in the order of the output's cells."""

    def __init__(self, width: int = 16, neck: int = 48, dilated: int = 0, fine: int = 0) -> None:
        super().__init__()
        w = width
        self.stem = nn.Sequential(_conv(3, w, 3, 2), _sep(w, w), _sep(w, 2 * w, 2), _sep(2 * w, 2 * w))   # /4
        self.c3 = nn.Sequential(_sep(2 * w, 3 * w, 2), _sep(3 * w, 3 * w), _sep(3 * w, 3 * w))             # /8
        self.c4 = nn.Sequential(_sep(3 * w, 4 * w, 2), _sep(4 * w, 4 * w), _sep(4 * w, 4 * w))             # /16
        self.c5 = nn.Sequential(_sep(4 * w, 6 * w, 2), _sep(6 * w, 6 * w),                                  # /32
                                *[_sep(6 * w, 6 * w, dilation=2) for _ in range(dilated)])
        self.lateral = nn.ModuleList([_conv(c, neck, 1) for c in (3 * w, 4 * w, 6 * w)])
        self.smooth = nn.ModuleList([_sep(neck, neck) for _ in STRIDES])
        self.heads = nn.ModuleList([nn.Sequential(_sep(neck, neck), nn.Conv2d(neck, OUTPUTS, 1)) for _ in STRIDES])
        for h in self.heads:
            _init_output(h[-1])
        self.strides = STRIDES + ((FINE_STRIDE,) if fine else ())
        self.optional = ("fine",) if fine else ()
        self.fine = nn.ModuleDict({
            "lateral": _conv(2 * w, fine, 1), "down": _conv(neck, fine, 1), "smooth": _sep(fine, fine),
            "head": nn.Sequential(_sep(fine, fine), nn.Conv2d(fine, OUTPUTS, 1))}) if fine else None
        if self.fine is not None:
            _init_output(self.fine["head"][-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c2 = self.stem(x)
        c3 = self.c3(c2)
        c4 = self.c4(c3)
        c5 = self.c5(c4)
        p5 = self.lateral[2](c5)
        p4 = self.lateral[1](c4) + F.interpolate(p5, size=c4.shape[-2:], mode="nearest")
        p3 = self.lateral[0](c3) + F.interpolate(p4, size=c3.shape[-2:], mode="nearest")
        outs = [head(smooth(p)) for p, smooth, head in zip((p3, p4, p5), self.smooth, self.heads)]
        if self.fine is not None:
            f = self.fine
            p2 = f["lateral"](c2) + F.interpolate(f["down"](p3), size=c2.shape[-2:], mode="nearest")
            outs.append(f["head"](f["smooth"](p2)))
        return torch.cat([o.flatten(2) for o in outs], dim=2).transpose(1, 2)
