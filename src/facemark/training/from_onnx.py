"""A shipped ONNX model back into its trainable torch model, for fine-tuning when its checkpoint is gone.

``torch.onnx.export`` folds each BatchNorm into the convolution before it, so the ONNX file holds one weight and
one bias per convolution. ``load_onnx_weights`` gives each convolution (and linear layer) of the torch model,
in the order the forward pass runs them, the weights of the ONNX node in the same place, and each folded
BatchNorm the statistics and affine parameters that reproduce the folded layer: measured on real inputs, so
that in training mode, where BatchNorm normalises by each batch's own statistics, the model starts near where
the ONNX model is, not from rescaled activations. The rebuilt model must answer as the ONNX file does, or the
file is refused (a DataError naming it). A model's ``optional`` parts (a visibility head added to a shipped
model, a detector's fine level) may be missing from the file: they keep their fresh weights.
"""
from __future__ import annotations

from itertools import combinations
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from ..core.errors import DataError

_LAYERS = (nn.Conv2d, nn.Linear)


def _run_order(model: nn.Module, x: torch.Tensor,
               skip: tuple[str, ...] = ()) -> tuple[list[nn.Module], dict[nn.Module, nn.BatchNorm2d]]:
    """The model's convolution and linear layers in the order one forward pass runs them, and the BatchNorm that
    takes each one's output directly, where there is one (eval mode, no gradients); layers inside the submodules
    named in ``skip`` are left out."""
    order: list[nn.Module] = []
    made: dict[int, tuple[nn.Module, torch.Tensor]] = {}   # by the output's id, kept alive so no id is reused
    follows: dict[nn.Module, nn.BatchNorm2d] = {}

    def ran(m: nn.Module, i: tuple, o: torch.Tensor) -> None:
        order.append(m)
        made[id(o)] = (m, o)

    def takes(bn: nn.BatchNorm2d, i: tuple) -> None:
        if id(i[0]) in made:
            follows[made[id(i[0])][0]] = bn

    skipped = {id(m) for name in skip for m in model.get_submodule(name).modules()}
    mods = [m for m in model.modules() if id(m) not in skipped]
    hooks = [m.register_forward_hook(ran) for m in mods if isinstance(m, _LAYERS)]
    hooks += [m.register_forward_pre_hook(takes) for m in mods if isinstance(m, nn.BatchNorm2d)]
    try:
        with torch.no_grad():
            model.eval()(x)
    finally:
        for h in hooks:
            h.remove()
    return order, follows


def _onnx_layers(path: Path) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """(weight, bias) of each Conv and Gemm node of an ONNX file, in graph order."""
    import onnx
    from onnx import numpy_helper

    try:
        graph = onnx.load(str(path)).graph
    except Exception as e:  # onnx raises its own decode errors
        raise DataError(path, f"cannot read ONNX model ({e})") from None
    init = {t.name: np.array(numpy_helper.to_array(t)) for t in graph.initializer}
    out = []
    for node in graph.node:
        if node.op_type not in ("Conv", "Gemm"):
            continue
        if node.op_type == "Gemm" and not any(a.name == "transB" and a.i == 1 for a in node.attribute):
            raise DataError(path, f"Gemm node {node.name} without transB: not a torch Linear layer")
        w = init.get(node.input[1])
        if w is None:
            raise DataError(path, f"node {node.name}: weights are not constants")
        out.append((w, init.get(node.input[2]) if len(node.input) > 2 else None))
    return out


@torch.no_grad()
def load_onnx_weights(model: nn.Module, path: Path, inputs: torch.Tensor, atol: float = 1e-3) -> None:
    """Load the weights of the ONNX file ``path`` (exported from a model of this architecture) into ``model``,
    with BatchNorm statistics measured on ``inputs`` (a batch of real training inputs), then check that the
    model in eval mode answers as ONNX Runtime does on them (largest difference within ``atol`` of the
    largest output value); a file that does not fit the architecture is a DataError naming it."""
    layers = _onnx_layers(path)
    optional = tuple(getattr(model, "optional", ()))
    for skip in (s for k in range(len(optional) + 1) for s in combinations(optional, k)):   # fewest left out first
        order, follows = _run_order(model, inputs[:1], skip)
        if len(layers) == len(order):
            break
    if len(layers) != len(order):
        raise DataError(path, f"{len(layers)} convolution/linear layers, the model has {len(order)}: "
                              "another architecture or configuration")
    for k, (m, (w, b)) in enumerate(zip(order, layers)):
        if tuple(w.shape) != tuple(m.weight.shape):
            raise DataError(path, f"layer {k}: weights {tuple(w.shape)}, the model's {tuple(m.weight.shape)}")
        m.weight.copy_(torch.from_numpy(w))
        bn = follows.get(m)
        if bn is not None:   # folded (with the layer's own bias, if any): the BatchNorm passes z + b until measured
            if m.bias is not None:
                m.bias.zero_()
            bn.reset_running_stats()
            bn.running_var.fill_(1 - bn.eps)
            bn.weight.fill_(1.0)
            bn.bias.copy_(torch.from_numpy(b) if b is not None else torch.zeros_like(bn.bias))
        elif m.bias is not None and b is not None:
            m.bias.copy_(torch.from_numpy(b))
        elif (m.bias is None) != (b is None):
            raise DataError(path, f"layer {k}: {'a' if b is not None else 'no'} bias, the model's "
                                  f"{'none' if m.bias is None else 'one'}")
    _measure_batchnorm(model, [follows[m] for m in order if m in follows], inputs)
    _check_outputs(model, path, inputs, atol)


def _measure_batchnorm(model: nn.Module, folded: list[nn.BatchNorm2d], inputs: torch.Tensor) -> None:
    """Give each folded BatchNorm (now z + b) the mean and variance of its input on ``inputs``, with the scale
    and shift that keep its output z + b: sqrt(var + eps) * (z - mean) / sqrt(var + eps) + b + mean."""
    stats: dict[nn.BatchNorm2d, tuple[torch.Tensor, torch.Tensor]] = {}

    def measure(m: nn.BatchNorm2d, i: tuple[torch.Tensor]) -> None:
        z = i[0].transpose(0, 1).reshape(i[0].shape[1], -1).double()
        stats[m] = (z.mean(dim=1), z.var(dim=1, unbiased=False))

    hooks = [bn.register_forward_pre_hook(measure) for bn in folded]
    try:
        model.eval()(inputs)
    finally:
        for h in hooks:
            h.remove()
    for bn, (mean, var) in stats.items():
        bn.running_mean.copy_(mean)
        bn.running_var.copy_(var)
        bn.bias.add_(mean.to(bn.bias.dtype))
        bn.weight.copy_((var + bn.eps).sqrt())


def _check_outputs(model: nn.Module, path: Path, inputs: torch.Tensor, atol: float) -> None:
    from ..inference.runtime import cpu_session

    session = cpu_session(path, threads=1)
    x = inputs[:1].contiguous()   # one input: some exports fix the batch size
    want = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    got = model.eval()(x)
    got = (got[0] if isinstance(got, tuple) else got).numpy()
    if getattr(model, "optional", ()) and got.ndim == want.ndim == 3:   # an optional level's cells come last
        got = got[:, :want.shape[1]]
    if got.shape != want.shape or np.abs(got - want).max() > atol * max(1.0, np.abs(want).max()):
        raise DataError(path, "the rebuilt torch model does not answer as the ONNX file does: another "
                              "architecture or configuration")
