"""Codecs: each owns both directions of one output representation (encode targets, decode outputs).

Models never decode; everything here is numpy so inference needs no torch. Points are (..., N, D) arrays
(``facemark.core.points``): regression carries any D, the map codecs encode the image plane (D = 2).
Every codec states the raw output shapes it decodes (``output_shapes``), so a model can be checked against
it before training, and the settings that rebuild it at inference (``config``, stored in the model card).
"""
from __future__ import annotations

import numpy as np

from .points import check_dim
from .registry import Registry

CODECS: Registry = Registry("codec")


def build_codec(config: dict, input_size: int, n_points: int, dim: int = 2):
    """A codec from its config mapping ``{name: ..., **settings}`` (a model card's or a training config's)."""
    kw = {k: v for k, v in config.items() if k != "name"}
    return CODECS.build(config["name"], input_size=input_size, n_points=n_points, dim=dim, **kw)


def decoders_of(name: str) -> tuple[str, ...]:
    """The read-outs a codec offers for the same outputs (empty: it has one), e.g. for a decoder ablation."""
    return tuple(getattr(CODECS.get(name), "decoders", ()))


class Codec:
    """What every codec declares: ``output_shapes`` (the raw outputs it decodes), ``config`` (what rebuilds it),
    ``encode`` (points -> training targets) and ``decode`` (raw outputs -> points in crop pixels). Two read-outs
    are optional, None where the representation has no such signal: ``confidence`` (B,) whether each crop holds
    a face, and ``point_features`` (B, N, F) what an uncertainty calibration reads (``core.uncertainty``)."""

    def output_shapes(self) -> list[tuple[int, ...]]:
        raise NotImplementedError

    def config(self) -> dict:
        raise NotImplementedError

    def encode(self, pts: np.ndarray):
        raise NotImplementedError

    def decode(self, output) -> np.ndarray:
        raise NotImplementedError

    def confidence(self, output) -> np.ndarray | None:
        return None

    def point_features(self, output) -> np.ndarray | None:
        return None


def _planar(codec: str, dim: int) -> None:
    if check_dim(dim) != 2:
        raise ValueError(f"the {codec} codec encodes image-plane points (dim 2), not dim {dim}")


@CODECS.register("regression")
class RegressionCodec(Codec):
    """Direct coordinate regression: crop pixel coordinates <-> [0, 1] fractions of the crop side.

    A point at pixel centre p of a crop ``size`` wide encodes as (p + 0.5) / size, so 0 and 1 are the
    crop's outer edges; z (dim 3) encodes as z / size.
    """

    def __init__(self, input_size: int, n_points: int, dim: int = 2) -> None:
        self.input_size = input_size
        self.n_points = n_points
        self.dim = check_dim(dim)
        self._offset = np.array([0.5, 0.5, 0.0][:dim])

    def config(self) -> dict:
        return {"name": "regression"}

    def output_shapes(self) -> list[tuple[int, ...]]:
        return [(self.dim * self.n_points,)]

    def encode(self, pts: np.ndarray) -> np.ndarray:
        """(..., N, D) crop coordinates -> (..., D*N) float32 targets."""
        pts = np.asarray(pts, dtype=np.float32)
        flat = (pts + self._offset.astype(np.float32)) / self.input_size
        return flat.reshape(*pts.shape[:-2], self.dim * self.n_points)

    def decode(self, output: np.ndarray) -> np.ndarray:
        """(B, D*N) model outputs -> (B, N, D) crop coordinates."""
        out = np.asarray(output, dtype=np.float64).reshape(-1, self.n_points, self.dim)
        return out * self.input_size - self._offset


