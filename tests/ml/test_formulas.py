"""The closed forms against independent routes to the same numbers: numerical integration, the textbook
(untransformed) hypergeometric expressions, probability identities, and changes of time unit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.integrate import quad
from scipy.special import betaln, gammaln, hyp2f1

from ml.btyd import (
    BgNbdParams,
    GammaGammaParams,
    ParetoNbdParams,
    conditional_expected_spend,
    expected_purchases,
    fit_bgnbd,
    fit_gamma_gamma,
    fit_pareto_nbd,
    log_likelihood,
    predicted_ltv,
    probability_alive,
    probability_no_purchase,
)
from ml.btyd import gamma_gamma as gamma_gamma_module
from ml.btyd._math import log_power_integral

log_uniform = st.floats(min_value=-3.0, max_value=3.0).map(np.exp)


def _log_power_integral_by_quadrature(
    a: float, b: float, p: float, q: float, lower: float, upper: float
) -> float:
    """The integral of (a+u)^-p (b+u)^-q over [lower, upper] by adaptive quadrature, no hypergeometrics.

    In w = log(min(a, b) + u) the log-integrand is concave, so it is integrated on both sides of its peak,
    scaled by the peak value so that nothing underflows.
    """
    offset = min(a, b)
    p_near, p_far, gap = (p, q, b - a) if a <= b else (q, p, a - b)

    def log_integrand(w: float) -> float:
        far = np.logaddexp(np.log(gap), w) if gap > 0 else w
        return float((1.0 - p_near) * w - p_far * far)

    w_low, w_high = np.log(offset + lower), np.log(offset + upper)
    grid = np.linspace(w_low, w_high, 2001)
    values = np.array([log_integrand(w) for w in grid])
    peak_at = float(grid[values.argmax()])
    peak = float(values.max())
    pieces = [(w_low, peak_at), (peak_at, w_high)]
    total = sum(
        quad(lambda w: np.exp(log_integrand(w) - peak), lo, hi, epsabs=0.0, epsrel=1e-12, limit=500)[0]
        for lo, hi in pieces
        if hi > lo
    )
    return peak + float(np.log(total))


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    # Offsets up to e^8 apart push the hypergeometric argument to within 1e-3 of 1 and beyond, where
    # scipy's hyp2f1 is not trusted and the quadrature fallback answers.
    a=st.floats(min_value=-4.0, max_value=4.0).map(np.exp),
    b=st.floats(min_value=-4.0, max_value=4.0).map(np.exp),
    p=st.floats(min_value=0.05, max_value=400.0),
    q=st.floats(min_value=0.05, max_value=30.0),
    lower=st.floats(min_value=0.0, max_value=100.0),
    width=st.floats(min_value=1e-3, max_value=500.0),
)
def test_power_integral_matches_quadrature(
    a: float, b: float, p: float, q: float, lower: float, width: float
) -> None:
    if p + q <= 1.02:
        p += 1.0  # the closed form needs p + q > 1, which every caller satisfies
    upper = lower + width
    expected = _log_power_integral_by_quadrature(a, b, p, q, lower, upper)
    assert float(log_power_integral(a, b, p, q, lower, upper)) == pytest.approx(expected, abs=1e-7)


@pytest.mark.parametrize(
    ("a", "b", "p", "q", "lower", "upper"),
    [
        (1e-4, 50.0, 0.6, 1.6, 0.0, 38.86),  # alpha << beta, one-time buyer
        (50.0, 1e-4, 300.0, 1.6, 0.0, 38.86),  # alpha >> beta, heavy buyer: scipy's hyp2f1 returns nan here
        (500.0, 1.0, 120.0, 1.3, 0.5, 2.0),
        (2.0, 1.0, 100.0, 2.0, 0.0, 1.0),  # scipy's hyp2f1(1, 2; 102; 0.5)-like arguments, fine
        (np.exp(-3.0), 1.0, 66.0, 1.0, 0.0, 207.0),
    ],
)
def test_power_integral_in_extreme_corners(
    a: float, b: float, p: float, q: float, lower: float, upper: float
) -> None:
    expected = _log_power_integral_by_quadrature(a, b, p, q, lower, upper)
    assert float(log_power_integral(a, b, p, q, lower, upper)) == pytest.approx(expected, abs=1e-7)


def test_power_integral_of_an_empty_interval_is_zero() -> None:
    assert float(log_power_integral(2.0, 3.0, 1.5, 0.5, 4.0, 4.0)) == -np.inf


def _textbook_pareto_log_likelihood(params: ParetoNbdParams, x: float, t_x: float, T: float) -> float:
    """Fader & Hardie (2005) note, eq. (22)-(24), with the published 2F1 arguments, taken literally."""
    r, alpha, s, beta = params.r, params.alpha, params.s, params.beta
    if alpha >= beta:
        big, second = alpha, s + 1

        def term(tau: float) -> float:
            return hyp2f1(r + s + x, second, r + s + x + 1, (alpha - beta) / (big + tau)) / (big + tau) ** (
                r + s + x
            )
    else:
        big, second = beta, r + x

        def term(tau: float) -> float:
            return hyp2f1(r + s + x, second, r + s + x + 1, (beta - alpha) / (big + tau)) / (big + tau) ** (
                r + s + x
            )

    a0 = term(t_x) - term(T)
    bracket = 1 / ((alpha + T) ** (r + x) * (beta + T) ** s) + s / (r + s + x) * a0
    return float(gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta) + np.log(bracket))


@pytest.mark.parametrize(
    "params",
    [
        ParetoNbdParams(0.553, 10.578, 0.606, 11.669),
        ParetoNbdParams(1.2, 30.0, 0.8, 6.0),
        ParetoNbdParams(2, 5, 3, 5),
    ],
    ids=["alpha<beta", "alpha>beta", "alpha=beta"],
)
@pytest.mark.parametrize(
    ("x", "t_x", "T"), [(0, 0, 38.86), (1, 2.0, 30.0), (4, 29.9, 30.0), (12, 15.0, 70.0), (3, 10.0, 10.0)]
)
def test_pareto_log_likelihood_equals_the_published_expression(
    params: ParetoNbdParams, x: float, t_x: float, T: float
) -> None:
    ours = float(log_likelihood(params, x, t_x, T))
    assert ours == pytest.approx(_textbook_pareto_log_likelihood(params, x, t_x, T), rel=1e-10)


def _joint_density(params: BgNbdParams | ParetoNbdParams, x: int, t_x: float, T: float) -> float:
    """Density of (x, t_x): the likelihood times the volume t_x^(x-1)/(x-1)! of earlier purchase times."""
    ll = float(log_likelihood(params, x, t_x, T))
    return float(np.exp(ll + (x - 1) * np.log(t_x) - gammaln(x)))


@pytest.mark.parametrize(
    "params",
    [
        BgNbdParams(0.5, 5.0, 0.793, 2.426),
        BgNbdParams(2.0, 40.0, 3.0, 0.6),
        ParetoNbdParams(0.553, 10.578, 0.606, 11.669),
        ParetoNbdParams(1.2, 30.0, 0.8, 6.0),
    ],
    ids=["bgnbd a<1", "bgnbd a>1 b<1", "pareto alpha<beta", "pareto alpha>beta"],
)
def test_likelihood_is_a_probability_distribution_over_histories(
    params: BgNbdParams | ParetoNbdParams,
) -> None:
    # Summed over x and integrated over t_x, the likelihood of all possible histories in (0, T] is 1: a
    # check of every term (including the "died between the last purchase and T" ones) with no published
    # number involved.
    T = 30.0
    total = float(np.exp(log_likelihood(params, 0, 0.0, T)))
    for x in range(1, 150):
        total += quad(lambda u, x=x: _joint_density(params, x, u, T), 0.0, T, epsabs=1e-13, epsrel=1e-10)[0]
    assert total == pytest.approx(1.0, abs=1e-7)


def _textbook_bgnbd_expected(params: BgNbdParams, t: float, x: float, t_x: float, T: float) -> float:
    """FHL (2005) eq. 10 literally, without the Euler transformation."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    hyp = hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + T + t))
    numerator = (a + b + x - 1) / (a - 1) * (1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp)
    return numerator / (1 + (x > 0) * a / (b + x - 1) * ((alpha + T) / (alpha + t_x)) ** (r + x))


