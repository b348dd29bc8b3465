"""The evidence ladder alone: hand-made p-values in, Holm, the level and the reasons out."""

from __future__ import annotations

import pytest
from statsmodels.stats.multitest import multipletests

from corrlab.analysis.ladder import LEVELS, grade

ALL = ("dependence", "controls", "no_signalling", "chsh", "log_negativity")


def main(p=1e-4, estimate=0.2, n=120):
    return {"pvalue": p, "n_trials": n, "mi": {"estimate": estimate, "ci": [0.1, 0.3], "method": "m"}}


def control(name, p):
    return {"control": f"control:{name}", "pvalue": p,
            "mi_difference": {"estimate": 0.1, "ci": [0.05, 0.15], "method": "m"}}


def ns(side, cond, p, equivalent=True):
    return {"side": side, "condition": cond, "pvalue": p, "difference": 0.01, "equivalent": equivalent}


def nonclassicality(chsh=None, gaussian=None, **not_applicable):
    return {"chsh": None if chsh is None else {"S": 2.5, "se": 0.1, "pvalue": chsh},
            "gaussian": gaussian, "not_applicable": not_applicable}


def gaussian(p, lo=0.5):
    return {"log_negativity": 1.0, "ci": [lo, 1.5], "pvalue": p}


def run(m=None, controls=(), tests=(), nc=None, **kw):
    opts = {"alpha": 0.05, "confirmatory": ALL, "no_signalling_margin": 0.1, **kw}
    return grade(main() if m is None else m, list(controls), list(tests),
                 nonclassicality() if nc is None else nc, **opts)


def test_the_four_levels_are_the_contracts_strings():
    assert LEVELS == ("none", "dependence", "protocol-specific", "nonclassical")
    clean = [ns("A", "main", 0.6), ns("B", "main", 0.7)]
    assert run(main(p=0.4), [control("break_L", 0.6)], clean).verdict.level == "none"
    assert run(main(), [control("break_L", 0.6)], clean).verdict.level == "dependence"
    assert run(main(), [control("break_L", 1e-3)], clean).verdict.level == "protocol-specific"
    assert run(main(), [control("break_L", 1e-3)], clean, nonclassicality(chsh=1e-6)).verdict.level == "nonclassical"


def test_holm_equals_statsmodels_in_each_of_the_two_families():
    ctrl = [control("break_L", 0.01), control("perturb_C", 0.04), control("couple_env", 0.03)]
    tests = [ns("A", "main", 0.02), ns("B", "main", 0.5), ns("A", "control:break_L", 0.011)]
    g = run(main(p=0.005), ctrl, tests, nonclassicality(chsh=0.2, gaussian=gaussian(0.001)))
    evidence = ["dependence", "controls:control:break_L", "controls:control:perturb_C", "controls:control:couple_env",
                "chsh", "log_negativity"]
    raw = [0.005, 0.01, 0.04, 0.03, 0.2, 0.001]
    assert [f[0] for f in g.family] == evidence[:4] + [
        "no_signalling:A:main", "no_signalling:B:main", "no_signalling:A:control:break_L"] + evidence[4:]
    expected = multipletests(raw, method="holm")[1]
    assert [g.adjusted[n] for n in evidence] == pytest.approx(expected, rel=1e-12)
    # by hand: sorted 0.001, 0.005, 0.01, 0.03, 0.04, 0.2 times 6, 5, 4, 3, 2, 1, then running maxima
    assert [g.adjusted[n] for n in evidence] == pytest.approx([0.025, 0.04, 0.09, 0.09, 0.2, 0.006])
    signalling = [0.02, 0.5, 0.011]
    assert [g.adjusted[f"no_signalling:{t['side']}:{t['condition']}"] for t in tests] == pytest.approx(
        multipletests(signalling, method="holm")[1], rel=1e-12)
    assert {name: (p, q) for name, p, q in g.family}["chsh"] == (0.2, pytest.approx(0.2))


