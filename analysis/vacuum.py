"""The vacuum calibration carried into the Gaussian witnesses (issue 14).

A Gaussian witness is only as good as the vacuum scale it is read in. This module turns the
manifest's ``calibration`` into the confidence set the analysis propagates and builds the
results' ``calibration`` section (an additive key of results v1):

* **measured** (the protocol's calibration step, or any ``calibration.measurements`` with raw
  readings): each calibration is refitted from its readings (:mod:`corrlab.calibration`); the
  calibrated value is the inverse-variance mean of the before and after fits; each side's
  interval is ``z`` statistical standard errors plus the declared systematic (a bound, added
  linearly); a before/after difference beyond the statistical errors is flagged as drift and
  widens each side's interval to the union of every calibration's own. Every Gaussian witness
  is reported at the calibrated value and in the worst case over the box of both sides'
  intervals (:func:`corrlab.analysis.gaussian.calibration_worst_case`).
* **stated** (a bare number: an old manifest, an import, ``--vacuum-variance``): accepted, the
  witnesses are computed at it, and everything says the claim is conditional on an exact
  calibration.

The level is split by Bonferroni so that the worst-case interval keeps the plan's confidence:
with ``alpha = 1 - confidence_level``, the covariance's interval takes ``alpha / 2`` and the
calibration box ``alpha / 2`` (``alpha / 4`` per side); the union bound then gives joint
coverage at least ``1 - alpha`` (see :func:`~corrlab.analysis.gaussian.calibration_worst_case`).
The drift comparison is a test at the plan's alpha (Bonferroni over the two sides).
"""

from __future__ import annotations

from corrlab.calibration import CalibrationSet, calibration_set

CONDITIONAL = ("CONDITIONAL on an exact vacuum calibration: the vacuum variances are a bare number "
               "(no measured calibration with its uncertainty), so the witness assumes them exact")


def measured_record(calibration: dict | None) -> dict | None:
    """The manifest's calibration when it holds measurements with raw readings, else None."""
    if calibration and any(m.get("points") for m in calibration.get("measurements") or []):
        return calibration
    return None


def confidence_set(calibration: dict | None, *, alpha: float) -> CalibrationSet | None:
    """The calibration's box at ``alpha / 4`` per side, the drift test at ``alpha``."""
    rec = measured_record(calibration)
    if rec is None:
        return None
    return calibration_set(rec, alpha_per_side=alpha / 4, drift_alpha=alpha)


