"""The torch model being trained, as a ``CropPredictor`` (facemark.inference.predictor): validation and
pseudo-labelling run it through the same crop -> network -> decode -> image step as inference."""
from __future__ import annotations

import numpy as np
import torch

from ..core.crop import to_input


class TorchPredictor:
    """RGB uint8 crops -> (B, N, D) crop points, by ``model`` (on the device its weights are on) and ``codec``."""

    def __init__(self, model: torch.nn.Module, codec, input_size: int, bf16: bool = False,
                 batch_size: int = 128) -> None:
        self.model, self.codec, self.input_size = model, codec, input_size
        self.bf16, self.batch_size = bf16, batch_size

    @torch.no_grad()
    def __call__(self, crops: np.ndarray) -> np.ndarray:
        self.model.eval()
        device = next(self.model.parameters()).device
        outs = []
        for i in range(0, len(crops), self.batch_size):
            x = torch.from_numpy(to_input(crops[i:i + self.batch_size])).to(device)
            x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=self.bf16):
                out = self.model(x)
            if getattr(self.model, "visibility", None) is not None:   # the codec decodes the points' outputs
                out = out[0] if len(out) == 2 else out[:-1]
            outs.append(tuple(o.float().cpu().numpy() for o in out) if isinstance(out, tuple)
                        else out.float().cpu().numpy())
        merged = (tuple(np.concatenate(parts) for parts in zip(*outs)) if isinstance(outs[0], tuple)
                  else np.concatenate(outs))
        return self.codec.decode(merged)
