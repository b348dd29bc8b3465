"""Design verified, not assumed (issue 22, item 2): the schedule generator in the core, and the
analysis's check that a dataset's conditions, blocks and settings are its recorded seed's."""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import replace

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from corrlab.analysis.design import (
    DesignCheck,
    recorded_design,
    verify_design,
    verify_source,
)
from corrlab.analysis.pipeline import read_dataset
from corrlab.daq.runner import resume_run, run_protocol
from corrlab.instruments.benchfile import bench_from_dict, load_bench
from corrlab.protocols.config import load_protocol, protocol_from_dict
from corrlab.protocols.schedule import TrialSpec, code_checksum, make_schedule

from corrlab.dataset import Dataset, open_source
from corrlab.schedule import schedule_arrays

from .conftest import ROOT, demo_variant

# ============================================================================ the generator, bit for bit

ABBR = {"main": "m", "control:break_L": "L", "control:perturb_C": "C", "control:couple_env": "E"}

# captured from protocols/schedule.make_schedule before the generator moved to corrlab/schedule.py
DEMO_COND = (
    "mLmmECELmCmmmLmCEmLmCmmEmLECmmmELCmmmLmECmCmLEmmmELCmmCmmLEmmmLECmmLECmmmEmLCmmECLmmLmmCEm"
    "mEmLCmLECmmmmCmELmCmLmmECmmLEmLEmCmmCEmmmLCmLmEmEmCLmmCmLmmEmLmECmmCmLmEEmmmLCmmLCmEECLmmm"
    "EmmCLmmCmELmmEmmLCmLEmmCmmEmLCmmCEmLmCLEmmLCEmmmmmECmLmCELmmCEmmmLmmCEmLmLCEmmLmmmECmELmmC"
    "ECmmLmLmEmmCCLmEmmLmECmmmLECmmEmmCLmmELmmCEmLCmmmLmCEmLmEmCmmLmmECCmmEmLCLmEmmmCmmELmmLmCE"
)
DEMO_SET_A = (
    "001100100101110110011110010111011111101010000111011010100100010110000101011011000011110101"
    "001101010111001111101111011000110111000111101111110010001101001011100111110100011010100101"
    "010110010001001111001000011110001000101111000000111101110101100001111111100101010100111101"
    "101111010110011011111111111101111100011001000000011011100000101111001111100011010010011001"
)
DEMO_SET_B = (
    "001110011100011111000111001011110001001001110100010111001001101110110101001110101100010001"
    "100111011000100101101001010101011111011101101010101000011110101110010010101101011010101101"
    "010110001000000100101010110100100011110010100110110111111001001000100011110101111111001110"
    "101000000011011000011000000011111111101001100010100110111101000001010001010100100001101110"
)
# sha256 of every trial's (trial, block, condition, setting_a, setting_b, code_a bits, code_b bits)
FINGERPRINT = {
    "demo": (360, "f308327d70a306fc28bb19ca95cc47718edae2b7ca7e4a9390542222315e375d"),
    "overnight": (6000, "a453189b7b58fb1ca6a547ac5dc968500f8af37381bd56e4124f8fd7ab42c661"),
    "odd": (60, "4c025f9511a71ddcb2710d2e0b39533cf3193815084c95ae3fbc2913e08512dc"),
}


def odd_protocol():
    """Two conditions, listed out of order, 4-bit codes (break_L's codes coincide twice) and a seed above 2**32."""
    return protocol_from_dict({
        "protocol": {"name": "odd", "seed": 2**40 + 12345},
        "schedule": {"trials": 60, "block_size": 5, "conditions": {"control:break_L": 2, "main": 3}},
        "prepare": {"code_bits": 4},
    })


def protocols():
    return {"demo": load_protocol(ROOT / "protocols/demo.toml"), "overnight": load_protocol(ROOT / "protocols/overnight.toml"),
            "odd": odd_protocol()}


def fingerprint(specs: list[TrialSpec]) -> str:
    rows = [[s.trial, s.block, s.condition, s.setting_a, s.setting_b, "".join(map(str, s.code_a)), "".join(map(str, s.code_b))]
            for s in specs]
    return hashlib.sha256(json.dumps(rows, separators=(",", ":")).encode()).hexdigest()


