"""Model zoo: ``MODELS.build(name, **kwargs)``. Models map an image batch to raw outputs; codecs decode.

``forward(x)`` is the inference graph (what is exported). Models whose training needs more (PFLD's pose
branch, Hourglass's intermediate stacks) also define ``forward_train(x) -> {"out": ..., ...}``.
"""
from __future__ import annotations

from ..registry import Registry

MODELS: Registry = Registry("model")

from . import hourglass, hrnet, pfld, pipnet  # noqa: E402,F401  (register their builders)
