"""The vacuum calibration: a thermal fit with its uncertainty, shared by acquisition and analysis.

The Gaussian witnesses read quadratures in vacuum units, so the vacuum variance of each side's
columns is part of the claim (issue 14). It is measured, not assumed: the oscillator's
quadrature variance is read at several cryostat temperatures T and fitted with

    variance(T) = v_vac (2 n_th(T) + 1),   n_th(T) = 1 / (exp(h f / k T) - 1)

(f the oscillator's frequency), a one-parameter weighted least-squares fit with the readings'
standard errors. Its statistical standard error comes from the fit (``1 / sum(w g^2)``), inflated
by the Birge ratio ``sqrt(chi2 / dof)`` when the points scatter more than their errors say (the
model or the errors are then incomplete, and the larger spread is the honest one). A declared
systematic relative uncertainty (thermometry, gain between calibration and measurement) is a
*bound*, not a random error, so it is added linearly to the statistical half-width (never in
quadrature, which would let it shrink):

    interval = v_hat * [1 - (z u_stat + u_sys), 1 + (z u_stat + u_sys)]

with ``u_stat`` the relative statistical standard error and ``z`` the normal quantile of the
interval's level. Before/after calibrations are compared on their statistical errors alone (the
systematic is common to both: the same thermometer, the same chain); a difference beyond them is
flagged as drift, and the set is widened to the union of both intervals.

This module is core: the protocol's calibration step (acquisition) fits with it and records the
fit in the manifest; the analysis rebuilds the confidence set from the recorded readings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from corrlab.errors import DatasetError, PlanError

__all__ = [
    "MODEL",
    "CalibrationSet",
    "ThermalFit",
    "calibration_set",
    "compare",
    "fit_thermal",
    "interval",
    "occupation",
    "side_readings",
]

H_OVER_K = 6.62607015e-34 / 1.380649e-23  # s K
MODEL = "variance = v_vac (2 n_th(T) + 1), n_th = 1 / (exp(h f / k T) - 1)"
SIDES = ("a", "b")


def occupation(temperature_k, frequency_hz: float):
    """Bose-Einstein occupation ``1 / (exp(h f / k T) - 1)`` (array-friendly; 0 at T <= 0)."""
    t = np.asarray(temperature_k, dtype=np.float64)
    with np.errstate(divide="ignore", over="ignore"):
        x = np.where(t > 0, H_OVER_K * float(frequency_hz) / np.where(t > 0, t, 1.0), np.inf)
        n = np.where(np.isfinite(x), 1.0 / np.expm1(np.where(np.isfinite(x), x, 1.0)), 0.0)
    return float(n) if n.ndim == 0 else n


@dataclass(frozen=True)
class ThermalFit:
    """One side's thermal fit. ``stat_se`` includes the Birge inflation (never below the fit's own)."""

    vacuum_variance: float
    stat_se: float
    fit_se: float  # 1 / sqrt(sum w g^2), before the Birge inflation
    chi2: float
    dof: int
    pvalue: float  # goodness of fit: P(chi2_dof > chi2)
    birge: float  # max(1, sqrt(chi2 / dof))

    @property
    def stat_relative(self) -> float:
        return self.stat_se / self.vacuum_variance

    def to_json(self) -> dict:
        return {"vacuum_variance": self.vacuum_variance, "stat_se": self.stat_se,
                "stat_relative": self.stat_relative, "fit_se": self.fit_se, "chi2": self.chi2, "dof": self.dof,
                "pvalue": self.pvalue, "birge": self.birge}


def fit_thermal(temperatures_k, variances, standard_errors, *, frequency_hz: float,
                errors: str = "as_given") -> ThermalFit:
    """Weighted least squares of ``variance = v_vac (2 n_th(T) + 1)`` (one parameter, through 0).

    ``temperatures_k``: the measured temperature of each point; ``variances`` and
    ``standard_errors``: each point's mean variance reading and its standard error.
    ``v_hat = sum(w g y) / sum(w g^2)``, ``w = 1 / se^2``, ``g = 2 n_th + 1``.

    ``errors="pooled_relative"``: every point is read the same way (same records, same
    bandwidth), so its relative error is the same at every temperature; the points' relative
    errors are pooled (root mean square) and each point's error follows the model,
    ``se_i = rel * v0 g_i`` (``v0`` the unweighted mean of ``y / g``). Weights from each point's own
    spread of a few readings favour the points that came out low (the spread scales with the
    level): on the simulated bench with 4 readings per point that fit was 2.3% low and its
    errors half the truth.
    """
    t = np.asarray(temperatures_k, dtype=np.float64)
    y = np.asarray(variances, dtype=np.float64)
    se = np.asarray(standard_errors, dtype=np.float64)
    if not (t.ndim == 1 and t.shape == y.shape == se.shape and len(t) >= 2):
        raise PlanError(f"a thermal fit needs at least 2 points of equal length; got {t.shape}, {y.shape}, {se.shape}")
    if not (np.all(np.isfinite(t)) and np.all(t > 0) and np.all(np.isfinite(y)) and np.all(np.isfinite(se))):
        raise DatasetError("thermal calibration: temperatures must be positive and readings finite")
    if not np.all(se > 0):
        raise DatasetError("thermal calibration: every point needs a positive standard error (>= 2 readings that differ)")
    if not frequency_hz > 0:
        raise PlanError(f"frequency_hz must be positive; got {frequency_hz!r}")
    g = 2.0 * occupation(t, frequency_hz) + 1.0
    if errors == "pooled_relative":
        rel = math.sqrt(float(np.mean((se / y) ** 2)))
        se = rel * float(np.mean(y / g)) * g
    elif errors != "as_given":
        raise PlanError(f"errors must be 'as_given' or 'pooled_relative'; got {errors!r}")
    w = 1.0 / se ** 2
    sgg = float(np.sum(w * g * g))
    v = float(np.sum(w * g * y) / sgg)
    fit_se = 1.0 / math.sqrt(sgg)
    chi2 = float(np.sum(w * (y - v * g) ** 2))
    dof = len(t) - 1
    from scipy.stats import chi2 as chi2_dist

    birge = max(1.0, math.sqrt(chi2 / dof))
    if not v > 0:
        raise DatasetError(f"thermal calibration: the fitted vacuum variance is {v:.4g}, not positive")
    return ThermalFit(v, fit_se * birge, fit_se, chi2, dof, float(chi2_dist.sf(chi2, dof)), birge)


def side_readings(record: np.ndarray) -> dict[str, float]:
    """One calibration record (channels x_a, x_b, y_a, y_b): each side's quadrature variance,
    the mean of its x and y mean squares (the record's reading).

    About zero, not about the record's mean: with nothing prepared the quadratures' mean is 0,
    and a record's own mean of slowly correlated samples takes ``1 / N_eff`` of the variance with
    it (1.6% at 20 000 samples of a 20 Hz line at 10 kHz). A lock-in offset would add a constant
    to every point, which the one-parameter fit's chi-square shows."""
    r = np.asarray(record, dtype=np.float64)
    if r.ndim != 2 or r.shape[0] not in (2, 4):
        raise PlanError(f"a calibration record is (channels, samples) with 2 or 4 channels; got {r.shape}")
    var = np.mean(r * r, axis=1)
    if r.shape[0] == 2:
        return {"a": float(var[0]), "b": float(var[1])}
    return {"a": float((var[0] + var[2]) / 2), "b": float((var[1] + var[3]) / 2)}


def interval(value: float, stat_relative: float, systematic_relative: float, z: float) -> tuple[float, float]:
    """``value * (1 -+ (z stat_relative + systematic_relative))``, the lower end kept above 0."""
    half = z * stat_relative + systematic_relative
    return (value * max(1e-12, 1.0 - half), value * (1.0 + half))


def compare(before: ThermalFit, after: ThermalFit, *, alpha: float) -> dict:
    """Before against after: ``z = |v1 - v2| / sqrt(se1^2 + se2^2)`` (statistical errors only: the
    systematic is shared), flagged when the two-sided p is below ``alpha``."""
    from scipy.stats import norm

    diff = after.vacuum_variance - before.vacuum_variance
    se = math.hypot(before.stat_se, after.stat_se)
    z = abs(diff) / se if se > 0 else math.inf
    p = float(2 * norm.sf(z))
    return {"difference": diff, "relative_difference": diff / before.vacuum_variance, "se": se, "z": z,
            "pvalue": p, "flagged": bool(p < alpha)}


@dataclass(frozen=True)
class CalibrationSet:
    """The calibrated vacuum variances and their confidence box (analysis side).

    ``value``: ``{"a", "b"}`` the calibrated values (the inverse-variance mean of the before and
    after fits); ``box``: ``{"a": (lo, hi), "b": (lo, hi)}`` each side's interval at ``level``
    (stat at ``z`` plus the systematic; the union of the before and after intervals when they
    disagree); ``drift``: the comparison per side (empty with one calibration).
    """

    value: dict
    box: dict
    level: float
    z: float
    systematic_relative: float
    fits: dict  # which ("before"/"after") -> side -> ThermalFit
    drift: dict  # side -> compare(...)
    points: dict  # which -> {"temperatures_k", "a": {"mean", "se", "readings"}, "b": ...}
    frequency_hz: float

    @property
    def drift_flagged(self) -> bool:
        return any(d["flagged"] for d in self.drift.values())

    @property
    def checked_drift(self) -> bool:
        return bool(self.drift)

    def to_json(self) -> dict:
        return {"source": "measured", "model": MODEL, "vacuum_variance": dict(self.value),
                "interval": {s: list(v) for s, v in self.box.items()}, "level_per_side": self.level, "z": self.z,
                "systematic_relative": self.systematic_relative, "oscillator_frequency_hz": self.frequency_hz,
                "stat_relative": {s: self._stat_rel(s) for s in SIDES},
                "fits": {w: {s: f.to_json() for s, f in sides.items()} for w, sides in self.fits.items()},
                "drift": {"checked": self.checked_drift, "flagged": self.drift_flagged, "sides": self.drift,
                          "rule": "before vs after on statistical errors, two-sided, Bonferroni over the sides; "
                                  "flagged: the box is the union of both intervals"}}

    def _stat_rel(self, side: str) -> float:
        fits = [f[side] for f in self.fits.values()]
        w = sum(1.0 / f.stat_se ** 2 for f in fits)
        return (1.0 / math.sqrt(w)) / self.value[side]


def _points(measurement: dict) -> tuple[np.ndarray, dict]:
    """Each point's mean reading and standard error per side, from the recorded raw readings."""
    temps = np.asarray([p["temperature_k"] for p in measurement["points"]], dtype=np.float64)
    out = {}
    for s in SIDES:
        means, ses = [], []
        for p in measurement["points"]:
            r = np.asarray(p["readings"][s], dtype=np.float64)
            if len(r) < 2:
                raise DatasetError("calibration: each point needs at least 2 readings for its standard error")
            means.append(float(r.mean()))
            ses.append(float(r.std(ddof=1) / math.sqrt(len(r))))
        out[s] = {"mean": np.asarray(means), "se": np.asarray(ses)}
    return temps, out


def fit_measurement(measurement: dict) -> dict[str, ThermalFit]:
    """Refit one recorded calibration (``measurement["points"]`` with raw readings) per side."""
    temps, pts = _points(measurement)
    f = float(measurement["oscillator_frequency_hz"])
    return {s: fit_thermal(temps, pts[s]["mean"], pts[s]["se"], frequency_hz=f, errors="pooled_relative")
            for s in SIDES}


def calibration_set(calibration: dict, *, alpha_per_side: float, drift_alpha: float) -> CalibrationSet | None:
    """The confidence box from a manifest's ``calibration`` (None when nothing was measured).

    Each recorded measurement is refitted from its raw readings (the analysis trusts the data,
    not the acquisition's arithmetic). ``alpha_per_side``: each side's interval is at level
    ``1 - alpha_per_side`` (``z`` its two-sided normal quantile). ``drift_alpha``: the level of the
    before/after comparison (Bonferroni over the two sides inside).
    """
    from scipy.stats import norm

    ms = [m for m in (calibration or {}).get("measurements") or [] if m.get("points")]
    if not ms:
        return None
    syst = max(float(m.get("systematic_relative", 0.0)) for m in ms)
    z = float(norm.isf(alpha_per_side / 2))
    fits, points = {}, {}
    for i, m in enumerate(ms):
        key = m.get("which") or f"calibration {i + 1}"
        if key in fits:
            key = f"{key} {i + 1}"
        fits[key] = fit_measurement(m)
        temps, pts = _points(m)
        points[key] = {"temperatures_k": temps.tolist(),
                       **{s: {"mean": pts[s]["mean"].tolist(), "se": pts[s]["se"].tolist(),
                              "readings": [p["readings"][s] for p in m["points"]]} for s in SIDES}}
    keys = list(fits)
    value, box, drift = {}, {}, {}
    for s in SIDES:
        fs = [fits[k][s] for k in keys]
        w = [1.0 / f.stat_se ** 2 for f in fs]
        v = sum(wi * f.vacuum_variance for wi, f in zip(w, fs)) / sum(w)
        value[s] = v
        se_rel = (1.0 / math.sqrt(sum(w))) / v
        lo, hi = interval(v, se_rel, syst, z)
        if len(fs) >= 2:
            d = compare(fs[0], fs[-1], alpha=drift_alpha / 2)
            drift[s] = d
            if d["flagged"]:  # the union of every calibration's own interval (and the mean's)
                for f in fs:
                    flo, fhi = interval(f.vacuum_variance, f.stat_relative, syst, z)
                    lo, hi = min(lo, flo), max(hi, fhi)
        box[s] = (lo, hi)
    return CalibrationSet(value, box, 1.0 - alpha_per_side, z, syst, fits, drift, points,
                          float(ms[0]["oscillator_frequency_hz"]))