@pytest.mark.parametrize("name", sorted(FINGERPRINT))
def test_make_schedule_is_bit_for_bit_what_it_was(name):
    p = protocols()[name]
    specs = make_schedule(p)
    n, digest = FINGERPRINT[name]
    assert len(specs) == n and fingerprint(specs) == digest
    assert all(type(v) is int for s in specs[:50] for v in (s.trial, s.block, s.setting_a, s.setting_b, *s.code_a, *s.code_b))
    # the core arrays are the same schedule
    arr = schedule_arrays(p.seed, p.schedule.conditions, p.schedule.trials, p.schedule.block_size, p.prepare.code_bits)
    assert len(arr) == n
    assert arr.condition.tolist() == [s.condition for s in specs]
    assert arr.block.tolist() == [s.block for s in specs] and arr.trial.tolist() == list(range(n))
    assert arr.setting_a.tolist() == [s.setting_a for s in specs] and arr.setting_b.tolist() == [s.setting_b for s in specs]
    assert [tuple(c) for c in arr.code_a.tolist()] == [s.code_a for s in specs]
    assert [tuple(c) for c in arr.code_b.tolist()] == [s.code_b for s in specs]
    assert arr.code_checksums("b") == [code_checksum(s.code_b) for s in specs]


def test_the_demo_schedule_trial_by_trial():
    specs = make_schedule(protocols()["demo"])
    assert "".join(ABBR[s.condition] for s in specs) == DEMO_COND
    assert "".join(str(s.setting_a) for s in specs) == DEMO_SET_A
    assert "".join(str(s.setting_b) for s in specs) == DEMO_SET_B
    assert [s.block for s in specs] == [t // 6 for t in range(360)]
    assert [code_checksum(specs[0].code_a), code_checksum(specs[1].code_a), code_checksum(specs[1].code_b)] == [
        "737e36e6", "9bb4ec26", "46c7c207"]
    assert all((s.code_a == s.code_b) == (s.condition != "control:break_L") for s in specs)


def test_break_l_codes_that_coincide_get_their_last_bit_flipped():
    specs = make_schedule(odd_protocol())
    assert specs[0] == TrialSpec(0, 0, "control:break_L", 1, 1, (1, 1, 0, 1), (1, 0, 1, 1))
    assert specs[36] == TrialSpec(36, 7, "control:break_L", 1, 0, (0, 1, 1, 1), (0, 1, 1, 0))
    assert specs[55] == TrialSpec(55, 11, "control:break_L", 0, 1, (0, 1, 0, 1), (0, 1, 0, 0))
    assert sum(s.condition == "main" for s in specs) == 36


def test_the_schedule_does_not_depend_on_code_bits_or_the_order_of_conditions():
    a = schedule_arrays(7, {"main": 3, "control:break_L": 1}, 40, 4, 16)
    b = schedule_arrays(7, {"control:break_L": 1, "main": 3}, 40, 4, 8)
    assert a.condition.tolist() == b.condition.tolist() and a.setting_a.tolist() == b.setting_a.tolist()
    assert a.code_a.shape == (40, 16) and b.code_a.shape == (40, 8)
    c = schedule_arrays(8, {"main": 3, "control:break_L": 1}, 40, 4, 16)
    assert c.condition.tolist() != a.condition.tolist() and c.setting_a.tolist() != a.setting_a.tolist()


@pytest.mark.parametrize("args, match", [
    ((1, {"main": 3}, 12, 4, 16), "add up to 3 trials per block, block_size is 4"),
    ((1, {"main": 4}, 10, 4, 16), "must be a multiple of block_size"),
    ((1, {"main": 0, "control:break_L": 4}, 8, 4, 16), "condition 'main'"),
    ((-1, {"main": 4}, 8, 4, 16), "seed"),
    ((1, {"main": 4}, 8, 4, 0), "code_bits"),
    ((1, {}, 8, 4, 16), "conditions"),
    ((1.5, {"main": 4}, 8, 4, 16), "seed"),
])
def test_the_generator_refuses_inconsistent_inputs(args, match):
    with pytest.raises(ValueError, match=match):
        schedule_arrays(*args)


# ============================================================================ verify_design on plain values


def test_verify_design_names_the_first_mismatch_and_counts_per_column():
    rec = {"seed": 7, "trials": 12, "block_size": 4, "conditions": {"main": 3, "control:break_L": 1}, "code_bits": 8}
    arr = schedule_arrays(7, rec["conditions"], 12, 4, 8)
    trial, cond = arr.trial.tolist(), arr.condition.tolist()
    sa, sb, block = arr.setting_a.tolist(), arr.setting_b.tolist(), arr.block.tolist()
    ok = verify_design(rec, trial, cond, sa, sb, block=block, code_checksum_a=arr.code_checksums("a"),
                       code_checksum_b=arr.code_checksums("b"))
    assert ok == DesignCheck("holds", 12, {c: 0 for c in ("condition", "block", "setting_a", "setting_b",
                                                          "code_checksum_a", "code_checksum_b")}, None, ok.detail)
    assert ok.detail.startswith("all 12 trials' condition, block, setting_a, setting_b, code_checksum_a")

    main_at = cond.index("main")
    other = next(i for i in range(main_at + 1, 12) if cond[i] != "main")
    bad = list(cond)
    bad[main_at], bad[other] = bad[other], bad[main_at]
    flipped = list(sb)
    flipped[9] = 1 - flipped[9]
    check = verify_design(rec, trial, bad, sa, flipped, block=block)
    assert check.outcome == "fails" and check.n_checked == 12
    assert check.mismatches == {"condition": 2, "block": 0, "setting_a": 0, "setting_b": 1}
    first = min(main_at, other)
    assert check.first_mismatch == (first, "condition", bad[first], cond[first])
    assert check.detail.startswith(f"trial {first}: condition is {bad[first]!r}, the recorded seed's schedule says "
                                   f"{cond[first]!r} (3 mismatches in 3 of 12 trials")

    # a trial put in another block
    moved = list(block)
    moved[11] = 0
    blk = verify_design(rec, trial, cond, sa, sb, block=moved)
    assert blk.outcome == "fails" and blk.first_mismatch == (11, "block", 0, 2)
    assert blk.mismatches == {"condition": 0, "block": 1, "setting_a": 0, "setting_b": 0}
    assert blk.detail.startswith("trial 11: block is 0, the recorded seed's schedule says 2 (1 mismatch in 1 of 12 trials")

    # a subset (excluded or missing trials are not compared), in any order
    sub = [10, 2, 5]
    part = verify_design(rec, sub, [cond[i] for i in sub], [sa[i] for i in sub], [sb[i] for i in sub])
    assert part.outcome == "holds" and part.n_checked == 3 and "block" not in part.mismatches
    # an id the schedule does not have
    out = verify_design(rec, [3, 12], [cond[3], "main"], [sa[3], 0], [sb[3], 0])
    assert out.outcome == "fails" and out.first_mismatch == (12, "trial", 12, None)
    assert out.detail.startswith("trial 12: not in the recorded schedule (trials 0..11)")
    # a wrong code checksum
    crc = arr.code_checksums("b")
    crc[4] = "00000000"
    code = verify_design(rec, trial, cond, sa, sb, code_checksum_b=crc)
    assert code.outcome == "fails" and code.first_mismatch == (4, "code_checksum_b", "00000000", arr.code_checksums("b")[4])
    assert code.mismatches["code_checksum_b"] == 1


@pytest.mark.parametrize("recorded, reason", [
    (None, "no protocol recorded"),
    ({}, "no protocol recorded"),
    ({"seed": 7, "trials": 12, "block_size": None, "conditions": {"main": 4}, "code_bits": 8},
     "lacks schedule.block_size"),
    ({"protocol": {"name": "x"}, "schedule": {"trials": 12, "block_size": 4, "conditions": {"main": 4}}},
     "lacks protocol.seed, prepare.code_bits"),
    ({"seed": 7, "trials": 12, "block_size": 4, "conditions": {"main": 3}, "code_bits": 8},
     "cannot be recomputed: conditions add up to 3"),
])
def test_verify_design_without_a_usable_record_is_unchecked(recorded, reason):
    check = verify_design(recorded, [0, 1], ["main", "main"], [0, 1], [1, 0])
    assert check.outcome == "unchecked" and check.n_checked == 0 and check.first_mismatch is None
    assert reason in check.detail
    assert check.entry()["outcome"] == "unchecked" and check.entry()["detail"] == check.detail


# ============================================================================ real datasets


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """A small simulated run of the demo protocol (24 trials, 4 blocks)."""
    root = tmp_path_factory.mktemp("design")
    proto = load_protocol(demo_variant(root / "p.toml", trials=24, samples=128, trials_per_part=10))
    result = run_protocol(proto, load_bench(), root, run_id="demo")
    assert result.status == "complete"
    return root / "demo"


def _copy(src, tmp_path, name="copy"):
    dst = tmp_path / name
    shutil.copytree(src, dst)
    return dst


def test_a_simulated_run_verifies(demo_run):
    source = open_source(demo_run)
    assert recorded_design(source) == {"seed": 20261123, "trials": 24, "block_size": 6, "code_bits": 16,
                                       "conditions": {"main": 3, "control:break_L": 1, "control:perturb_C": 1,
                                                      "control:couple_env": 1}}
    check = verify_source(source)
    assert check.outcome == "holds" and check.n_checked == 24 == len(source.trials())
    assert check.mismatches == {c: 0 for c in ("condition", "block", "setting_a", "setting_b",
                                               "code_checksum_a", "code_checksum_b")}
    # the manifest's protocol record and the whole manifest are accepted too
    t = source.trials()
    for rec in (source.manifest["protocol"], source.manifest):
        c = verify_design(rec, t.trial, t.condition, t.setting_a, t.setting_b, block=t.block)
        assert c.outcome == "holds" and c.n_checked == 24
    # excluded trials are not compared
    assert verify_source(source, exclude=[0, 5, 23]).n_checked == 21
    # as the pipeline reads it (conditions and settings from the parts), excluded trials left out
    data, _ = read_dataset(demo_run, exclude_trials="3-4")
    check = verify_source(open_source(demo_run), data=data)
    assert check.outcome == "holds" and check.n_checked == 22 and check.mismatches["code_checksum_a"] == 0


def test_a_tampered_trials_table_fails_naming_the_trial_and_column(demo_run, tmp_path):
    path = _copy(demo_run, tmp_path)
    df = Dataset.open(path).trials()
    cond = df["condition"].astype(str).tolist()
    i = next(k for k in range(len(cond)) if cond[k] == "main" and k > 2)
    j = next(k for k in range(i + 1, len(cond)) if cond[k] != "main")
    df["condition"] = [cond[j] if k == i else cond[i] if k == j else c for k, c in enumerate(cond)]
    df.loc[20, "setting_a"] = 1 - int(df.loc[20, "setting_a"])
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path / "trials.parquet")

    check = verify_source(open_source(path))
    assert check.outcome == "fails" and check.n_checked == 24
    assert check.mismatches == {"condition": 2, "block": 0, "setting_a": 1, "setting_b": 0,
                                "code_checksum_a": 0, "code_checksum_b": 0}
    assert check.first_mismatch == (i, "condition", cond[j], "main")
    assert check.detail == (f"trial {i}: condition is {cond[j]!r}, the recorded seed's schedule says 'main' "
                            "(3 mismatches in 3 of 24 trials: condition 2, setting_a 1)")
    # leaving the tampered trials out leaves nothing to object to
    assert verify_source(open_source(path), exclude=[i, j, 20]).outcome == "holds"