def _bgnbd_expected_by_quadrature(params: BgNbdParams, t: float, x: float, t_x: float, T: float) -> float:
    """E[(1/p)(1 - e^(-lambda p t))] over an alive customer's posterior, integrated numerically over p.

    lambda is integrated out exactly (Gamma(r+x, alpha+T) Laplace transform); p ~ Beta(a, b+x) is
    integrated in u = log p, which stays well conditioned for heavy buyers whose p sits near 0.
    """
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    scale = t / (alpha + T)

    def integrand(u: float) -> float:
        p = np.exp(u)
        per_p = (r + x) * scale if p * scale < 1e-12 else -np.expm1(-(r + x) * np.log1p(p * scale)) / p
        log_density = a * u + (b + x - 1) * np.log1p(-p) - betaln(a, b + x)  # Beta pdf times dp/du = p
        return float(np.exp(log_density) * per_p)

    centre = float(np.log(a / (a + b + x)))
    integral = sum(
        quad(integrand, lower, upper, epsabs=0, epsrel=1e-12, limit=500)[0]
        for lower, upper in ((-np.inf, centre), (centre, 0.0))
    )
    return integral * float(probability_alive(params, x, t_x, T))


@pytest.mark.parametrize(
    "params",
    [
        BgNbdParams(0.243, 4.414, 0.793, 2.426),
        BgNbdParams(2.0, 10.0, 3.0, 0.5),
        BgNbdParams(0.7, 2.0, 1.0 + 3e-6, 1.5),  # a ~ 1, where the closed form is 0/0 and is interpolated
        BgNbdParams(1.0, 20.0, 0.2, 0.9),
    ],
)
@pytest.mark.parametrize(
    ("t", "x", "t_x", "T"),
    [(39.0, 0, 0.0, 38.86), (39.0, 2, 30.43, 38.86), (5.0, 10, 20.0, 30.0), (300.0, 1, 1.0, 2.0)],
)
def test_bgnbd_expected_purchases_matches_the_published_formula_and_quadrature(
    params: BgNbdParams, t: float, x: float, t_x: float, T: float
) -> None:
    ours = float(expected_purchases(params, t, x, t_x, T))
    assert ours == pytest.approx(_bgnbd_expected_by_quadrature(params, t, x, t_x, T), rel=1e-7)
    if abs(params.a - 1) > 1e-3:
        assert ours == pytest.approx(_textbook_bgnbd_expected(params, t, x, t_x, T), rel=1e-8)