def test_without_holm_the_adjusted_pvalues_are_the_raw_ones():
    g = run(main(p=0.03), [control("break_L", 0.04)], multiplicity="none")
    assert g.adjusted == {"dependence": 0.03, "controls:control:break_L": 0.04}
    assert g.verdict.level == "protocol-specific"
    # the same p-values under Holm: 0.06 and 0.06, no rung
    assert run(main(p=0.03), [control("break_L", 0.04)]).verdict.level == "none"


def test_one_failing_control_blocks_the_protocol_specific_rung():
    g = run(main(), [control("break_L", 1e-4), control("perturb_C", 0.3), control("couple_env", 1e-4)])
    v = g.verdict
    assert v.dependence and not v.protocol_specific and v.level == "dependence"
    assert "main vs control:perturb_C: MI difference 0.1 nats [0.05, 0.15], p = 0.3 (Holm 0.3) -> not shown to " \
           "exceed it" in v.reasons
    assert any(r.startswith("main vs control:break_L") and r.endswith("-> main exceeds it") for r in v.reasons)


def test_no_controls_no_protocol_specific_rung():
    v = run(main()).verdict
    assert v.dependence and not v.protocol_specific and v.level == "dependence"
    assert "no control conditions: protocol-specificity cannot be tested" in v.reasons


def test_controls_without_dependence_do_not_make_protocol_specific():
    v = run(main(p=0.5), [control("break_L", 1e-4)]).verdict
    assert not v.dependence and not v.protocol_specific and v.level == "none"


def test_signalling_blocks_nonclassical_and_protocol_specific():
    tests = [ns("A", "main", 0.6), ns("B", "main", 1e-5, equivalent=False)]
    g = run(main(), [control("break_L", 1e-4)], tests, nonclassicality(chsh=1e-8, gaussian=gaussian(1e-8)))
    v = g.verdict
    assert v.signalling_detected and v.dependence and not v.protocol_specific and not v.nonclassical
    assert v.level == "dependence"
    assert any(r.startswith("SIGNALLING DETECTED: side B's marginal depends on the remote setting in main")
               for r in v.reasons)


def test_signalling_counts_even_outside_the_confirmatory_family():
    tests = [ns("A", "main", 1e-4)]
    g = run(main(), [control("break_L", 1e-4)], tests, confirmatory=("dependence", "controls"))
    assert not any(name.startswith("no_signalling") for name, _, _ in g.family)
    assert g.verdict.signalling_detected and g.verdict.level == "dependence"


def test_holm_keeps_a_clean_experiment_from_being_flagged_for_signalling():
    # eight no-signalling tests, the smallest raw p 0.01: Holm 0.08, no signalling
    tests = [ns(s, c, p) for (s, c), p in zip([(s, c) for c in ("main", "control:a", "control:b", "control:c")
                                                for s in "AB"], (0.01, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8))]
    v = run(main(), [control("break_L", 1e-4)], tests).verdict
    assert not v.signalling_detected and v.level == "protocol-specific"
    assert "no signalling detected in 8 test(s); 8 shown equivalent within the margin 0.1 (TOST)" in v.reasons


def test_a_witness_stands_without_dependence_or_controls():
    v = run(main(p=0.6), nc=nonclassicality(chsh=1e-6)).verdict
    assert v.nonclassical and not v.dependence and v.level == "nonclassical"
    assert any(r.startswith("CHSH: S = 2.500 +- 0.100, p(S <= 2) = 1.0e-06") and r.endswith("-> violated")
               for r in v.reasons)


def test_the_gaussian_witness_needs_its_interval_above_zero():
    assert run(nc=nonclassicality(gaussian=gaussian(1e-6, lo=0.0))).verdict.level == "dependence"
    assert run(nc=nonclassicality(gaussian=gaussian(1e-6, lo=0.01))).verdict.level == "nonclassical"


def test_a_witness_outside_the_confirmatory_family_does_not_count():
    g = run(nc=nonclassicality(chsh=1e-9), confirmatory=("dependence", "controls", "no_signalling"))
    assert "chsh" not in g.adjusted and g.verdict.level == "dependence"
    assert "dependence alone is never entanglement: a classical common cause produces it too" in g.verdict.reasons


