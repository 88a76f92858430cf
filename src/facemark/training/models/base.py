"""What every model of the zoo shares: the registry and the base class."""
from __future__ import annotations

import torch
import torch.nn as nn

from ...core.registry import Registry

MODELS: Registry = Registry("model")


class LandmarkNet(nn.Module):
    """Base class of the zoo: by default training sees the inference output. ``optional``: the submodules an
    export made without them lacks (a visibility head added to a shipped model), which start untrained when
    such an export is read back (``training.from_onnx``)."""

    optional: tuple[str, ...] = ()

    def forward_train(self, x: torch.Tensor) -> dict:
        return {"out": self(x)}