@pytest.mark.parametrize("x", [50.0, 500.0, 5000.0])
@pytest.mark.parametrize("silence", [0.0, 1.0])
def test_bgnbd_expected_purchases_for_heavy_buyers(x: float, silence: float) -> None:
    # Literal eq. 10 multiplies a 2F1 that overflows by a power that underflows (nan at x = 5000); the
    # transformed form keeps full precision. A week of silence after ~100 purchases a week means death.
    params = BgNbdParams(0.243, 4.414, 0.793, 2.426)
    ours = float(expected_purchases(params, 52.0, x, 52.0 - silence, 52.0))
    assert ours == pytest.approx(
        _bgnbd_expected_by_quadrature(params, 52.0, x, 52.0 - silence, 52.0), rel=1e-9
    )
    if silence == 0:
        assert 0.5 * x < ours < x


@pytest.mark.parametrize(
    "params", [ParetoNbdParams(0.553, 10.578, 0.606, 11.669), ParetoNbdParams(1.2, 30.0, 0.8, 6.0)]
)
@pytest.mark.parametrize(
    ("t", "x", "t_x", "T"), [(39.0, 0, 0.0, 38.86), (5.0, 7, 20.0, 30.0), (500.0, 1, 0.5, 1.0)]
)
def test_pareto_predictions_match_quadrature(
    params: ParetoNbdParams, t: float, x: float, t_x: float, T: float
) -> None:
    r, alpha, s, beta = params.r, params.alpha, params.s, params.beta
    alive = float(probability_alive(params, x, t_x, T))

    # First purchase at u: E[lambda e^(-lambda u)] E[e^(-mu u)] under the posterior of an alive customer.
    def first_purchase_density(u: float) -> float:
        return (
            (r + x)
            / (alpha + T)
            * ((alpha + T) / (alpha + T + u)) ** (r + x + 1)
            * ((beta + T) / (beta + T + u)) ** s
        )

    # Purchases at u: E[lambda] E[e^(-mu u)] (alive at u, buying at rate lambda).
    def purchase_rate(u: float) -> float:
        return (r + x) / (alpha + T) * ((beta + T) / (beta + T + u)) ** s

    p_purchase = quad(first_purchase_density, 0, t, epsabs=0, epsrel=1e-12)[0]
    expected = quad(purchase_rate, 0, t, epsabs=0, epsrel=1e-12)[0]
    assert float(probability_no_purchase(params, t, x, t_x, T)) == pytest.approx(
        1 - alive * p_purchase, rel=1e-9
    )
    assert float(expected_purchases(params, t, x, t_x, T)) == pytest.approx(alive * expected, rel=1e-9)