def test_the_pipelines_trial_data_is_checked_too(demo_run):
    data, _ = read_dataset(demo_run)
    sb = data.setting_b.copy()
    sb[17] = 1 - sb[17]
    check = verify_source(open_source(demo_run), data=replace(data, setting_b=sb))
    assert check.outcome == "fails" and check.first_mismatch == (17, "setting_b", int(sb[17]), 1 - int(sb[17]))
    assert check.detail.startswith(f"trial 17: setting_b is {int(sb[17])}, the recorded seed's schedule says {1 - int(sb[17])}")


def test_another_seed_in_the_manifest_fails(demo_run, tmp_path):
    path = _copy(demo_run, tmp_path)
    m = json.loads((path / "manifest.json").read_text())
    m["protocol"]["protocol"]["seed"] += 1
    (path / "manifest.json").write_text(json.dumps(m))
    check = verify_source(open_source(path))
    assert check.outcome == "fails" and check.mismatches["condition"] > 5 and check.mismatches["setting_a"] > 3


def test_a_manifest_without_the_protocol_is_unchecked(demo_run, tmp_path):
    path = _copy(demo_run, tmp_path)
    m = json.loads((path / "manifest.json").read_text())
    (path / "manifest.json").write_text(json.dumps(dict(m, protocol={})))
    source = open_source(path)
    assert recorded_design(source) is None
    check = verify_source(source)
    assert check.outcome == "unchecked" and check.n_checked == 0 and "no protocol recorded" in check.detail

    del m["protocol"]["schedule"]["block_size"]
    (path / "manifest.json").write_text(json.dumps(m))
    check = verify_source(open_source(path))
    assert check.outcome == "unchecked" and "lacks schedule.block_size" in check.detail


