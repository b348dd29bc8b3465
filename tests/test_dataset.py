"""The dataset v1 contract: columns, types, order, manifest fields, durability, clear errors."""

from __future__ import annotations

import json
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from corrlab.errors import DatasetError, PlanError
from corrlab.dataset import Dataset, DatasetWriter, ParquetSource, open_source

MANIFEST_FIELDS = {
    "format", "format_version", "run_id", "status", "created_utc", "finished_utc", "protocol", "bench",
    "protocol_sha256", "plan_sha256", "instruments", "software", "rng_seed", "parts",
}


def make_writer(root, run_id="run1", **kw):
    return DatasetWriter.create(
        root, run_id, protocol={"analysis": {"alpha": 0.05}}, bench={"name": "b"}, protocol_sha256="p" * 64,
        plan_sha256="a" * 64, rng_seed=42, instruments={"readout_a": "SR830"}, **kw)


def record(trial, condition="main", **extra):
    return {"trial": trial, "condition": condition, "block": trial // 3, "setting_a": trial % 2,
            "setting_b": (trial // 2) % 2, "f": condition == "main", "start_utc": "2026-11-23T10:00:00Z",
            "temperature_k": 4.0 + trial / 100, **extra}


def samples(trial, n=50, extra=()):
    rng = np.random.default_rng(trial)
    out = {"t": np.arange(n) / 1000.0, "x_a": rng.standard_normal(n), "x_b": rng.standard_normal(n)}
    for c in extra:
        out[c] = rng.standard_normal(n)
    return out


def write_dataset(root, n_trials=7, per_part=3, status="complete", extra=()):
    w = make_writer(root, extra_columns=extra)
    data = {}
    for t in range(n_trials):
        cond = "main" if t % 3 else "control:break_L"
        s = samples(t, 40 + t, extra)  # unequal trial lengths on purpose
        data[t] = s
        w.add_trial(record(t, cond), s)
        if w.pending_trials >= per_part:
            w.commit()
    w.close(status)
    return root / "run1", data


def test_parts_follow_the_contract_exactly(tmp_path):
    path, data = write_dataset(tmp_path, extra=("y_a", "y_b"))
    ds = Dataset.open(path)
    assert ds.verify().ok
    table = pq.read_table(path / ds.parts[0]["file"])
    assert table.column_names == ["trial", "condition", "setting_a", "setting_b", "f", "t", "x_a", "x_b", "y_a", "y_b"]
    types = {f.name: f.type for f in table.schema}
    assert types["trial"] == pa.int64()
    assert pa.types.is_dictionary(types["condition"]) and types["condition"].value_type == pa.string()
    assert types["setting_a"] == pa.int8() and types["setting_b"] == pa.int8()
    assert types["f"] == pa.bool_()
    assert all(types[c] == pa.float64() for c in ("t", "x_a", "x_b", "y_a", "y_b"))
    # one row group per trial, so one trial reads alone
    pf = pq.ParquetFile(path / ds.parts[0]["file"])
    assert pf.num_row_groups == ds.parts[0]["trials"] == 3
    # every sample round-trips, whole trials only, trial-level columns repeated per sample
    full = ds.read().to_pandas()
    for t, s in data.items():
        rows = full[full.trial == t]
        np.testing.assert_array_equal(rows.x_a.to_numpy(), s["x_a"])
        np.testing.assert_array_equal(rows.y_b.to_numpy(), s["y_b"])
        assert set(rows.condition.astype(str)) == {"main" if t % 3 else "control:break_L"}
    one = ds.read_trial(4).to_pandas()
    np.testing.assert_array_equal(one.x_b.to_numpy(), data[4]["x_b"])


def test_manifest_fields_and_parts_entries(tmp_path):
    path, _ = write_dataset(tmp_path)
    m = json.loads((path / "manifest.json").read_text())
    assert MANIFEST_FIELDS <= set(m)
    assert m["format"] == "corrlab-dataset" and m["format_version"] == 1 and m["status"] == "complete"
    assert m["finished_utc"] and m["created_utc"].endswith("Z")
    assert [p["file"] for p in m["parts"]] == ["parts/part-000000.parquet", "parts/part-000001.parquet",
                                                "parts/part-000002.parquet"]
    assert [(p["first_trial"], p["last_trial"]) for p in m["parts"]] == [(0, 2), (3, 5), (6, 6)]
    assert sum(p["rows"] for p in m["parts"]) == sum(40 + t for t in range(7))
    import hashlib

    for p in m["parts"]:
        assert hashlib.sha256((path / p["file"]).read_bytes()).hexdigest() == p["sha256"]
    trials = Dataset.open(path).trials()
    assert list(trials.trial) == list(range(7))
    assert {"condition", "block", "setting_a", "setting_b", "f", "start_utc", "temperature_k"} <= set(trials.columns)
    assert not list(path.glob("**/*.tmp"))
    events = [json.loads(x) for x in (path / "events.jsonl").read_text().splitlines()]
    assert events == []  # this writer journalled nothing; the runner's tests check the journal


def test_a_corrupted_part_is_named(tmp_path):
    path, _ = write_dataset(tmp_path)
    part = path / "parts/part-000001.parquet"
    data = bytearray(part.read_bytes())
    data[100] ^= 0xFF
    part.write_bytes(bytes(data))
    report = Dataset.open(path).verify()
    assert not report.ok
    assert report.problems[0].startswith("parts/part-000001.parquet fails its checksum")
    with pytest.raises(DatasetError, match="part-000001.parquet fails its checksum"):
        Dataset.open(path).require_valid()


def test_a_missing_part_and_a_broken_manifest_are_named(tmp_path):
    path, _ = write_dataset(tmp_path)
    (path / "parts/part-000002.parquet").unlink()
    assert Dataset.open(path).verify().problems == ["parts/part-000002.parquet is missing"]
    (path / "manifest.json").write_text('{"format": "corrlab-dataset", ')
    with pytest.raises(DatasetError, match=r"manifest.json is not valid JSON \(line 1"):
        Dataset.open(path)
    (path / "manifest.json").write_text(json.dumps({"format": "corrlab-dataset", "format_version": 2}))
    with pytest.raises(DatasetError, match="format_version 2 is not supported"):
        Dataset.open(path)
    with pytest.raises(DatasetError, match="manifest.json is missing"):
        Dataset.open(tmp_path)


def test_nothing_is_written_over_and_run_ids_cannot_escape(tmp_path):
    path, _ = write_dataset(tmp_path)
    before = (path / "manifest.json").read_bytes()
    with pytest.raises(DatasetError, match="already exists"):
        make_writer(tmp_path)
    assert (path / "manifest.json").read_bytes() == before
    for bad in ("../evil", "..", "a/b", "/abs", ".hidden", "", "x" * 200):
        with pytest.raises(PlanError, match="run id"):
            make_writer(tmp_path, run_id=bad)
    assert not (tmp_path.parent / "evil").exists()


def test_a_trial_is_written_once(tmp_path):
    w = make_writer(tmp_path)
    w.add_trial(record(0), samples(0))
    with pytest.raises(DatasetError, match="trial 0 is already"):
        w.add_trial(record(0), samples(0))
    w.commit()
    with pytest.raises(DatasetError, match="trial 0 is already"):
        w.add_trial(record(0), samples(0))
    with pytest.raises(PlanError, match="samples lack x_b"):
        w.add_trial(record(1), {"t": np.zeros(3), "x_a": np.zeros(3)})
    w.close("complete")


def test_reopen_drops_uncommitted_leftovers_and_continues(tmp_path):
    w = make_writer(tmp_path)
    for t in range(4):
        w.add_trial(record(t), samples(t))
        if t == 1:
            w.commit()
    # simulate a crash after the third part was written but before its manifest: a stray
    # temp file and a part the manifest does not list; the journal has a half line
    path = tmp_path / "run1"
    (path / "parts/.part-000001.parquet.tmp").write_bytes(b"partial")
    (path / "parts/part-000001.parquet").write_bytes(b"never committed")
    w._journal.write('{"step": "measure", "tri')
    w._journal.flush()
    assert json.loads((path / "manifest.json").read_text())["status"] == "running"
    w2 = DatasetWriter.reopen(path)
    assert w2.committed_trials == [0, 1]
    assert sorted(p.name for p in (path / "parts").iterdir()) == ["part-000000.parquet"]
    w2.add_trial(record(2), samples(2))
    w2.close("complete")
    ds = Dataset.open(path)
    assert ds.verify().ok and list(ds.trials().trial) == [0, 1, 2]
    assert any(e.get("outcome") == "corrupt" for e in ds.events())
    with pytest.raises(DatasetError, match="complete; nothing to resume"):
        DatasetWriter.reopen(path)


def test_single_parquet_file_defaults_missing_columns(tmp_path):
    f = tmp_path / "flat.parquet"
    trial = np.repeat(np.arange(4), 5)
    pq.write_table(pa.table({"trial": trial, "condition": ["main"] * 20, "x_a": np.arange(20.0),
                             "x_b": -np.arange(20.0)}), f)
    src = open_source(f, vacuum_variance=(0.5, 0.25))
    assert isinstance(src, ParquetSource)
    t = src.read().to_pandas()
    assert list(t.columns[:8]) == ["trial", "condition", "setting_a", "setting_b", "f", "t", "x_a", "x_b"]
    assert (t.setting_a == 0).all() and t.f.all()
    np.testing.assert_array_equal(t.t.to_numpy(), np.tile(np.arange(5.0), 4))
    assert src.calibration == {"vacuum_variance": {"a": 0.5, "b": 0.25}}
    pq.write_table(pa.table({"trial": trial, "x_a": np.zeros(20)}), tmp_path / "bad.parquet")
    with pytest.raises(DatasetError, match="lacks column\\(s\\) condition, x_b"):
        open_source(tmp_path / "bad.parquet")
    (tmp_path / "junk.parquet").write_bytes(b"not parquet")
    with pytest.raises(DatasetError, match="cannot be read as Parquet"):
        open_source(tmp_path / "junk.parquet")


def test_files_are_fsynced_through_temporary_names(tmp_path, monkeypatch):
    calls = []
    real = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: (calls.append((str(a), str(b))), real(a, b))[1])
    write_dataset(tmp_path, n_trials=2, per_part=5)
    targets = [os.path.basename(b) for _, b in calls]
    assert targets[:1] == ["manifest.json"]
    assert "part-000000.parquet" in targets and "trials.parquet" in targets
    assert all(os.path.basename(a).startswith(".") and a.endswith(".tmp") for a, _ in calls)
    # the manifest is rewritten after the part and the trials table: it is the commit record
    assert targets.index("manifest.json", 1) > targets.index("part-000000.parquet")