def test_pareto_expected_purchases_is_continuous_through_s_equal_one() -> None:
    at_one = float(expected_purchases(ParetoNbdParams(0.5, 10.0, 1.0, 12.0), 39.0, 3, 20.0, 38.0))
    for s in (1 - 1e-7, 1 + 1e-7):
        assert float(
            expected_purchases(ParetoNbdParams(0.5, 10.0, s, 12.0), 39.0, 3, 20.0, 38.0)
        ) == pytest.approx(at_one, rel=1e-6)


@pytest.mark.parametrize("x", [1, 2, 7, 40])
def test_gamma_gamma_density_integrates_to_one(x: int) -> None:
    params = GammaGammaParams(6.25, 3.74, 15.44)

    def density(m: float) -> float:
        return float(np.exp(gamma_gamma_module.log_likelihood(params, x, m)))

    assert quad(density, 0, np.inf, epsabs=0, epsrel=1e-10, limit=400)[0] == pytest.approx(1.0, abs=1e-8)


def test_conditional_expected_spend_shrinks_towards_the_population_mean() -> None:
    params = GammaGammaParams(6.25, 3.74, 15.44)
    population_mean = params.p * params.gamma / (params.q - 1)
    spend = conditional_expected_spend(params, [0, 1, 5, 100_000], [0.0, 100.0, 100.0, 100.0])
    assert spend[0] == pytest.approx(population_mean)
    # More transactions, more weight on the customer's own average.
    assert population_mean < spend[1] < spend[2] < spend[3] < 100.0
    assert spend[3] == pytest.approx(100.0, rel=1e-3)


# --- invariances and probability identities --------------------------------------------------------------

histories = st.tuples(
    st.integers(min_value=0, max_value=60),
    st.floats(min_value=0.0, max_value=1.0),
    st.floats(min_value=0.0, max_value=200.0),
).map(lambda v: (float(v[0]), v[1] * v[2] if v[0] > 0 else 0.0, v[2]))
bgnbd_params = st.builds(BgNbdParams, log_uniform, log_uniform, log_uniform, log_uniform)
pareto_params = st.builds(ParetoNbdParams, log_uniform, log_uniform, log_uniform, log_uniform)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    params=st.one_of(bgnbd_params, pareto_params),
    history=histories,
    t=st.floats(min_value=1e-3, max_value=500.0),
    longer=st.floats(min_value=1.0, max_value=10.0),
)
def test_probability_identities(
    params: BgNbdParams | ParetoNbdParams, history: tuple[float, float, float], t: float, longer: float
) -> None:
    x, t_x, T = history
    alive = float(probability_alive(params, x, t_x, T))
    silent = float(probability_no_purchase(params, t, x, t_x, T))
    silent_longer = float(probability_no_purchase(params, t * longer, x, t_x, T))
    expected = float(expected_purchases(params, t, x, t_x, T))
    expected_longer = float(expected_purchases(params, t * longer, x, t_x, T))
    tolerance = 1e-9
    assert 0.0 <= alive <= 1.0
    assert 0.0 <= silent <= 1.0
    assert silent >= 1 - alive - tolerance  # the dead never buy
    assert 1 - silent <= expected * (1 + 1e-7) + tolerance  # P(Y >= 1) <= E[Y]
    assert silent_longer <= silent + tolerance
    assert expected_longer >= expected * (1 - 1e-9)
    if x == 0 and isinstance(params, BgNbdParams):
        assert alive == 1.0  # BG/NBD customers can only drop out after a repeat purchase
    assert float(probability_no_purchase(params, 0.0, x, t_x, T)) == pytest.approx(1.0)
    assert float(expected_purchases(params, 0.0, x, t_x, T)) == 0.0


