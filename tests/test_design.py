"""Design verified, not assumed (issue 22, item 2): the schedule generator in the core."""

from __future__ import annotations

import hashlib
import json

import pytest
from corrlab.protocols.config import load_protocol, protocol_from_dict
from corrlab.protocols.schedule import TrialSpec, code_checksum, make_schedule

from corrlab.schedule import schedule_arrays

from .conftest import ROOT

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