def test_an_imported_single_file_is_unchecked(tmp_path):
    n = 8
    pq.write_table(pa.table({"trial": np.repeat(np.arange(n), 4), "condition": ["main"] * (4 * n),
                             "x_a": np.zeros(4 * n), "x_b": np.ones(4 * n)}), tmp_path / "x.parquet")
    source = open_source(tmp_path / "x.parquet")
    assert recorded_design(source) is None
    check = verify_source(source)
    assert check.outcome == "unchecked" and "no protocol recorded" in check.detail


def test_a_resumed_run_verifies(tmp_path):
    proto = protocol_from_dict({
        "protocol": {"name": "resumed", "seed": 11},
        "schedule": {"trials": 12, "block_size": 6, "trials_per_part": 2,
                     "conditions": {"main": 3, "control:break_L": 1, "control:perturb_C": 1, "control:couple_env": 1}},
        "acquisition": {"samples": 64},
        "stabilize": {"reads": 2, "interval_s": 0.0, "max_wait_s": 0.2},
    })
    data = load_bench().to_json()
    data["faults"] = {"thermal": {"stick_temperature": {"trial": 7, "offset_k": 1.0, "reads": 100000}}}
    first = run_protocol(proto, bench_from_dict(data), tmp_path, run_id="r")
    assert first.status == "interrupted"
    part = verify_source(open_source(tmp_path / "r"))
    assert part.outcome == "holds" and 0 < part.n_checked < 12
    data["faults"] = {}
    assert resume_run(tmp_path / "r", bench_from_dict(data)).status == "complete"
    source = open_source(tmp_path / "r")
    assert source.manifest.get("resumes")
    check = verify_source(source)
    assert check.outcome == "holds" and check.n_checked == 12


