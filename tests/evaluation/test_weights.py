"""AHP against published worked examples, and the entropy weight method against a hand computation."""

from __future__ import annotations

import math

import pytest

from riderwatch.errors import InvalidInput
from riderwatch.evaluation.weights import ahp, ahp_weights, entropy_weights

pytestmark = pytest.mark.one_database("sqlite", why="plain arithmetic: no database")

# Saaty's "relative wealth of nations" (Saaty 1977, J. Math. Psychology 15; The Analytic Hierarchy Process,
# 1980): US, USSR, China, France, UK, Japan, West Germany. Published: eigenvector .427 .230 .021 .052 .052
# .123 .094; λmax 7.61; CI 0.10; CR 0.08 (RI 1.32).
NATIONS = [
    [1, 4, 9, 6, 6, 5, 5],
    [1 / 4, 1, 7, 5, 5, 3, 4],
    [1 / 9, 1 / 7, 1, 1 / 5, 1 / 5, 1 / 7, 1 / 5],
    [1 / 6, 1 / 5, 5, 1, 1, 1 / 3, 1 / 3],
    [1 / 6, 1 / 5, 5, 1, 1, 1 / 3, 1 / 3],
    [1 / 5, 1 / 3, 7, 3, 3, 1, 2],
    [1 / 5, 1 / 4, 5, 3, 3, 1 / 2, 1],
]


def test_the_wealth_of_nations_as_saaty_published_it() -> None:
    result = ahp(NATIONS)
    assert [round(w, 3) for w in result.weights] == [0.427, 0.230, 0.021, 0.052, 0.052, 0.123, 0.094]
    assert round(result.lambda_max, 2) == 7.61
    assert round(result.ci, 2) == 0.10
    assert round(result.cr, 2) == 0.08
    assert result.consistent


def test_a_consistent_matrix_gives_its_ratios_and_a_ratio_of_zero() -> None:
    # a_ij = w_i / w_j for w = (4/7, 2/7, 1/7): perfectly consistent, λmax = n.
    result = ahp([[1, 2, 4], [1 / 2, 1, 2], [1 / 4, 1 / 2, 1]])
    assert [round(w, 6) for w in result.weights] == [round(4 / 7, 6), round(2 / 7, 6), round(1 / 7, 6)]
    assert math.isclose(result.lambda_max, 3, abs_tol=1e-9)
    assert result.ci == pytest.approx(0, abs=1e-9) and result.cr == pytest.approx(0, abs=1e-9)


def test_two_indicators_are_always_consistent() -> None:
    result = ahp([[1, 3], [1 / 3, 1]])
    assert [round(w, 3) for w in result.weights] == [0.75, 0.25]
    assert result.cr == 0


def test_contradictory_judgements_are_refused_with_the_ratio() -> None:
    # A over B, B over C, yet C strongly over A.
    cyclic = [[1, 3, 1 / 5], [1 / 3, 1, 3], [5, 1 / 3, 1]]
    assert not ahp(cyclic).consistent
    with pytest.raises(InvalidInput) as refused:
        ahp_weights(cyclic)
    assert "consistency ratio" in refused.value.detail and "0.1" in refused.value.detail


@pytest.mark.parametrize(
    ("matrix", "says"),
    [
        ([[1]], "2 to 10 rows"),
        ([[1, 2], [1 / 2]], "row 2 has 1 judgements"),
        ([[1, 12], [1 / 12, 1]], "from 1/9 to 9"),
        ([[1, 0], [0, 1]], "from 1/9 to 9"),
        ([[2, 1], [1, 1]], "compared with itself is 1"),
        ([[1, 3], [3, 1]], "must be its reciprocal"),
        ([[1, float("nan")], [1, 1]], "from 1/9 to 9"),
    ],
)
def test_a_malformed_matrix_is_refused_naming_the_cell(matrix: list[list[float]], says: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        ahp(matrix)
    assert says in refused.value.detail


def test_entropy_weights_as_computed_by_hand() -> None:
    # Three riders, two indicators. Column 1: 0, 1, 2 → p = 0, 1/3, 2/3;
    # e1 = −(1/3 ln 1/3 + 2/3 ln 2/3) / ln 3 = 0.579380; d1 = 0.420620.
    # Column 2: 1, 1, 4 → shifted 0, 0, 3 → p = 0, 0, 1; e2 = 0; d2 = 1.
    # w = d / Σd = 0.420620 / 1.420620, 1 / 1.420620 = 0.296082, 0.703918.
    weights = entropy_weights([[0, 1], [1, 1], [2, 4]])
    assert [round(w, 6) for w in weights] == [0.296082, 0.703918]


def test_an_indicator_on_which_everyone_is_alike_gets_no_entropy_weight() -> None:
    assert entropy_weights([[5, 1], [5, 2], [5, 3]]) == [0.0, 1.0]
    assert entropy_weights([[1, 1], [1, 1]]) == [0.5, 0.5]
    assert entropy_weights([[3, 9]]) == [0.5, 0.5]
