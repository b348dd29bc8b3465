"""Bench files: data, validated, one-line errors; simulated instruments only on 127.0.0.1."""

from __future__ import annotations

import subprocess
import sys

import pytest

from corrlab.errors import PlanError
from corrlab.instruments.benchfile import DRIVERS, ROLES, bench_from_dict, load_bench, resource_host


def roles(**over):
    base = {
        "readout_a": {"driver": "SR830"}, "readout_b": {"driver": "SR830"}, "drive": {"driver": "Agilent33500"},
        "thermal": {"driver": "LakeShore336"}, "stage": {"driver": "ESP300"}, "isolation": {"driver": "Keithley2750"},
        "digitizer": {"driver": "FastDigitizer"},
    }
    base.update(over)
    return base


def test_embedded_bench_is_simulated_common_cause_and_complete():
    b = load_bench()
    assert b.simulated and b.world.kind == "common_cause"
    assert set(b.roles) == set(ROLES)
    assert b.visa_library == "@py"


@pytest.mark.parametrize(
    "data, needle",
    [
        ({"simulated": True, "roles": roles(spectrometer={"driver": "SR830"})}, "unknown role 'spectrometer'"),
        ({"simulated": True, "roles": roles(drive={"driver": "HP33120A"})}, "unknown driver 'HP33120A'"),
        ({"simulated": True, "roles": roles(drive={"driver": "SR830"})}, "driver SR830 cannot play drive"),
        ({"simulated": True, "roles": {"readout_a": {"driver": "SR830"}}}, "lacks role(s) readout_b"),
        ({"simulated": False, "roles": roles()}, "resource is required on a real bench"),
        ({"simulated": True, "roles": roles(readout_a={"driver": "SR830", "resource": "TCPIP0::10.0.0.5::5025::SOCKET"})},
         "bind to 127.0.0.1 only; got host '10.0.0.5'"),
        ({"simulated": True, "roles": roles(readout_a={"driver": "SR830", "resource": "TCPIP0::0.0.0.0::5025::SOCKET"})},
         "127.0.0.1 only"),
        ({"simulated": True, "visa_library": "/usr/lib/libvisa.so", "roles": roles()}, "visa_library must be"),
        ({"simulated": True, "roles": roles(), "colour": "red"}, "colour: unknown field"),
        ({"simulated": True, "roles": roles(), "faults": {"readout_c": {}}}, "faults.readout_c: unknown role"),
        ({"simulated": True, "roles": roles(), "world": {"seed": -1}}, "world.seed"),
        ({"simulated": True, "roles": roles(), "world": {"seed": 2**63}}, "world.seed"),
    ],
)
def test_bad_bench_files_are_refused_with_the_field_named(data, needle):
    with pytest.raises(PlanError) as err:
        bench_from_dict(data)
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_faults_only_on_a_simulated_bench():
    real = {k: {**v, "resource": f"GPIB0::{i}::INSTR"} for i, (k, v) in enumerate(roles().items(), 1)}
    assert not bench_from_dict({"roles": real}).simulated
    with pytest.raises(PlanError, match="faults can only be injected on a simulated bench"):
        bench_from_dict({"roles": real, "faults": {"thermal": {"drop_after": 3}}})


def test_the_bench_file_checks_faults_without_importing_the_simulator():
    code = (
        "import sys\n"
        "from corrlab.errors import PlanError\n"
        "from corrlab.instruments.benchfile import load_bench\n"
        "bench = load_bench()\n"
        "assert bench.simulated\n"
        "from corrlab.instruments.benchfile import bench_from_dict\n"
        "data = {'simulated': True, 'roles': bench.to_json()['roles'], 'faults': {'thermal': {'delay_s': -1}}}\n"
        "try:\n"
        "    bench_from_dict(data)\n"
        "except PlanError as exc:\n"
        "    assert 'faults.thermal.delay_s must be a number of seconds' in str(exc), exc\n"
        "else:\n"
        "    raise AssertionError('a bad fault option passed')\n"
        "sim = sorted(m for m in sys.modules if m.startswith('corrlab.instruments.sim'))\n"
        "assert not sim, sim\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_driver_names_map_to_fixed_classes_not_import_paths():
    with pytest.raises(PlanError, match="unknown driver"):
        bench_from_dict({"simulated": True, "roles": roles(drive={"driver": "os:system"})})
    for name, spec in DRIVERS.items():
        cls = spec.load()
        assert cls.__name__ in spec.target


def test_malformed_bench_toml(tmp_path):
    f = tmp_path / "b.toml"
    f.write_text('simulated = true\n[roles.readout_a\n')
    with pytest.raises(PlanError, match="b.toml is not valid TOML"):
        load_bench(f)


def test_resource_host_parsing():
    assert resource_host("TCPIP0::127.0.0.1::5025::SOCKET") == "127.0.0.1"
    assert resource_host("tcpip::localhost::1::socket") == "localhost"
    assert resource_host("GPIB0::8::INSTR") is None


def test_the_reconnect_section_takes_an_outage_tolerance_in_minutes_by_default():
    b = bench_from_dict({"simulated": True, "roles": roles()})
    assert b.reconnect.outage_tolerance_s == 600.0 and b.reconnect.max_backoff_s == 30.0
    assert load_bench().reconnect.outage_tolerance_s == 600.0
    b = bench_from_dict({"simulated": True, "roles": roles(), "reconnect": {"outage_tolerance_s": 0, "max_backoff_s": 2}})
    assert b.reconnect.outage_tolerance_s == 0.0 and b.reconnect.max_backoff_s == 2.0
    for bad, needle in (({"outage_tolerance_s": -1}, "reconnect.outage_tolerance_s"),
                        ({"max_backoff_s": 0}, "reconnect.max_backoff_s"),
                        ({"outage_tolerance": 60}, "reconnect.outage_tolerance: unknown field")):
        with pytest.raises(PlanError, match=needle):
            bench_from_dict({"simulated": True, "roles": roles(), "reconnect": bad})