def test_the_ladder_carries_the_design_check(demo_run):
    """The check enters the results' assumptions for protocol-specific and CHSH, and a failing
    one withholds them, naming the trial."""
    from corrlab.analysis.pipeline import analyze_trials

    # the Gaussian statistic: a 4-trial control's rank (copula) MI can be infinite by chance
    plan = dict(open_source(demo_run).plan, statistic="gaussian", n_resamples=99)
    data, ctx = read_dataset(demo_run, plan=plan, exploratory=True)
    assert ctx.design["demo"]["outcome"] == "holds"
    res = analyze_trials(data, ctx, interval_resamples=99)
    ps = [e for e in res.assumptions["protocol-specific"] if e["assumption"].startswith("the trials' conditions")]
    assert [e["outcome"] for e in ps] == ["holds"] and ps[0]["detail"] == "all 24 trials match the recorded schedule"

    sb = data.setting_b.copy()
    i = int(np.flatnonzero(data.condition == "main")[3])
    sb[i] = 1 - sb[i]
    tampered = replace(data, setting_b=sb)
    check = verify_source(open_source(demo_run), data=tampered)
    res = analyze_trials(tampered, replace(ctx, design={"demo": check.to_json()}), interval_resamples=99)
    ps = [e for e in res.assumptions["protocol-specific"] if e["assumption"].startswith("the trials' conditions")]
    assert ps[0]["outcome"] == "fails" and ps[0]["detail"].startswith(f"trial {int(data.trial[i])}: setting_b is")
    assert res.verdict.level not in ("protocol-specific", "nonclassical")
    assert any(r.startswith("ASSUMPTION FAILS for protocol-specific") and f"trial {int(data.trial[i])}" in r
               for r in res.verdict.reasons)