@settings(max_examples=100, deadline=None, derandomize=True)
@given(
    params=st.one_of(bgnbd_params, pareto_params),
    history=histories,
    t=st.floats(min_value=1e-2, max_value=100.0),
    unit=st.sampled_from([1 / 7, 7.0, 24.0 * 7]),
)
def test_predictions_do_not_depend_on_the_time_unit(
    params: BgNbdParams | ParetoNbdParams, history: tuple[float, float, float], t: float, unit: float
) -> None:
    x, t_x, T = history
    if isinstance(params, BgNbdParams):
        rescaled: BgNbdParams | ParetoNbdParams = BgNbdParams(
            params.r, params.alpha * unit, params.a, params.b
        )
    else:
        rescaled = ParetoNbdParams(params.r, params.alpha * unit, params.s, params.beta * unit)
    for function in (probability_no_purchase, expected_purchases):
        assert float(function(rescaled, t * unit, x, t_x * unit, T * unit)) == pytest.approx(
            float(function(params, t, x, t_x, T)), rel=1e-7, abs=1e-12
        )
    assert float(probability_alive(rescaled, x, t_x * unit, T * unit)) == pytest.approx(
        float(probability_alive(params, x, t_x, T)), rel=1e-7, abs=1e-12
    )


def test_fits_do_not_depend_on_the_time_unit(cdnow: pd.DataFrame) -> None:
    weeks = (cdnow["frequency"], cdnow["recency"], cdnow["T"])
    days = (cdnow["frequency"], cdnow["recency"] * 7, cdnow["T"] * 7)
    repeat_purchases = float(cdnow["frequency"].sum())
    for fit, rate_names, shape_names in (
        (fit_bgnbd, ("alpha",), ("r", "a", "b")),
        (fit_pareto_nbd, ("alpha", "beta"), ("r", "s")),
    ):
        in_weeks, in_days = fit(*weeks), fit(*days)
        for name in rate_names:
            assert getattr(in_days, name) == pytest.approx(7 * getattr(in_weeks, name), rel=1e-4)
        for name in shape_names:
            assert getattr(in_days, name) == pytest.approx(getattr(in_weeks, name), rel=1e-4)
        # A density over purchase times: each of the repeat purchases contributes a factor 1/7.
        assert in_days.log_likelihood == pytest.approx(
            in_weeks.log_likelihood - repeat_purchases * np.log(7), abs=1e-3
        )
    # Gamma-Gamma is currency-free in the same way: cents instead of dollars scale gamma by 100.
    dollars = fit_gamma_gamma(cdnow["frequency"], cdnow["monetary_value"])
    cents = fit_gamma_gamma(cdnow["frequency"], cdnow["monetary_value"] * 100)
    assert (cents.p, cents.q, cents.gamma) == pytest.approx(
        (dollars.p, dollars.q, 100 * dollars.gamma), rel=1e-4
    )


def test_predicted_ltv_is_expected_purchases_times_expected_spend() -> None:
    model = BgNbdParams(0.243, 4.414, 0.793, 2.426)
    spend = GammaGammaParams(6.25, 3.74, 15.44)
    frequency, recency, T, value = [0, 2, 5], [0.0, 30.43, 10.0], [38.86, 38.86, 20.0], [0.0, 29.73, 12.5]
    ltv = predicted_ltv(model, spend, 52.0, frequency, recency, T, value)
    assert ltv == pytest.approx(
        expected_purchases(model, 52.0, frequency, recency, T)
        * conditional_expected_spend(spend, frequency, value)
    )


def test_inputs_may_be_series_lists_or_scalars_and_come_back_as_arrays() -> None:
    params = ParetoNbdParams(0.553, 10.578, 0.606, 11.669)
    summary = pd.DataFrame({"frequency": [2, 0], "recency": [30.43, 0.0], "T": [38.86, 20.0]}, index=[17, 4])
    from_series = probability_alive(params, summary["frequency"], summary["recency"], summary["T"])
    from_lists = probability_alive(params, [2, 0], [30.43, 0.0], [38.86, 20.0])
    assert isinstance(from_series, np.ndarray)
    assert from_series == pytest.approx(from_lists)
    assert from_series[1] == pytest.approx(float(probability_alive(params, 0, 0.0, 20.0)))
    # A per-customer horizon is allowed too.
    per_customer = expected_purchases(params, np.array([10.0, 50.0]), [2, 0], [30.43, 0.0], [38.86, 20.0])
    assert per_customer[0] == pytest.approx(float(expected_purchases(params, 10.0, 2, 30.43, 38.86)))
    assert per_customer[1] == pytest.approx(float(expected_purchases(params, 50.0, 0, 0.0, 20.0)))
