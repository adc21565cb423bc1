"""The few-shot solver's in-place row products against float64 NumPy on gathered, normalised rows."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from downstream.gathered_products import cosine_grams, primal_scores
from downstream.tasks.fewshot import inverse_row_norms


def feature_set(dtype, rows=40, dim=37, seed=0):
    """Random rows (one of them zero) and their inverse norms as the solver computes them."""
    features = np.random.default_rng(seed).standard_normal((rows, dim)).astype(dtype)
    features[3] = 0.0
    return features, inverse_row_norms(torch.from_numpy(features)).numpy()


def normalised(features):
    norms = np.linalg.norm(features.astype(np.float64), axis=1, keepdims=True)
    return np.divide(features.astype(np.float64), norms, out=np.zeros_like(norms * features), where=norms > 0)


@pytest.mark.parametrize("support_size", [1, 2, 4, 7, 9])  # tiles of 3: every remainder, and exact multiples
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cosine_grams_equal_gathered_products(dtype, support_size):
    features, inverse_norms = feature_set(dtype)
    rows = np.random.default_rng(1).integers(0, len(features), size=(6, support_size))
    rows[0, 0] = 3  # the zero row: its Gram row and column are 0, not NaN
    if support_size > 1:
        rows[1, 1] = rows[1, 0]  # a row drawn twice in one episode
    grams = cosine_grams(features, inverse_norms, rows, np.full((6, support_size, support_size), np.nan, dtype))
    unit = normalised(features)[rows]
    expected = unit @ unit.transpose(0, 2, 1)
    tolerance = 1e-5 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(grams, expected, atol=tolerance, rtol=0)
    assert np.array_equal(grams, grams.transpose(0, 2, 1))
    assert np.all(grams[0, 0] == 0)


@pytest.mark.parametrize(("support_size", "queries", "classes"), [(7, 8, 2), (5, 3, 7), (1, 1, 3), (9, 10, 5)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_primal_scores_equal_queries_times_weights(dtype, support_size, queries, classes):
    features, inverse_norms = feature_set(dtype)
    generator = np.random.default_rng(2)
    support = generator.integers(0, len(features), size=(4, support_size))
    query = generator.integers(0, len(features), size=(4, queries))
    query[0, 0] = 3  # a zero query scores 0 against every class
    coefficients = generator.standard_normal((4, classes, support_size)).astype(dtype)
    scores = primal_scores(features, inverse_norms, support, query, coefficients,
                           np.full((4, queries, classes), np.nan, dtype))
    weights = coefficients.astype(np.float64) @ features.astype(np.float64)[support]  # (E, K, D): W^T
    expected = normalised(features)[query] @ weights.transpose(0, 2, 1)
    tolerance = 1e-4 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(scores, expected, atol=tolerance * np.abs(expected).max(), rtol=0)
    assert np.all(scores[0, 0] == 0)
