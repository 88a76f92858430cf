"""PFLD (Guo et al. 2019): a MobileNetV2 backbone regressing 2N coordinates from multi-scale pooled features,
plus an auxiliary net on the 64-channel stage that predicts yaw/pitch/roll during training only.

Layout at 112x112 input (channels at width 1.0):
conv3x3 s2 64 -> conv3x3 64 -> 5 inverted-residual blocks at 64 (first s2, expand 2) -> block s2 to 128
(expand 2) -> 6 blocks at 128 (expand 4) -> block to 16 (expand 2) [14x14] -> conv3x3 s2 32 [7x7]
-> conv7x7 128 [1x1]; global-average-pooled 16 + 32 and the 128 vector are concatenated -> linear 2N.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from ...core.codecs import build_codec
from .base import MODELS, LandmarkNet
from .layers import InvertedResidual, conv_bn, scaled


class AuxiliaryNet(nn.Module):
    """Pose branch: conv s2 128, conv 128, conv s2 32, conv7x7 128, max-pool, fc 32, fc 3 (radians)."""

    def __init__(self, inp: int, width: float = 1.0) -> None:
        super().__init__()
        c128, c32 = scaled(128, width), scaled(32, width)
        self.features = nn.Sequential(
            conv_bn(inp, c128, 3, 2), conv_bn(c128, c128, 3), conv_bn(c128, c32, 3, 2), conv_bn(c32, c128, 7),
            nn.AdaptiveMaxPool2d(1), nn.Flatten(),
        )
        self.head = nn.Sequential(nn.Linear(c128, 32), nn.Linear(32, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class PFLD(LandmarkNet):
    """PFLD landmark regressor; ``forward`` returns the (B, ``outputs``) vector its codec decodes: D*N normalised
    coordinates (``RegressionCodec``), or AnchorFace's offsets and scores (``AnchorCodec``)."""

    predicts_pose = True  # forward_train also returns the auxiliary net's angles

    def __init__(self, n_points: int = 68, width: float = 1.0, input_size: int = 112, dim: int = 2,
                 outputs: int | None = None) -> None:
        super().__init__()
        if input_size % 16:
            raise ValueError("PFLD input size must be a multiple of 16")
        c64, c128, c16, c32, c128b = (scaled(c, width) for c in (64, 128, 16, 32, 128))
        self.n_points = n_points
        self.stem = nn.Sequential(conv_bn(3, c64, 3, 2), conv_bn(c64, c64, 3))
        self.stage3 = nn.Sequential(InvertedResidual(c64, c64, 2, 2, False),
                                    *[InvertedResidual(c64, c64, 1, 2, True) for _ in range(4)])
        self.stage4 = nn.Sequential(InvertedResidual(c64, c128, 2, 2, False),
                                    InvertedResidual(c128, c128, 1, 4, False),
                                    *[InvertedResidual(c128, c128, 1, 4, True) for _ in range(5)])
        self.stage6 = InvertedResidual(c128, c16, 1, 2, False)
        self.conv7 = conv_bn(c16, c32, 3, 2)
        final = input_size // 16
        self.conv8 = nn.Sequential(nn.Conv2d(c32, c128b, final, 1, 0), nn.BatchNorm2d(c128b), nn.ReLU(inplace=True))
        self.fc = nn.Linear(c16 + c32 + c128b, outputs or dim * n_points)
        self.aux = AuxiliaryNet(c64, width)

    def _forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.stem(x)
        mid = self.stage3(x)
        x = self.stage6(self.stage4(mid))
        s1 = x.mean(dim=(2, 3))
        x = self.conv7(x)
        s2 = x.mean(dim=(2, 3))
        s3 = self.conv8(x).flatten(1)
        return self.fc(torch.cat([s1, s2, s3], dim=1)), mid

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._forward(x)[0]

    @torch.no_grad()
    def init_output_bias(self, mean_output: torch.Tensor) -> None:
        """Start training from a mean output (e.g. the encoded mean face) instead of zeros."""
        self.fc.bias.copy_(mean_output)
        self.fc.weight.mul_(0.1)

    def forward_train(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Landmarks and the auxiliary net's (yaw, pitch, roll) in radians (training only)."""
        out, mid = self._forward(x)
        return {"out": out, "angles": self.aux(mid)}


@MODELS.register("pfld")
def build_pfld(spec, width: float = 1.0) -> PFLD:
    shape = build_codec(spec.codec, spec.input_size, spec.n_points, spec.dim).output_shapes()[0]
    outputs = shape[0] if len(shape) == 1 else None   # a map codec does not fit: the config check says so
    return PFLD(n_points=spec.n_points, width=width, input_size=spec.input_size, dim=spec.dim, outputs=outputs)
