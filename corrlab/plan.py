"""The analysis plan: the ``[analysis]`` section of a protocol file, fixed before the data.

The plan is validated when the protocol is loaded (so a typo fails before a night of
acquisition), stored resolved (defaults filled) in the dataset's manifest, and hashed
(``plan_sha256``). ``corrlab analyze`` uses the recorded plan; another plan is allowed
only with ``--exploratory`` and the results say so.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from corrlab.config import validate
from corrlab.hashing import sha256_json

TESTS = ("dependence", "controls", "no_signalling", "chsh", "log_negativity")

# Fields added after plans were first recorded, with their defaults: left out of a plan's
# JSON at the default so that recorded plans (and their hashes) read as before.
_LATER_FIELDS = {"fair_sampling": False, "time_block_trials": 32, "evidence": "fixed_n"}


class AnalysisPlan(BaseModel):
    """What the analysis will do, declared before the data are taken."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    observable: Literal["mean", "quadratures", "samples"] = Field(
        "mean",
        description="per-trial observable: windowed mean of x (default), the lock-in quadrature "
        "pair (x, y) windowed means, or the raw samples (circular-shift null)",
    )
    window: tuple[float, float] = Field(
        (0.0, 1.0), description="fraction of each trial's record used by the windowed mean: [start, stop)"
    )
    statistic: Literal["gaussian_copula", "copula_omnibus", "gaussian", "ksg"] = Field(
        "copula_omnibus", description="the dependence statistic of the confirmatory permutation tests; "
        "copula_omnibus: the Gaussian-copula MI and the binned rank MI (sees non-monotone dependence), min-p "
        "combined over the same resamples"
    )
    estimators: tuple[Literal["ksg", "gaussian_copula", "gaussian"], ...] = ("ksg", "gaussian_copula", "gaussian")
    ksg_k: int = Field(3, ge=1, le=50)
    n_resamples: int = Field(9999, ge=99, le=10_000_000)
    alpha: float = Field(0.05, gt=0.0, lt=0.5)
    confidence_level: float = Field(0.95, gt=0.5, lt=1.0)
    confirmatory: tuple[Literal["dependence", "controls", "no_signalling", "chsh", "log_negativity"], ...] = (
        "dependence", "controls", "no_signalling", "chsh", "log_negativity",
    )
    multiplicity: Literal["holm", "none"] = "holm"
    no_signalling_test: Literal["g", "anderson"] = Field(
        "anderson", description="k-sample Anderson-Darling on the local observable (permutation p-value over the "
        "randomized remote settings), or a G-test on its sign (the CHSH outcome)")
    no_signalling_margin: float = Field(0.05, gt=0.0, lt=1.0, description="TOST margin on the marginal difference")
    chsh_minus: tuple[int, int] = Field((1, 1), description="the (setting_a, setting_b) pair with the minus sign in S")
    fair_sampling: bool = Field(
        False, description="CHSH: trials with a missing outcome are dropped (fair sampling stated, named in the "
        "reasons) instead of counted with the outcome +1 (the bound then holds for any local model)")
    time_block_trials: int = Field(
        32, ge=0, description="trials per time-local block of the dependence test: trials are re-paired only "
        "within blocks of this many consecutive trials (within runs), marginals standardised within each block, "
        "so slow drifts cannot pass for dependence; 0: the whole run (no time blocks), else at least 4")
    evidence: Literal["fixed_n", "anytime"] = Field(
        "fixed_n", description="what the verdict rests on: the fixed-n tests (permutation p-values, Holm), or the "
        "anytime-valid e-processes (corrlab.anytime, closed e-Holm: a hypothesis counts once its adjusted e-value "
        "reached 1/alpha); a test without an e-process (log negativity, the y observable's no-signalling) keeps "
        "its fixed-n test. Both kinds are reported either way")
    coherence_nperseg: int = Field(256, ge=8)
    seed: int = Field(0, ge=0, description="seed of the analysis resampling")

    @field_validator("window")
    @classmethod
    def _window(cls, v):
        lo, hi = v
        if not 0.0 <= lo < hi <= 1.0:
            raise ValueError("window must satisfy 0 <= start < stop <= 1")
        return v

    @field_validator("time_block_trials")
    @classmethod
    def _time_blocks(cls, v):
        if 0 < v < 4:
            raise ValueError("time_block_trials must be 0 (no time blocks) or at least 4")
        return v

    @field_validator("chsh_minus")
    @classmethod
    def _minus(cls, v):
        if any(s not in (0, 1) for s in v):
            raise ValueError("chsh_minus settings must be 0 or 1")
        return v

    @model_validator(mode="after")
    def _family(self):
        if len(set(self.confirmatory)) != len(self.confirmatory):
            raise ValueError("confirmatory lists a test twice")
        return self

    def to_json(self) -> dict:
        out = self.model_dump(mode="json")
        # added later: at their defaults, plans (and their hashes) read as before
        for name, default in _LATER_FIELDS.items():
            if out[name] == default:
                del out[name]
        return out

    @property
    def sha256(self) -> str:
        return plan_sha256(self.to_json())


def plan_sha256(plan: dict) -> str:
    """The hash of a resolved plan (canonical JSON)."""
    return sha256_json(plan)


def load_plan(data: dict | None, *, source: str = "[analysis]") -> AnalysisPlan:
    """Validate a plan dict; a bad field raises PlanError naming it and what is allowed."""
    return validate(AnalysisPlan, data or {}, source=source)