@CODECS.register("anchors")
class AnchorCodec(Codec):
    """AnchorFace (Xu et al. 2021): regression from ``count`` anchor templates, each a whole face shape (the
    k-means centres of the training faces in the crop frame: frontal, turned left and right, tilted, mouth
    open), which the network refines by offsets and scores, so that a face in a large pose starts from a
    template in that pose instead of from the mean face.

    One output vector: K x D*N offsets (fractions of the crop side, as ``RegressionCodec``) then K scores;
    decoded as the score-softmax-weighted mean of the refined anchors. With ``count: 1`` this is plain
    regression from the mean face (the ablation).
    """

    def __init__(self, input_size: int, n_points: int, count: int = 8, anchors: list | None = None,
                 dim: int = 2) -> None:
        self.points = RegressionCodec(input_size, n_points, dim)
        self.input_size, self.n_points, self.dim, self.count = input_size, n_points, check_dim(dim), count
        self.anchors = None if anchors is None else np.asarray(anchors, dtype=np.float64)

    def fit(self, train_pts: np.ndarray, iterations: int = 50) -> None:
        """k-means (k-means++ start, fixed seed) of the (M, N, D) training faces in crop pixels."""
        x = np.asarray(train_pts, dtype=np.float64).reshape(len(train_pts), -1)
        rng = np.random.default_rng(0)
        centres = [x[rng.integers(len(x))]]
        for _ in range(1, self.count):
            d2 = ((x[:, None] - np.array(centres)[None]) ** 2).sum(-1).min(axis=1)
            centres.append(x[rng.choice(len(x), p=d2 / d2.sum())])
        c = np.array(centres)
        for _ in range(iterations):
            label = ((x[:, None] - c[None]) ** 2).sum(-1).argmin(axis=1)
            c = np.array([x[label == k].mean(axis=0) if (label == k).any() else c[k] for k in range(self.count)])
        self.anchors = c.reshape(self.count, self.n_points, self.dim)

    def _need_anchors(self) -> np.ndarray:
        if self.anchors is None:
            raise ValueError("AnchorCodec has no anchors: call fit() on training landmarks first")
        return self.anchors

    def config(self) -> dict:
        a = None if self.anchors is None else np.round(self.anchors, 3).tolist()
        return {"name": "anchors", "count": self.count, "anchors": a}

    def output_shapes(self) -> list[tuple[int, ...]]:
        return [(self.count * (self.dim * self.n_points + 1),)]

    def encoded_anchors(self) -> np.ndarray:
        """(K, D*N) anchors as regression fractions (what the offsets are added to)."""
        return self.points.encode(self._need_anchors())

    def encode(self, pts: np.ndarray) -> dict[str, np.ndarray]:
        """``target`` (B, D*N) fractions and ``anchor`` (B,) the index of each face's nearest anchor."""
        d2 = ((np.asarray(pts)[:, None] - self._need_anchors()[None]) ** 2).sum(axis=(-2, -1))
        return {"target": self.points.encode(pts), "anchor": d2.argmin(axis=1).astype(np.int64)}

    def decode(self, output: np.ndarray) -> np.ndarray:
        """(B, K*(D*N+1)) -> (B, N, D) crop coordinates."""
        out = np.asarray(output, dtype=np.float64)
        k, m = self.count, self.dim * self.n_points
        refined = self.encoded_anchors()[None] + out[:, :k * m].reshape(-1, k, m)
        logits = out[:, k * m:]
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        return self.points.decode((p[..., None] * refined).sum(axis=1))


def to_grid(pts: np.ndarray, stride: int) -> np.ndarray:
    """Crop pixel centres -> feature-map cell coordinates (cell centres at integers)."""
    return (np.asarray(pts, dtype=np.float64) + 0.5) / stride - 0.5


def _from_grid(uv: np.ndarray, stride: int) -> np.ndarray:
    return (uv + 0.5) * stride - 0.5


DECODERS = ("argmax", "quarter", "soft_argmax")  # the heatmap codec's read-outs