def test_holm_can_take_a_witness_below_alpha_out():
    # raw CHSH 0.03 < alpha, but with dependence in the family its Holm value is 0.06
    g = run(main(p=0.5), nc=nonclassicality(chsh=0.03))
    assert g.adjusted["chsh"] == pytest.approx(0.06) and g.verdict.level == "none"


def test_reasons_name_the_plan_and_the_rungs():
    m = main(p=1e-4, estimate=0.2, n=120)
    v = run(m, exploratory=True, preregistered=False,
            nc=nonclassicality(log_negativity="no vacuum calibration")).verdict
    assert v.reasons[0].startswith("EXPLORATORY: analysed with a plan other than the one recorded")
    assert v.reasons[1] == "no pre-registered plan was recorded with these data (default or supplied plan)"
    assert v.reasons[2] == ("dependence in main: MI 0.2 nats, permutation p = 1.0e-04 (Holm 1.0e-04) over 120 trials "
                            "-> independence rejected at alpha = 0.05")
    assert "log_negativity: not applicable (no vacuum calibration)" in v.reasons
    few = run(main(p=None, estimate=None, n=3)).verdict
    assert few.level == "none" and "dependence in main: too few trials" in few.reasons


def test_the_pipeline_grades_with_the_ladder(tmp_path):
    """The pipeline's verdict and family are the ladder's, on its own results' sections."""
    from corrlab.analysis.pipeline import analyze_dataset
    from tests.synthetic import write_dataset

    path = write_dataset(tmp_path, "r", n_trials=60, coupling=0.6, seed=10,
                         plan={"n_resamples": 199, "estimators": ["gaussian_copula"], "seed": 3})
    res = analyze_dataset(path, interval_resamples=99)
    d = res.to_dict()
    g = grade(d["conditions"]["main"], d["controls"], d["no_signalling"]["tests"], d["nonclassicality"],
              alpha=res.plan["alpha"], confirmatory=res.plan["confirmatory"], multiplicity=res.plan["multiplicity"],
              no_signalling_margin=res.plan["no_signalling_margin"], exploratory=res.exploratory,
              preregistered=res.preregistered)
    assert g.verdict.to_dict() == d["verdict"]
    assert [[f["test"], f["pvalue"], f["pvalue_holm"]] for f in d["family"]] == [list(f) for f in g.family]
    assert d["conditions"]["main"]["pvalue_holm"] == g.adjusted.get("dependence")


def chsh_trials(n=400, e=0.6, seed=4):
    """Main trials only, +-1 outcomes with correlator e on three setting pairs and -e on (1, 1): S = 4e."""
    import numpy as np

    from corrlab.analysis.pipeline import DatasetContext, TrialData
    from corrlab.plan import load_plan

    rng = np.random.default_rng(seed)
    sa, sb = rng.integers(2, size=n), rng.integers(2, size=n)
    a = rng.choice([-1.0, 1.0], size=n)
    corr = np.where((sa == 1) & (sb == 1), -e, e)
    b = np.where(rng.random(n) < (1 + corr) / 2, a, -a)
    data = TrialData(trial=np.arange(n), condition=np.full(n, "main"), block=np.zeros(n, dtype=np.int64),
                     setting_a=sa, setting_b=sb, f=np.ones(n, dtype=bool), a=a, b=b)
    plan = load_plan({"n_resamples": 199, "estimators": ["gaussian"], "statistic": "gaussian"})
    ctx = DatasetContext("chsh", "0" * 64, plan, plan.sha256, False, True, None, ((0.0, 0.0), (0.0, 0.0)))
    return data, ctx


