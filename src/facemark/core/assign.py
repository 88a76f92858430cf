"""Optimal one-to-one assignment (the Hungarian method), for matching tracks to detections."""
from __future__ import annotations

import numpy as np


def linear_assignment(cost: np.ndarray) -> list[tuple[int, int]]:
    """(row, column) pairs of a least-cost matching of an (R, C) cost matrix, min(R, C) pairs.

    The Hungarian method with potentials (Kuhn-Munkres, O(n^3)); rows and columns are padded to a square
    with a cost above every real one, and pairs that fall on the padding are left out.
    """
    cost = np.asarray(cost, dtype=np.float64)
    r, c = cost.shape
    if r == 0 or c == 0:
        return []
    n = max(r, c)
    big = (np.abs(cost).max() + 1.0) * n
    a = np.full((n + 1, n + 1), big)
    a[1:r + 1, 1:c + 1] = cost
    u, v = np.zeros(n + 1), np.zeros(n + 1)
    match = np.zeros(n + 1, dtype=int)      # match[column] = row, 1-based; 0 = free
    for i in range(1, n + 1):
        match[0], j0 = i, 0
        minv = np.full(n + 1, np.inf)
        way = np.zeros(n + 1, dtype=int)
        used = np.zeros(n + 1, dtype=bool)
        while True:
            used[j0] = True
            i0 = match[j0]
            free = ~used
            free[0] = False
            cur = a[i0] - u[i0] - v
            better = free & (cur < minv)
            minv[better] = cur[better]
            way[better] = j0
            cand = np.where(free, minv, np.inf)
            j1 = int(np.argmin(cand))
            delta = cand[j1]
            u[match[used]] += delta
            v[used] -= delta
            minv[free] -= delta
            j0 = j1
            if match[j0] == 0:
                break
        while j0:
            j1 = way[j0]
            match[j0] = match[j1]
            j0 = j1
    return sorted((match[j] - 1, j - 1) for j in range(1, n + 1) if match[j] <= r and j <= c)
