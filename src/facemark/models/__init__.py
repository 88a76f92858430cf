"""Model zoo: ``MODELS.build(name, **kwargs)``. Models map an image batch to raw outputs; codecs decode."""
from __future__ import annotations

from ..registry import Registry

MODELS: Registry = Registry("model")

from . import pfld  # noqa: E402,F401  (registers its builders)