def test_the_chsh_pvalue_is_the_same_number_in_the_test_and_the_results():
    """``CHSHResult.pvalue`` is the results' ``pvalue`` (the bound the ladder uses), and
    ``pvalue_normal`` the results' ``pvalue_normal``."""
    import numpy as np
    from scipy.stats import binom, norm

    from corrlab.analysis.bell import chsh_test
    from corrlab.analysis.pipeline import analyze_trials

    data, ctx = chsh_trials()
    res = analyze_trials(data, ctx, interval_resamples=99)
    sel = data.select("main")
    c = chsh_test(np.sign(data.a[sel]), np.sign(data.b[sel]), data.setting_a[sel], data.setting_b[sel],
                  arrangement=tuple(ctx.plan.chsh_minus))
    out = res.to_dict()["nonclassicality"]["chsh"]
    assert c.pvalue == out["pvalue"]
    assert c.pvalue_normal == out["pvalue_normal"]
    assert c.pvalue != pytest.approx(c.pvalue_normal, rel=0.05)  # two different numbers on these data
    assert {f["test"]: f["pvalue"] for f in res.to_dict()["family"]}["chsh"] == c.pvalue
    # the bound: P(Binomial(n, 3/4) >= wins); the normal approximation: P(Z > (S - 2) / se)
    assert c.pvalue == pytest.approx(binom.sf(c.wins - 1, c.n_trials, 0.75), rel=1e-9)
    assert c.pvalue_normal == pytest.approx(norm.sf((c.S - 2) / c.se), rel=1e-9)


def test_another_resample_count_is_exploratory_from_python_as_from_the_cli(tmp_path):
    """``analyze_dataset(n_resamples=...)`` does what ``corrlab analyze --resamples`` does: a count
    other than the recorded plan's needs ``exploratory``, says so, and the results' plan shows it."""
    import json

    from click.testing import CliRunner

    from corrlab.analysis.multi import analyze_many
    from corrlab.analysis.pipeline import analyze_dataset
    from corrlab.daq.cli import cli
    from corrlab.errors import PlanError
    from corrlab.plan import load_plan
    from tests.synthetic import write_dataset

    plan = {"n_resamples": 199, "estimators": ["gaussian_copula"], "seed": 3}
    paths = [write_dataset(tmp_path, f"r{i}", n_trials=40, coupling=0.6, seed=1 + i, plan=plan) for i in range(2)]
    recorded_sha = load_plan(plan).sha256
    with pytest.raises(PlanError, match="--exploratory"):
        analyze_dataset(paths[0], n_resamples=299, interval_resamples=99)
    assert CliRunner().invoke(cli, ["analyze", str(paths[0]), "--resamples", "299"]).exit_code == 2
    api = analyze_dataset(paths[0], n_resamples=299, exploratory=True, interval_resamples=99)
    assert api.exploratory and api.preregistered
    assert api.plan["n_resamples"] == 299 and api.conditions["main"]["n_resamples"] == 299
    assert api.plan_sha256 == load_plan(api.plan).sha256 != recorded_sha
    assert api.verdict.reasons[0].startswith("EXPLORATORY")
    out = tmp_path / "cli.json"
    res = CliRunner().invoke(cli, ["analyze", str(paths[0]), "--resamples", "299", "--exploratory", "--json", str(out)])
    assert res.exit_code == 0, res.output
    d = json.loads(out.read_text())
    assert d["exploratory"] is True and d["plan_sha256"] == api.plan_sha256
    assert d["conditions"]["main"]["pvalue"] == api.conditions["main"]["pvalue"]
    # the recorded count, restated: neither exploratory nor an error
    same = analyze_dataset(paths[0], n_resamples=199, interval_resamples=99)
    assert not same.exploratory and same.plan_sha256 == recorded_sha
    # pooled runs: the pooled analysis' plan is the one used too
    many = analyze_many(paths, n_resamples=299, exploratory=True, interval_resamples=99)
    assert many.mode == "pooled" and all(r["exploratory"] for r in many.results)
    assert many.pooled.exploratory and many.pooled.plan["n_resamples"] == 299
    assert many.pooled.conditions["main"]["n_resamples"] == 299