@CODECS.register("heatmap")
class HeatmapCodec(Codec):
    """Gaussian heatmaps at 1/``stride`` resolution, one map per point.

    Decoders: ``argmax`` (the best cell), ``quarter`` (argmax moved a quarter cell towards the higher
    neighbour, as Hourglass / HRNet do) and ``soft_argmax`` (the seed's local soft-argmax: a softmax with
    temperature ``tau`` over the ``window`` x ``window`` patch around the argmax, whose expected position
    refines it to sub-cell precision).
    """

    decoders = DECODERS

    def __init__(self, input_size: int, n_points: int, stride: int = 4, sigma: float = 1.5,
                 decoder: str = "soft_argmax", window: int = 5, tau: float = 10.0, dim: int = 2) -> None:
        if decoder not in self.decoders:
            raise ValueError(f"unknown heatmap decoder {decoder!r} (known: {', '.join(self.decoders)})")
        _planar("heatmap", dim)
        self.input_size, self.n_points, self.stride = input_size, n_points, stride
        self.size = input_size // stride
        self.sigma, self.decoder, self.window, self.tau = sigma, decoder, window, tau

    def config(self) -> dict:
        return {"name": "heatmap", "stride": self.stride, "sigma": self.sigma, "decoder": self.decoder,
                "window": self.window, "tau": self.tau}

    def output_shapes(self) -> list[tuple[int, ...]]:
        return [(self.n_points, self.size, self.size)]

    def encode(self, pts: np.ndarray) -> np.ndarray:
        """(B, N, 2) crop coordinates -> (B, N, H, W) float32 Gaussians (peak 1 at the point)."""
        uv = to_grid(pts, self.stride)
        grid = np.arange(self.size, dtype=np.float64)
        gx = np.exp(-((grid - uv[..., 0:1]) ** 2) / (2 * self.sigma ** 2))   # (B, N, W)
        gy = np.exp(-((grid - uv[..., 1:2]) ** 2) / (2 * self.sigma ** 2))   # (B, N, H)
        return (gy[..., :, None] * gx[..., None, :]).astype(np.float32)

    def confidence(self, output: np.ndarray) -> np.ndarray:
        """(B,) mean over points of each heatmap's peak (the training target's peak is 1): low where the crop
        holds no face (the tracker's signal that a track is lost)."""
        hm = np.asarray(output)
        return hm.reshape(*hm.shape[:2], -1).max(axis=-1).mean(axis=-1).astype(np.float64)

    def point_features(self, output: np.ndarray, half: int = 3) -> np.ndarray:
        """(B, N, 2) per point: the heatmap's spread around its peak (the root mean squared distance from the
        peak, weighted by the map's positive values in the (2 half + 1)^2 cells around it, in crop pixels) and
        the peak's height: what ``core.uncertainty`` turns into an expected error."""
        hm = np.asarray(output, dtype=np.float64)
        b, n, h, w = hm.shape
        iy, ix = np.divmod(hm.reshape(b, n, -1).argmax(axis=-1), w)
        d = np.arange(-half, half + 1)
        rows, cols = np.clip(iy[..., None] + d, 0, h - 1), np.clip(ix[..., None] + d, 0, w - 1)
        at = (rows[..., :, None] * w + cols[..., None, :]).reshape(b * n, -1)
        patch = np.maximum(np.take_along_axis(hm.reshape(b * n, -1), at, axis=1), 0).reshape(b, n, d.size, d.size)
        dist2 = (d[:, None] ** 2 + d[None, :] ** 2).astype(np.float64)
        spread = np.sqrt((patch * dist2).sum(axis=(-2, -1)) / np.maximum(patch.sum(axis=(-2, -1)), 1e-9))
        peak = hm.reshape(b, n, -1).max(axis=-1)
        return np.stack([spread * self.stride, peak], axis=-1)

    def decode(self, output: np.ndarray) -> np.ndarray:
        """(B, N, H, W) heatmaps -> (B, N, 2) crop coordinates."""
        hm = np.asarray(output)
        b, n, h, w = hm.shape
        flat = hm.reshape(b, n, -1).argmax(axis=-1)
        iy, ix = np.divmod(flat, w)
        uv = np.stack([ix, iy], axis=-1).astype(np.float64)
        if self.decoder == "quarter":
            bi, ni = np.meshgrid(np.arange(b), np.arange(n), indexing="ij")
            xr, xl = hm[bi, ni, iy, np.minimum(ix + 1, w - 1)], hm[bi, ni, iy, np.maximum(ix - 1, 0)]
            yd, yu = hm[bi, ni, np.minimum(iy + 1, h - 1), ix], hm[bi, ni, np.maximum(iy - 1, 0), ix]
            uv += 0.25 * np.stack([np.sign(xr - xl), np.sign(yd - yu)], axis=-1)
        elif self.decoder == "soft_argmax":
            uv += self._local_soft_argmax(hm, ix, iy)
        return _from_grid(uv, self.stride)

    def _local_soft_argmax(self, hm: np.ndarray, ix: np.ndarray, iy: np.ndarray) -> np.ndarray:
        """Sub-cell offset: softmax(tau * patch)-weighted mean position in the window around the argmax (cells
        of the window outside the map take no weight)."""
        l = self.window // 2
        b, n, h, w = hm.shape
        d = np.arange(-l, l + 1)
        rows, cols = iy[..., None] + d, ix[..., None] + d                                # (B, N, d)
        maps = hm.reshape(b * n, h * w)
        at = (np.clip(rows, 0, h - 1)[..., :, None] * w + np.clip(cols, 0, w - 1)[..., None, :]).reshape(b * n, -1)
        patch = np.take_along_axis(maps, at, axis=1).reshape(b, n, d.size, d.size).astype(np.float64)
        inside = ((rows >= 0) & (rows < h))[..., :, None] & ((cols >= 0) & (cols < w))[..., None, :]
        logits = np.where(inside, self.tau * patch, -np.inf)
        weights = np.exp(logits - logits.max(axis=(-2, -1), keepdims=True))
        weights /= weights.sum(axis=(-2, -1), keepdims=True)
        return np.stack([(weights * d[None, :]).sum(axis=(-2, -1)), (weights * d[:, None]).sum(axis=(-2, -1))],
                        axis=-1)


