"""Weights for the evaluation's indicators: the analytic hierarchy process (AHP) and the entropy weight
method. Plain numpy; no database.

AHP (Saaty): the administrator judges each pair of indicators on the 1–9 scale (a_ij: how much more
important i is than j; a_ji = 1/a_ij). The weights are the principal eigenvector of the matrix, scaled
to sum to 1. Its eigenvalue λmax gives the consistency index CI = (λmax − n)/(n − 1) and the consistency
ratio CR = CI/RI, with RI Saaty's random index for a matrix of that size. Judgements whose CR reaches
0.1 are too inconsistent to derive weights from and are refused with the reason.

Entropy weight method: for m riders and n indicators, each column is made non-negative and divided by
its sum (p_ij); its entropy e_j = −Σ p_ij ln p_ij / ln m; an indicator on which riders differ more has a
lower entropy and gets more weight: w_j = (1 − e_j) / Σ (1 − e_k).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from riderwatch.errors import N_, InvalidInput

# Saaty's random consistency index by matrix size (Saaty 1980, as tabulated in most AHP texts).
RANDOM_INDEX = {1: 0.0, 2: 0.0, 3: 0.58, 4: 0.90, 5: 1.12, 6: 1.24, 7: 1.32, 8: 1.41, 9: 1.45, 10: 1.49}
MAX_CR = 0.1
# Judgements on Saaty's scale: 1/9 … 9 (with a little room for rounded reciprocals such as 0.333).
SCALE_MIN, SCALE_MAX = 1 / 9 - 1e-3, 9 + 1e-9
RECIPROCAL_TOLERANCE = 0.01


@dataclass(frozen=True)
class Ahp:
    weights: list[float]
    lambda_max: float
    ci: float
    cr: float

    @property
    def consistent(self) -> bool:
        return self.cr < MAX_CR

    def as_dict(self) -> dict[str, object]:
        return {
            "weights": self.weights,
            "lambda_max": self.lambda_max,
            "ci": self.ci,
            "cr": self.cr,
            "consistent": self.consistent,
        }


def check_matrix(matrix: Sequence[Sequence[float]]) -> np.ndarray:
    """A pairwise comparison matrix, or InvalidInput naming what is wrong with it."""
    n = len(matrix)
    if not 2 <= n <= max(RANDOM_INDEX):
        raise InvalidInput(N_("a comparison matrix has 2 to %(max)s rows, not %(n)s"), max=max(RANDOM_INDEX), n=n)
    for i, row in enumerate(matrix, start=1):
        if len(row) != n:
            raise InvalidInput(
                N_("row %(row)s has %(got)s judgements; a %(n)s × %(n)s matrix needs %(n)s"),
                row=i,
                got=len(row),
                n=n,
            )
    a = np.array(matrix, dtype=float)
    for i in range(n):
        for j in range(n):
            value = a[i, j]
            if not math.isfinite(value) or not SCALE_MIN <= value <= SCALE_MAX:
                raise InvalidInput(
                    N_("row %(row)s, column %(column)s: judgements are from 1/9 to 9, not %(value)s"),
                    row=i + 1,
                    column=j + 1,
                    value=value,
                )
        if abs(a[i, i] - 1) > 1e-9:
            raise InvalidInput(N_("row %(row)s: an indicator compared with itself is 1"), row=i + 1)
    for i in range(n):
        for j in range(i + 1, n):
            if abs(a[i, j] * a[j, i] - 1) > RECIPROCAL_TOLERANCE:
                raise InvalidInput(
                    N_(
                        "row %(row)s, column %(column)s is %(value)s, so row %(column)s, column %(row)s must be "
                        "its reciprocal, not %(other)s"
                    ),
                    row=i + 1,
                    column=j + 1,
                    value=round(float(a[i, j]), 4),
                    other=round(float(a[j, i]), 4),
                )
    return a


def ahp(matrix: Sequence[Sequence[float]]) -> Ahp:
    """The weights, λmax, CI and CR of a pairwise comparison matrix (not refused when inconsistent: the
    caller decides; see `ahp_weights`)."""
    a = check_matrix(matrix)
    n = len(a)
    values, vectors = np.linalg.eig(a)
    k = int(np.argmax(values.real))
    lambda_max = float(values[k].real)
    vector = np.abs(vectors[:, k].real)
    weights = vector / vector.sum()
    ci = max(0.0, (lambda_max - n) / (n - 1))
    ri = RANDOM_INDEX[n]
    cr = ci / ri if ri else 0.0
    return Ahp(weights=[float(w) for w in weights], lambda_max=lambda_max, ci=ci, cr=cr)


def ahp_weights(matrix: Sequence[Sequence[float]]) -> Ahp:
    """AHP, refusing judgements too inconsistent to derive weights from (CR ≥ 0.1)."""
    result = ahp(matrix)
    if not result.consistent:
        raise InvalidInput(
            N_(
                "the judgements are not consistent enough: consistency ratio %(cr)s, it must stay below 0.1; "
                "revise the pairs that contradict each other (if A is more important than B and B than C, A "
                "should be more important than C)"
            ),
            cr=f"{result.cr:.3f}",
        )
    return result


def entropy_weights(values: Sequence[Sequence[float]]) -> list[float]:
    """Weights by the entropy weight method from a table of values (one row per rider, one column per
    indicator, larger is better; the caller turns "smaller is better" columns round first).

    Each column is shifted to start at 0 and divided by its sum. A column on which every rider has the
    same value tells riders apart by nothing: its entropy is 1 and its weight 0. With fewer than two
    riders, or no column that tells them apart, there is nothing to derive weights from: equal weights.
    """
    if not values or not values[0]:
        raise InvalidInput(N_("the entropy weights need at least one rider and one indicator"))
    x = np.array(values, dtype=float)
    m, n = x.shape
    if m < 2:
        return [1 / n] * n
    x = x - x.min(axis=0)
    sums = x.sum(axis=0)
    divergence = np.zeros(n)
    for j in range(n):
        if sums[j] <= 0:
            continue  # every rider alike: entropy 1
        p = x[:, j] / sums[j]
        nonzero = p[p > 0]
        e = float(-(nonzero * np.log(nonzero)).sum() / math.log(m))
        divergence[j] = max(0.0, 1 - e)
    total = divergence.sum()
    if total <= 0:
        return [1 / n] * n
    return [float(d / total) for d in divergence]