def test_a_resample_count_without_a_recorded_plan_is_the_supplied_plan(tmp_path):
    """No plan recorded: the count makes a supplied plan (not pre-registered, not exploratory),
    as ``--resamples`` does, and the results' plan shows it."""
    from corrlab.analysis.pipeline import analyze_dataset
    from tests.synthetic import write_dataset

    path = write_dataset(tmp_path, "bare", n_trials=40, coupling=0.6, seed=2)
    res = analyze_dataset(path, n_resamples=199, interval_resamples=99)
    assert not res.exploratory and not res.preregistered
    assert res.plan["n_resamples"] == 199 and res.conditions["main"]["n_resamples"] == 199


def test_analyze_trials_shows_the_count_it_used():
    from dataclasses import replace

    from corrlab.analysis.pipeline import analyze_trials
    from corrlab.errors import PlanError

    data, ctx = chsh_trials(n=80)  # a pre-registered plan of 199 resamples
    with pytest.raises(PlanError, match="--exploratory"):
        analyze_trials(data, ctx, n_resamples=299, interval_resamples=99)
    res = analyze_trials(data, replace(ctx, exploratory=True), n_resamples=299, interval_resamples=99)
    assert res.exploratory and res.plan["n_resamples"] == 299 and res.conditions["main"]["n_resamples"] == 299
    assert res.plan_sha256 != ctx.plan_sha256
    free = analyze_trials(data, replace(ctx, preregistered=False), n_resamples=299, interval_resamples=99)
    assert not free.exploratory and free.plan["n_resamples"] == 299
    assert analyze_trials(data, ctx, n_resamples=199, interval_resamples=99).plan_sha256 == ctx.plan_sha256


def _decided(*keys, undecided=()):
    out = {k: {"decided": True, "pvalue": 0.001, "e_value": 1000.0} for k in keys}
    out.update({k: {"decided": False, "pvalue": 0.6, "e_value": 1.6} for k in undecided})
    return out


def test_the_verdict_rests_on_the_anytime_evidence_only_when_asked():
    clean = [ns("A", "main", 0.6), ns("B", "main", 0.7)]
    ctrl = [control("break_L", 1e-3)]
    # fixed-n says protocol-specific; the e-processes decided dependence only
    anytime = _decided("dependence", undecided=("controls:control:break_L", "chsh", "no_signalling:A:main",
                                                "no_signalling:B:main"))
    assert run(main(), ctrl, clean).verdict.level == "protocol-specific"
    g = run(main(), ctrl, clean, anytime=anytime)
    assert g.verdict.level == "dependence" and not g.verdict.protocol_specific
    assert g.verdict.reasons[0].startswith("the verdict rests on the ANYTIME evidence")
    assert "controls:control:break_L e = 1.6" in g.verdict.reasons[0]
    # the other way round: fixed-n p-values above alpha, the e-processes decided
    weak = run(main(p=0.2), [control("break_L", 0.3)], clean)
    assert weak.verdict.level == "none"
    strong = run(main(p=0.2), [control("break_L", 0.3)], clean,
                 anytime=_decided("dependence", "controls:control:break_L",
                                  undecided=("no_signalling:A:main", "no_signalling:B:main")))
    assert strong.verdict.level == "protocol-specific"
    # signalling detected by an e-process caps the level, whatever the fixed-n test said
    capped = run(main(p=0.2), [control("break_L", 0.3)], clean,
                 anytime=_decided("dependence", "controls:control:break_L", "no_signalling:B:main",
                                  undecided=("no_signalling:A:main",)))
    assert capped.verdict.signalling_detected and capped.verdict.level == "dependence"
    assert any(r.startswith("SIGNALLING DETECTED by the anytime evidence") for r in capped.verdict.reasons)
    # a member without an e-process keeps its fixed-n test (here the Gaussian witness)
    g = run(main(p=0.2), [], clean, nonclassicality(gaussian=gaussian(1e-4)),
            anytime=_decided(undecided=("dependence", "no_signalling:A:main", "no_signalling:B:main")))
    assert g.verdict.level == "nonclassical"
    assert "fixed-n tests kept for log_negativity" in g.verdict.reasons[0]
