"""Model zoo, one file per family: ``MODELS.build(name, spec=ModelSpec, **settings)``.

Models map an image batch to raw outputs; codecs decode them. A builder takes the run's ``ModelSpec``
(points, dimension, input size, codec settings such as the stride) and the family's own settings from the
config's ``model:`` mapping. ``forward(x)`` is the inference graph (what is exported); ``forward_train(x)``
returns a mapping with at least ``out`` and whatever else the family's task trains (PFLD's ``angles``,
Hourglass's every stack, PIPNet's ``coarse`` maps). Backbones have their own registry (``backbones.py``).
"""
from __future__ import annotations

import torch.nn as nn

from . import cunet, dcnn, hourglass, hrnet, pfld, pipnet, spiga  # noqa: F401  (register their builders)
from .base import MODELS, LandmarkNet

__all__ = ["MODELS", "LandmarkNet", "build_model"]


def build_model(spec, settings: dict) -> nn.Module:
    """The model of a config's ``model:`` mapping (``name`` plus the family's settings) for ``spec``."""
    return MODELS.build(settings["name"], spec=spec, **{k: v for k, v in settings.items() if k != "name"})