def _long_form(n_trials=9, lengths=None, seed=3):
    """Samples in long form, written by hand (independent of corrlab): unequal trial lengths."""
    rng = np.random.default_rng(seed)
    lengths = lengths or [37 + 5 * (i % 4) for i in range(n_trials)]
    trial = np.repeat(np.arange(n_trials), lengths)
    n = len(trial)
    return {"trial": trial, "condition": np.where(trial % 3 == 0, "control:break_L", "main"),
            "setting_a": (trial % 2).astype(np.int8), "x_a": rng.standard_normal(n), "x_b": rng.standard_normal(n)}, lengths


@pytest.mark.parametrize("row_group_size", [7, 40, 100, 10_000])
def test_a_single_file_whose_row_groups_split_trials_is_read_by_trial(tmp_path, row_group_size):
    cols, lengths = _long_form()
    pq.write_table(pa.table(cols), tmp_path / "rg.parquet", row_group_size=row_group_size)
    src = open_source(tmp_path / "rg.parquet")
    assert src._file.num_row_groups == -(-len(cols["trial"]) // row_group_size)
    parts = list(src.iter_parts())
    assert sum(p.num_rows for p in parts) == len(cols["trial"])
    seen = []
    for p in parts:  # each part holds whole trials: no trial in two parts
        ids = np.unique(p["trial"].to_numpy())
        assert not set(ids) & set(seen)
        seen += ids.tolist()
    assert seen == list(range(9))
    if row_group_size < 37:
        assert len(parts) < src._file.num_row_groups  # a trial longer than a row group: carried over
    whole = src.read().to_pandas()
    np.testing.assert_array_equal(whole.x_a.to_numpy(), cols["x_a"])
    # t (absent from the file) counts samples within each trial, across row groups
    np.testing.assert_array_equal(whole.t.to_numpy(), np.concatenate([np.arange(n, dtype=float) for n in lengths]))
    assert list(src.trials().trial) == list(range(9))


def test_a_single_file_with_a_trial_in_two_places_is_put_together_unless_it_is_a_repeat(tmp_path):
    cols, lengths = _long_form(n_trials=4, lengths=[10, 12, 8, 6])
    cols["t"] = np.concatenate([np.arange(n) / 100.0 for n in lengths])
    table = pa.table(cols)
    # trial 1's second half after trial 2 (a sloppy export), in time order within each piece
    rows = np.r_[0:10, 10:16, 22:30, 16:22, 30:36]
    pq.write_table(table.take(rows), tmp_path / "apart.parquet", row_group_size=5)
    got = open_source(tmp_path / "apart.parquet").read().to_pandas()
    np.testing.assert_array_equal(got.trial.to_numpy(), cols["trial"])
    np.testing.assert_array_equal(got.x_b.to_numpy(), cols["x_b"])
    np.testing.assert_array_equal(got.t.to_numpy(), cols["t"])
    # the second piece first in the file: put back in t order
    pq.write_table(table.take(np.r_[0:10, 16:22, 22:30, 10:16, 30:36]), tmp_path / "late.parquet")
    np.testing.assert_array_equal(open_source(tmp_path / "late.parquet").read().to_pandas().x_a.to_numpy(),
                                  table.take(np.r_[0:10, 10:22, 22:30, 30:36])["x_a"].to_numpy())
    # a repeat: trial 2 twice (same times; apart or in a row), or twice identical without t, or another condition
    pq.write_table(table.take(np.r_[0:30, 30:36, 22:30]), tmp_path / "rep.parquet")
    with pytest.raises(DatasetError, match=r"rep.parquet: trial 2 is in 2 places \(rows 22-29, rows 36-43\) with the "
                                           r"sample time t = 0 more than once: its samples are repeated"):
        open_source(tmp_path / "rep.parquet").read()
    pq.write_table(table.take(np.r_[0:30, 22:30, 30:36]), tmp_path / "again.parquet", row_group_size=25)
    with pytest.raises(DatasetError, match=r"again.parquet: trial 2 has the sample time t = 0 more than once "
                                           r"\(rows 22-37\): its samples are repeated"):
        open_source(tmp_path / "again.parquet").read()
    pq.write_table(table.drop_columns(["t"]).take(np.r_[0:30, 30:36, 22:30]), tmp_path / "rep2.parquet")
    with pytest.raises(DatasetError, match=r"trial 2 is in 2 places .*the pieces from row 22 and from row 36 are "
                                           r"identical: its samples are repeated"):
        list(open_source(tmp_path / "rep2.parquet").iter_parts())
    other = table.take(np.r_[0:36, 0:10]).to_pydict()
    other["condition"][36:] = ["main"] * 10  # trial 0 again, as a main trial
    pq.write_table(pa.table(other), tmp_path / "two.parquet")
    with pytest.raises(DatasetError, match=r"trial 0 is in 2 places \(rows 0-9, rows 36-45\) with different condition "
                                           r"\(control:break_L, main\): two trials share its id"):
        open_source(tmp_path / "two.parquet").read()


def test_a_null_trial_id_is_named_with_its_row(tmp_path):
    pq.write_table(pa.table({"trial": pa.array([0, 0, None, 1], pa.int64()), "condition": ["main"] * 4,
                             "x_a": np.zeros(4), "x_b": np.zeros(4)}), tmp_path / "n.parquet")
    with pytest.raises(DatasetError, match=r"n.parquet: trial is null at row 2"):
        open_source(tmp_path / "n.parquet").read()


def test_trial_ids_are_parsed_and_written_as_people_write_them():
    from corrlab.dataset.trial_ids import format_trial_ids, missing_ids, parse_trial_ids

    assert parse_trial_ids("3,7-9") == [3, 7, 8, 9]
    assert parse_trial_ids(" 9 , 3, 3-4 ") == [3, 4, 9]
    assert parse_trial_ids([12, 7, 7]) == [7, 12] and parse_trial_ids(5) == [5]
    assert format_trial_ids([9, 3, 7, 8, 4]) == "3,4,7-9"
    assert parse_trial_ids(format_trial_ids([0, 1, 2, 5, 6, 10])) == [0, 1, 2, 5, 6, 10]
    assert missing_ids([0, 1, 4, 5, 9]) == [(2, 3), (6, 8)] and missing_ids([2, 3]) == []
    for bad, what in (("3,x", "'x' is not a trial id"), ("9-7", "runs backwards"), ("", "no trial ids"),
                      ("1,,2", "'' is not a trial id"), ([1.5], "1.5 is not a trial id"), (True, "expected")):
        with pytest.raises(PlanError, match=what):
            parse_trial_ids(bad)
