"""Inner products of feature rows picked by index, computed in place (the few-shot episodes' hot loops).

A few-shot solve needs, per episode, the cosine Gram matrix of its n support rows and its q
queries' scores against K class weights, where the rows are scattered over a feature set far
larger than the cache. Gathering an episode's rows into a buffer and handing it to BLAS copies
every byte twice before the arithmetic reads it (the gather, then the GEMM's packing), and at
these shapes (25 x 25 x 2048, 75 x 2048 x 5) that copying, not the multiply-adds, is the time:
on the 2-core AMD EPYC development machine, one thread, 2000 5-way 5-shot episodes of 2048-d
float32 rows took 0.28 s (Grams) and 0.52 s (query scores) that way, and 0.11 s and 0.32 s here
(medians of alternating repeats in one run; 1-shot queries 0.48 -> 0.22 s).
These kernels read each row where it lies and reduce 3 x 3 tiles of row pairs in registers,
so a row fetched from memory feeds three dot products at once.

Compiled by numba on first use and cached beside this file (or in the user's cache directory
where this folder is read-only), once per dtype and array layout; single-threaded.
"""

from __future__ import annotations

import numba
import numpy as np

# reassoc lets the reductions vectorise and contract fuses multiply-adds; NaN/inf semantics are kept.
FASTMATH = {"reassoc", "contract"}


@numba.njit(cache=True, fastmath=FASTMATH)
def _dot_tile(a0, a1, a2, b0, b1, b2):
    """The nine dot products ``a_i . b_j`` of two triples of equal-length vectors, in one pass."""
    zero = a0.dtype.type(0)
    s00 = s01 = s02 = s10 = s11 = s12 = s20 = s21 = s22 = zero
    for d in range(a0.shape[0]):
        x0, x1, x2, y0, y1, y2 = a0[d], a1[d], a2[d], b0[d], b1[d], b2[d]
        s00 += x0 * y0
        s01 += x0 * y1
        s02 += x0 * y2
        s10 += x1 * y0
        s11 += x1 * y1
        s12 += x1 * y2
        s20 += x2 * y0
        s21 += x2 * y1
        s22 += x2 * y2
    return (s00, s01, s02), (s10, s11, s12), (s20, s21, s22)


@numba.njit(cache=True)
def _triple(start, count):
    """Indices ``start, start+1, start+2`` clamped to ``count - 1``: a tile past the end repeats the last."""
    return start, min(start + 1, count - 1), min(start + 2, count - 1)


@numba.njit(cache=True, fastmath=FASTMATH)
def cosine_grams(features, inverse_norms, rows, out):
    """``out[e, a, b] = cos(features[rows[e, a]], features[rows[e, b]])`` for every episode e.

    ``inverse_norms`` holds ``1 / ||row||`` of every feature row (any finite value for a zero row,
    whose products are 0). The upper triangle is computed and mirrored, so every ``out[e]`` is
    exactly symmetric.
    """
    n = rows.shape[1]
    for e in range(rows.shape[0]):
        episode_rows = rows[e]
        for a in range(0, n, 3):
            tile_rows = _triple(a, n)
            r0, r1, r2 = episode_rows[tile_rows[0]], episode_rows[tile_rows[1]], episode_rows[tile_rows[2]]
            for b in range(a, n, 3):
                tile_columns = _triple(b, n)
                c0, c1, c2 = episode_rows[tile_columns[0]], episode_rows[tile_columns[1]], episode_rows[tile_columns[2]]
                sums = _dot_tile(features[r0], features[r1], features[r2], features[c0], features[c1], features[c2])
                for i in range(3):
                    row = (r0, r1, r2)[i]
                    for j in range(3):
                        column = (c0, c1, c2)[j]
                        value = sums[i][j] * inverse_norms[row] * inverse_norms[column]
                        out[e, tile_rows[i], tile_columns[j]] = value
                        out[e, tile_columns[j], tile_rows[i]] = value
    return out


@numba.njit(cache=True, fastmath=FASTMATH)
def _combine_rows(features, rows, coefficients, out):
    """``out[k] = sum_j coefficients[k, j] * features[rows[j]]``, two rows per pass over ``out[k]``."""
    n = rows.shape[0]
    for k in range(coefficients.shape[0]):
        target = out[k]
        target[:] = 0
        for j in range(0, n, 2):
            first, second = features[rows[j]], features[rows[min(j + 1, n - 1)]]
            a = coefficients[k, j]
            b = coefficients[k, j + 1] if j + 1 < n else a * 0  # an odd last row pairs with itself, weight 0
            for d in range(target.shape[0]):
                target[d] += a * first[d] + b * second[d]


@numba.njit(cache=True, fastmath=FASTMATH)
def primal_scores(features, inverse_norms, support, query, coefficients, out):
    """``out[e, i, k] = features[query[e, i]] . W_ek / ||features[query[e, i]]||`` for every episode e.

    ``W_ek = sum_j coefficients[e, k, j] * features[support[e, j]]`` is each episode's class
    weight vector (the dual coefficients with the support rows' inverse norms folded in), formed
    once per episode; the queries are then scored in 3 x 3 tiles of (query, class) pairs.
    """
    q, classes = query.shape[1], coefficients.shape[1]
    weights = np.empty((classes, features.shape[1]), features.dtype)
    for e in range(query.shape[0]):
        _combine_rows(features, support[e], coefficients[e], weights)
        for i in range(0, q, 3):
            tile_queries = _triple(i, q)
            r0, r1, r2 = query[e, tile_queries[0]], query[e, tile_queries[1]], query[e, tile_queries[2]]
            for k in range(0, classes, 3):
                tile_classes = _triple(k, classes)
                sums = _dot_tile(features[r0], features[r1], features[r2],
                                 weights[tile_classes[0]], weights[tile_classes[1]], weights[tile_classes[2]])
                for t in range(3):
                    scale = inverse_norms[(r0, r1, r2)[t]]
                    for c in range(3):
                        out[e, tile_queries[t], tile_classes[c]] = sums[t][c] * scale
    return out
