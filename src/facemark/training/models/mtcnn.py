"""MTCNN's three networks (Zhang et al. 2016, as the seed describes): P-Net (12 px, fully convolutional),
R-Net (24 px) and O-Net (48 px). Each is multi-task: 15 outputs per window, the face logit (a sigmoid gives
the score in [0, 1]), 4 box offsets (the face box's corners minus the window's, over its side) and 5 points
(x, y over the window's side, from its top-left corner). Layer sizes are the paper's; PReLU throughout.
"""
from __future__ import annotations

import torch
import torch.nn as nn

OUTPUTS = 15                     # face logit, 4 box offsets, 5 x (x, y)
SIZES = {"pnet": 12, "rnet": 24, "onet": 48}


def _conv(cin: int, cout: int, k: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, k), nn.PReLU(cout)]


class PNet(nn.Module):
    """12x12 -> 1x1 cell; on a larger image a (15, H', W') map, one window per 2 px (``STRIDE``)."""

    STRIDE, CELL = 2, 12

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(*_conv(3, 10, 3), nn.MaxPool2d(2, 2, ceil_mode=True),
                                  *_conv(10, 16, 3), *_conv(16, 32, 3))
        self.head = nn.Conv2d(32, OUTPUTS, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


class RNet(nn.Module):
    """24x24 window -> (15,)."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(*_conv(3, 28, 3), nn.MaxPool2d(3, 2, ceil_mode=True),
                                  *_conv(28, 48, 3), nn.MaxPool2d(3, 2, ceil_mode=True), *_conv(48, 64, 2),
                                  nn.Flatten(), nn.Linear(64 * 3 * 3, 128), nn.PReLU(128))
        self.head = nn.Linear(128, OUTPUTS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


class ONet(nn.Module):
    """48x48 window -> (15,)."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(*_conv(3, 32, 3), nn.MaxPool2d(3, 2, ceil_mode=True),
                                  *_conv(32, 64, 3), nn.MaxPool2d(3, 2, ceil_mode=True),
                                  *_conv(64, 64, 3), nn.MaxPool2d(2, 2, ceil_mode=True), *_conv(64, 128, 2),
                                  nn.Flatten(), nn.Linear(128 * 3 * 3, 256), nn.Dropout(0.25), nn.PReLU(256))
        self.head = nn.Linear(256, OUTPUTS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


NETS = {"pnet": PNet, "rnet": RNet, "onet": ONet}


def window_outputs(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """(N, 15) outputs of a batch of windows at the net's own size (P-Net's 1x1 map flattened)."""
    out = net(x)
    return out.reshape(out.shape[0], OUTPUTS)