def propagate(gaussian: dict, g, quadratures, trial, cs: CalibrationSet | None, stated: dict | None, *,
              alpha: float, n_resamples: int, rng, nominal: dict | None = None) -> dict:
    """Fill ``gaussian`` (the results' ``nonclassicality.gaussian``) with the calibration's
    verdict and return the results' ``calibration`` section.

    ``g``: the :class:`~corrlab.analysis.gaussian.GaussianEntanglementResult` at the calibrated
    value; ``quadratures``: the (4, N) derotated samples; ``trial``: their trial labels.
    """
    from corrlab.analysis.gaussian import calibration_worst_case

    calibrated = {"log_negativity": g.log_negativity_corrected, "ci": list(g.ci), "pvalue": g.pvalue,
                  "confidence_level": g.confidence_level}
    witnesses = {"log_negativity": {"calibrated": calibrated},
                 "duan": {"calibrated": g.duan.statistic, "bound": g.duan.bound},
                 "simon": {"calibrated": g.simon.statistic, "bound": 0.0},
                 "nu_pt": {"calibrated": g.nu_pt, "bound": 1.0}}
    if cs is None:
        gaussian["calibration"] = "stated"
        gaussian["worst_case"] = None
        gaussian["conditional"] = CONDITIONAL
        for w in witnesses.values():
            w["worst_case"] = None
        return {"source": "stated", "vacuum_variance": dict(stated or {}), "statement": CONDITIONAL,
                "witnesses": witnesses}
    wc = calibration_worst_case(*quadratures, trial=trial, box=(cs.box["a"], cs.box["b"]),
                                calibration_alpha=alpha / 2, covariance_level=1 - alpha / 2,
                                n_resamples=n_resamples, rng=rng)
    worst = {"log_negativity": wc.log_negativity, "ci": [wc.ci.low, wc.ci.high], "pvalue": wc.pvalue,
             "confidence_level": wc.ci.confidence_level, "at": {"a": wc.at[0], "b": wc.at[1]},
             "corners": wc.corners, "method": wc.method}
    witnesses["log_negativity"]["worst_case"] = worst
    witnesses["duan"]["worst_case"] = wc.duan
    witnesses["simon"]["worst_case"] = wc.simon
    witnesses["nu_pt"]["worst_case"] = wc.nu_pt
    gaussian["calibration"] = "measured"
    gaussian["worst_case"] = {**worst, "duan": wc.duan, "simon": wc.simon, "nu_pt": wc.nu_pt}
    excluded = wc.ci.low > 0
    out = cs.to_json()
    out.update(
        points=cs.points,
        alpha_split={"covariance": alpha / 2, "calibration": alpha / 2, "per_side": alpha / 4,
                     "rule": "Bonferroni: the worst case over the box of the covariance interval covers with "
                             "probability >= 1 - alpha (union bound)"},
        witnesses=witnesses,
        statement=(f"E_N = {g.log_negativity_corrected:.3f} nats at the calibrated vacuum; worst case over the "
                   f"calibration's confidence set {wc.log_negativity:.3f} [{wc.ci.low:.3f}, {wc.ci.high:.3f}] "
                   f"({wc.ci.confidence_level:.0%} joint) -> "
                   + ("the classical region (E_N = 0) is excluded" if excluded else
                      "the classical region (E_N = 0) is NOT excluded once the calibration's uncertainty is counted")))
    if nominal:
        out["nominal_vacuum_variance"] = nominal
    return out


def assumption_entry(section: dict | None, source: str | None) -> tuple:
    """The log negativity's 'quadratures in vacuum units' entry from the results' ``calibration``:
    the arguments ``(assumption, check, outcome, detail[, pvalue])`` of
    :func:`corrlab.analysis.assumptions.entry` (which imports this module, not the reverse)."""

    def entry(*args):
        return args

    name = "quadratures in vacuum units: a measured vacuum calibration with its uncertainty"
    if not section or section.get("source") != "measured":
        return entry(name, "not checkable from these data", "stated",
                     f"{source or 'the calibration'} declares the vacuum variances as a bare number: the claim is "
                     "CONDITIONAL on an exact calibration (its uncertainty is unknown and not propagated)")
    fits = section["fits"]
    rel = section["stat_relative"]
    check = (f"thermal fit{'s' if len(fits) > 1 else ''} ({', '.join(fits)}): statistical +-{rel['a']:.2%} (A), "
             f"+-{rel['b']:.2%} (B), systematic +-{section['systematic_relative']:.2%} declared; witnesses taken in "
             "the worst case over the calibration's confidence set")
    drift = section["drift"]
    if not drift["checked"]:
        return entry(name, check, "unchecked", "one calibration only: the vacuum scale's drift over the run is not "
                     "checked (calibrate again after the last trial)")
    sides = drift["sides"]
    worst = min(sides.values(), key=lambda d: d["pvalue"])
    p = min(1.0, 2 * worst["pvalue"])  # Bonferroni over the two sides
    text = ", ".join(f"{s.upper()} {d['relative_difference']:+.2%} (z = {d['z']:.1f})" for s, d in sides.items())
    if drift["flagged"]:
        return entry(name, check + f"; before vs after: {text}", "fails",
                     "the vacuum scale drifted between the calibrations beyond their uncertainty: the box was widened "
                     "to the union of both intervals, and the calibration does not hold over the run", p)
    return entry(name, check + f"; before vs after: {text}", "holds",
                 "calibrations before and after agree within their uncertainty", p)
