"""Buy-till-you-die baselines: BG/NBD, Pareto/NBD and the Gamma-Gamma spend model.

Inputs everywhere are per-customer summary columns with lifetimes' ``summary_data_from_transaction_data``
semantics (see ``ml.btyd.inputs``), in any time unit; outputs are numpy arrays, one value per customer.
Written from the published math (Fader, Hardie & Lee 2005a/b; Schmittlein, Morrison & Colombo 1987;
Fader & Hardie's notes), not from any other implementation.
"""

from ml.btyd.bgnbd import BgNbdParams, fit_bgnbd
from ml.btyd.gamma_gamma import GammaGammaParams, conditional_expected_spend, fit_gamma_gamma
from ml.btyd.pareto_nbd import ParetoNbdParams, fit_pareto_nbd
from ml.btyd.predictions import (
    TransactionModelParams,
    expected_purchases,
    log_likelihood,
    predicted_ltv,
    probability_alive,
    probability_no_purchase,
)

__all__ = [
    "BgNbdParams",
    "GammaGammaParams",
    "ParetoNbdParams",
    "TransactionModelParams",
    "conditional_expected_spend",
    "expected_purchases",
    "fit_bgnbd",
    "fit_gamma_gamma",
    "fit_pareto_nbd",
    "log_likelihood",
    "predicted_ltv",
    "probability_alive",
    "probability_no_purchase",
]
