"""Validation during training: crops from ground-truth landmarks, torch forward, codec decode."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..crop import Crop, crop_from_landmarks, to_input
from ..readers import FaceSample


@dataclass
class ValCrops:
    images: np.ndarray   # (M, S, S, 3) uint8
    crops: list[Crop]


def val_crops(samples: list[FaceSample], size: int) -> ValCrops:
    """The standard protocol's input: each face cropped from the box of its ground-truth landmarks."""
    crops = [crop_from_landmarks(s.landmarks, size) for s in samples]
    return ValCrops(np.stack([c.warp(s.load_image()) for c, s in zip(crops, samples)]), crops)


@torch.no_grad()
def predict_crops(model: torch.nn.Module, codec, val: ValCrops, bf16: bool = True,
                  batch_size: int = 128) -> np.ndarray:
    """(M, N, 2) predictions in source-image coordinates (the model runs on the device its weights are on)."""
    model.eval()
    device = next(model.parameters()).device
    outs = []
    for i in range(0, len(val.images), batch_size):
        x = torch.from_numpy(to_input(val.images[i:i + batch_size])).to(device)
        x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            out = model(x)
        outs.append(tuple(o.float().cpu().numpy() for o in out) if isinstance(out, tuple)
                    else out.float().cpu().numpy())
    merged = (tuple(np.concatenate(parts) for parts in zip(*outs)) if isinstance(outs[0], tuple)
              else np.concatenate(outs))
    pts = codec.decode(merged)
    return np.stack([c.to_source(p) for c, p in zip(val.crops, pts)])