@CODECS.register("hih")
class HIHCodec(HeatmapCodec):
    """Heatmap in heatmap (HIH, Lan et al. 2021; its CNN variant): the heatmap codec's maps give each point's
    integer cell, and a "decimal" part says where in that cell the point lies: per point x and y offset maps
    (in cells, from each cell's centre to the point), trained within ``radius`` cells of the point so that
    a peak one cell off still reads a correct offset. Outputs: (N, H, W) heatmaps and (2N, H, W) offsets
    (x then y for each point). The ``decimal`` decoder reads the offset at the argmax cell; the heatmap
    decoders read the heatmaps alone (the ablation: the same model without its decimal part).
    """

    decoders = DECODERS + ("decimal",)

    def __init__(self, input_size: int, n_points: int, stride: int = 4, sigma: float = 1.5,
                 decoder: str = "decimal", radius: int = 1, window: int = 5, tau: float = 10.0,
                 dim: int = 2) -> None:
        super().__init__(input_size, n_points, stride, sigma, decoder, window, tau, dim)
        self.radius = radius

    def config(self) -> dict:
        return {**super().config(), "name": "hih", "radius": self.radius}

    def output_shapes(self) -> list[tuple[int, ...]]:
        return [(self.n_points, self.size, self.size), (2 * self.n_points, self.size, self.size)]

    def encode(self, pts: np.ndarray) -> dict[str, np.ndarray]:
        """Targets: ``target`` (B, N, H, W) Gaussians, ``offset`` (B, 2N, H, W) cell-centre-to-point offsets and
        ``offset_mask`` (B, N, H, W), 1 on the cells within ``radius`` of the point (where offsets train)."""
        uv = to_grid(pts, self.stride)
        grid = np.arange(self.size, dtype=np.float64)
        dx, dy = uv[..., 0:1] - grid, uv[..., 1:2] - grid                      # (B, N, W), (B, N, H)
        near = lambda d: np.abs(d) <= self.radius + 0.5                         # noqa: E731
        mask = (near(dy)[..., :, None] & near(dx)[..., None, :]).astype(np.float32)
        shape = mask.shape
        off = np.stack([np.broadcast_to(dx[..., None, :], shape), np.broadcast_to(dy[..., :, None], shape)], axis=2)
        b, n = shape[:2]
        offset = (off * mask[:, :, None]).reshape(b, 2 * n, *shape[2:]).astype(np.float32)
        return {"target": super().encode(pts), "offset": offset, "offset_mask": mask}

    def confidence(self, output: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        return super().confidence(output[0])

    def point_features(self, output: tuple[np.ndarray, np.ndarray], half: int = 3) -> np.ndarray:
        return super().point_features(output[0], half)

    def decode(self, output: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        """(heatmaps, offsets) -> (B, N, 2) crop coordinates."""
        hm = np.asarray(output[0])
        if self.decoder != "decimal":
            return super().decode(hm)
        b, n, h, w = hm.shape
        flat = hm.reshape(b, n, -1).argmax(axis=-1)
        iy, ix = np.divmod(flat, w)
        off = np.asarray(output[1], dtype=np.float64).reshape(b, n, 2, h * w)
        read = np.take_along_axis(off, np.broadcast_to(flat[:, :, None, None], (b, n, 2, 1)), axis=-1)[..., 0]
        return _from_grid(np.stack([ix, iy], axis=-1) + read, self.stride)


@CODECS.register("cascade")
class CascadeCodec(RegressionCodec):
    """A regressor cascade (SPIGA's on a heatmap backbone, DCNN's levels): coordinates out, as
    ``RegressionCodec``; for training, by name, ``target`` (B, 2N) and, with ``heatmaps``, the backbone's
    Gaussian heatmaps at 1/``stride`` (``HeatmapCodec``'s) as ``heatmap`` (B, N, H, W)."""

    def __init__(self, input_size: int, n_points: int, stride: int = 4, sigma: float = 1.5, heatmaps: bool = True,
                 dim: int = 2) -> None:
        _planar("cascade", dim)
        super().__init__(input_size, n_points, dim)
        self.maps = HeatmapCodec(input_size, n_points, stride, sigma) if heatmaps else None
        self.stride, self.sigma = stride, sigma

    def config(self) -> dict:
        return {"name": "cascade", "stride": self.stride, "sigma": self.sigma, "heatmaps": self.maps is not None}

    def encode(self, pts: np.ndarray) -> dict[str, np.ndarray]:
        maps = {} if self.maps is None else {"heatmap": self.maps.encode(pts)}
        return {"target": super().encode(pts), **maps}


@CODECS.register("pip")
class PIPCodec(Codec):
    """PIPNet's maps at 1/``stride`` resolution: per point a score map, x/y offsets inside the cell, and the
    offsets of its ``num_nb`` nearest neighbours on the mean face measured from the same cell.

    Targets (B, N, H, W) ``score``, ``off_x``, ``off_y`` and (B, N * C, H, W) ``nb_x``, ``nb_y``, plus the
    (B, N) flat index of each point's cell (``cell``), which the loss uses to read offsets at that cell only.
    Decoding takes each point's best cell plus its offset, and averages that with the predictions its
    neighbours make of it.
    """

    def __init__(self, input_size: int, n_points: int, stride: int = 32, num_nb: int = 10,
                 neighbours: list[list[int]] | None = None, dim: int = 2) -> None:
        _planar("pip", dim)
        self.input_size, self.n_points, self.stride, self.num_nb = input_size, n_points, stride, num_nb
        self.size = input_size // stride
        self.neighbours = np.asarray(neighbours, dtype=np.int64) if neighbours is not None else None

    def output_shapes(self) -> list[tuple[int, ...]]:
        s = self.size
        return [(self.n_points, s, s)] * 3 + [(self.n_points * self.num_nb, s, s)] * 2

    def fit(self, train_pts: np.ndarray) -> None:
        """Choose each point's neighbours: the ``num_nb`` nearest (excluding itself) on the mean face."""
        mean = np.asarray(train_pts, dtype=np.float64).mean(axis=0)
        dist = np.linalg.norm(mean[:, None] - mean[None], axis=-1)
        np.fill_diagonal(dist, np.inf)
        self.neighbours = np.argsort(dist, axis=1, kind="stable")[:, :self.num_nb]

    def config(self) -> dict:
        """What inference needs to rebuild this codec (stored in the model card)."""
        return {"name": "pip", "stride": self.stride, "num_nb": self.num_nb,
                "neighbours": None if self.neighbours is None else self.neighbours.tolist()}

    def _need_neighbours(self) -> np.ndarray:
        if self.neighbours is None:
            raise ValueError("PIPCodec has no neighbours: call fit() on training landmarks first")
        return self.neighbours

    def encode(self, pts: np.ndarray) -> dict[str, np.ndarray]:
        nb = self._need_neighbours()
        uv = np.clip(to_grid(pts, self.stride) + 0.5, 0, self.size - 1e-6)   # cell corner at integers
        cell = np.floor(uv).astype(np.int64)
        off = uv - cell                                                         # (B, N, 2) in [0, 1)
        b, n = uv.shape[:2]
        s = self.size
        flat = cell[..., 1] * s + cell[..., 0]
        score = np.zeros((b, n, s * s), np.float32)
        np.put_along_axis(score, flat[..., None], 1.0, axis=-1)
        maps = {"score": score}
        for k, name in enumerate(("off_x", "off_y")):
            m = np.zeros((b, n, s * s), np.float32)
            np.put_along_axis(m, flat[..., None], off[..., k:k + 1].astype(np.float32), axis=-1)
            maps[name] = m
        nb_off = uv[:, nb] - cell[:, :, None].astype(np.float64)               # (B, N, C, 2)
        for k, name in enumerate(("nb_x", "nb_y")):
            m = np.zeros((b, n, self.num_nb, s * s), np.float32)
            np.put_along_axis(m, np.broadcast_to(flat[..., None, None], (b, n, self.num_nb, 1)),
                              nb_off[..., k:k + 1].astype(np.float32), axis=-1)
            maps[name] = m.reshape(b, n * self.num_nb, s * s)
        out = {k: v.reshape(*v.shape[:2], s, s) for k, v in maps.items()}
        out["cell"] = flat
        return out

    def confidence(self, output: tuple[np.ndarray, ...]) -> np.ndarray:
        """(B,) mean over points of each score map's peak (the target is 1 at the point's cell)."""
        score = np.asarray(output[0])
        return score.reshape(*score.shape[:2], -1).max(axis=-1).mean(axis=-1).astype(np.float64)

    def decode(self, output: tuple[np.ndarray, ...]) -> np.ndarray:
        """(score, off_x, off_y, nb_x, nb_y) maps -> (B, N, 2) crop coordinates."""
        nb = self._need_neighbours()
        score, off_x, off_y, nb_x, nb_y = (np.asarray(o, dtype=np.float64) for o in output)
        b, n, s, _ = score.shape
        flat = score.reshape(b, n, -1).argmax(axis=-1)                          # (B, N)
        cy, cx = np.divmod(flat, s)
        pick = lambda m, c: np.take_along_axis(m.reshape(b, m.shape[1], -1), c[..., None], -1)[..., 0]  # noqa: E731
        own = np.stack([cx + pick(off_x, flat), cy + pick(off_y, flat)], axis=-1)   # (B, N, 2)
        rep = np.repeat(flat, self.num_nb, axis=1)                              # cell of the predicting point
        nbp = np.stack([np.repeat(cx, self.num_nb, 1) + pick(nb_x, rep),
                        np.repeat(cy, self.num_nb, 1) + pick(nb_y, rep)], axis=-1).reshape(b, n, self.num_nb, 2)
        total = own.copy()
        count = np.ones((b, n, 1))
        for i in range(n):  # point i predicts its neighbours nb[i]
            np.add.at(total, (slice(None), nb[i]), nbp[:, i])
            np.add.at(count, (slice(None), nb[i]), 1.0)
        uv = total / count - 0.5
        return _from_grid(uv, self.stride)
