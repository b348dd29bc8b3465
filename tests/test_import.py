"""corrlab import: data recorded elsewhere (CSV, TSV, pymeasure, HDF5, npz) into a v1 dataset.

Sources are written here by independent means (pandas, csv text, pymeasure's own Results
writer, h5py, numpy) and read back through the dataset reader; hashes are hashlib's.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from corrlab.errors import DatasetError, PlanError
from corrlab.daq.cli import cli
from corrlab.dataset import Dataset
from corrlab.daq.importer import import_dataset

CONDITIONS = ("main", "control:break_L", "control:perturb_C", "control:couple_env")


def samples(n_trials=12, n=20, *, rho=0.0, seed=0, lengths=None) -> pd.DataFrame:
    """Long-form samples with source-style names: per-trial common cause of strength rho."""
    rng = np.random.default_rng(seed)
    lengths = np.full(n_trials, n) if lengths is None else np.asarray(lengths)
    z = rng.standard_normal(n_trials)
    rows = int(lengths.sum())
    shot = np.repeat(np.arange(n_trials) + 100, lengths)
    zz = np.repeat(z, lengths)
    return pd.DataFrame({
        "shot": shot,
        "cond": np.repeat([CONDITIONS[i % 4] if i % 3 == 2 else "main" for i in range(n_trials)], lengths),
        "sa": np.repeat(np.arange(n_trials) % 2, lengths),
        "sb": np.repeat((np.arange(n_trials) // 2) % 2, lengths),
        "XA": np.sqrt(rho) * zz + np.sqrt(1 - rho) * rng.standard_normal(rows),
        "XB": np.sqrt(rho) * zz + np.sqrt(1 - rho) * rng.standard_normal(rows),
    })


MAP = "trial=shot,condition=cond,setting_a=sa,setting_b=sb,x_a=XA,x_b=XB"


def run_cli(*args):
    return CliRunner().invoke(cli, ["import", *map(str, args)])


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_back(path: Path) -> pd.DataFrame:
    ds = Dataset.open(path)
    assert ds.status == "complete" and ds.verify().ok
    df = ds.read().to_pandas()
    df["condition"] = df["condition"].astype(str)
    return df


def assert_same(df: pd.DataFrame, src: pd.DataFrame, *, t=None):
    """The dataset holds the source's values, row for row, with the documented defaults."""
    assert len(df) == len(src)
    np.testing.assert_array_equal(df["trial"].to_numpy(), src["shot"].to_numpy())
    assert df["condition"].tolist() == src["cond"].tolist()
    np.testing.assert_array_equal(df["setting_a"].to_numpy(), src["sa"].to_numpy())
    np.testing.assert_array_equal(df["setting_b"].to_numpy(), src["sb"].to_numpy())
    np.testing.assert_array_equal(df["x_a"].to_numpy(), src["XA"].to_numpy())
    np.testing.assert_array_equal(df["x_b"].to_numpy(), src["XB"].to_numpy())
    assert df["f"].all()
    if t is None:  # t defaults to the sample index within the trial
        t = src.groupby("shot", sort=False).cumcount().to_numpy(dtype=float)
    np.testing.assert_array_equal(df["t"].to_numpy(), t)


# ============================================================================ formats


def test_csv_round_trip_through_the_cli_with_the_source_hash(tmp_path):
    src = samples()
    csv = tmp_path / "shots.csv"
    src.to_csv(csv, index=False)
    res = run_cli(csv, "--to", tmp_path / "data", "--map", MAP)
    assert res.exit_code == 0, res.output
    path = tmp_path / "data" / "shots"
    assert str(path) in res.output and "240 rows, 12 trial(s)" in res.output
    assert_same(read_back(path), src)
    m = Dataset.open(path).manifest
    assert m["import"]["source"] == "shots.csv" and m["import"]["format"] == "csv"
    assert m["import"]["source_sha256"] == sha256(csv)
    assert m["import"]["mapping"] == {"trial": "shot", "condition": "cond", "setting_a": "sa", "setting_b": "sb",
                                      "x_a": "XA", "x_b": "XB"}
    assert set(m["import"]["defaults"]) == {"f", "t"}
    assert m["protocol"] == {} and m["rng_seed"] is None and m["status"] == "complete"
    trials = Dataset.open(path).trials()
    assert trials["trial"].tolist() == sorted(set(src["shot"]))
    verify = CliRunner().invoke(cli, ["verify", str(path)])
    assert verify.exit_code == 0 and verify.output.startswith("ok: 1 part(s), 240 rows, 12 trials")
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["shots"]  # no staging folder left


def test_tsv_with_a_mapping_file_carries_t_f_and_the_quadratures(tmp_path):
    src = samples(n_trials=6, n=5, seed=1)
    src["time"] = np.tile(np.arange(5) * 1e-3, 6) + 0.5
    src["ok"] = np.repeat(["true", "false", "True", "1", "0", "FALSE"], 5)
    src["YA"], src["YB"] = src["XA"] * 2, -src["XB"]
    tsv = tmp_path / "run 7.tab"
    src.to_csv(tsv, sep="\t", index=False)
    mapfile = tmp_path / "map.toml"
    mapfile.write_text('[map]\ntrial = "shot"\ncondition = "cond"\nsetting_a = "sa"\nsetting_b = "sb"\n'
                       'x_a = "XA"\nx_b = "XB"\nt = "time"\nf = "ok"\ny_a = "YA"\ny_b = "XA"\n')
    res = run_cli(tsv, "--to", tmp_path, "--map-file", mapfile, "--map", "y_b=YB", "--vacuum-variance", "0.25,0.5")
    assert res.exit_code == 0, res.output
    path = tmp_path / "run_7"  # the run id comes from the file name, made safe
    df = read_back(path)
    np.testing.assert_array_equal(df["x_a"], src["XA"])
    np.testing.assert_array_equal(df["t"], src["time"])
    np.testing.assert_array_equal(df["y_a"], src["YA"])
    np.testing.assert_array_equal(df["y_b"], src["YB"])  # --map wins over the file
    assert df.groupby("trial")["f"].first().tolist() == [True, False, True, True, False, False]
    m = Dataset.open(path).manifest
    assert m["extra_columns"] == ["y_a", "y_b"] and m["import"]["format"] == "tsv"
    assert m["calibration"] == {"vacuum_variance": {"a": 0.25, "b": 0.5}}
    assert m["import"]["source_sha256"] == sha256(tsv) and m["import"]["defaults"] == {}


def test_pymeasure_results_file_keeps_its_header(tmp_path):
    pytest.importorskip("pymeasure")
    from pymeasure.experiment import FloatParameter, IntegerParameter, Metadata, Procedure, Results

    class Ringdown(Procedure):
        shots = IntegerParameter("Shots", default=4)
        drive = FloatParameter("Drive amplitude", units="V", default=0.5)
        bench = Metadata("Bench", default="lab 2 µ")
        DATA_COLUMNS = ["Shot", "Condition", "Time (s)", "X A (V)", "X B (V)"]

        def execute(self):  # pragma: no cover - the file is written below
            pass

    src = samples(n_trials=4, n=6, seed=2)
    path = tmp_path / "ringdown.csv"
    procedure = Ringdown(shots=4)
    results = Results(procedure, str(path))  # writes the commented header and the labels
    procedure.evaluate_metadata()
    results.store_metadata()
    times = np.tile(np.arange(6) * 0.01, 4)
    with open(path, "a", encoding="utf-8") as fh:
        for (_, row), t in zip(src.iterrows(), times):
            fh.write(results.format({"Shot": int(row.shot), "Condition": row.cond, "Time (s)": float(t),
                                     "X A (V)": float(row.XA), "X B (V)": float(row.XB)}) + "\n")
    assert path.read_text().startswith("#Procedure:")
    out = import_dataset(path, tmp_path / "data", mapping={"trial": "Shot", "t": "Time (s)"})
    df = read_back(out)
    np.testing.assert_array_equal(df["trial"], src["shot"])
    assert df["condition"].tolist() == src["cond"].tolist()
    np.testing.assert_array_equal(df["x_a"], src["XA"])
    np.testing.assert_array_equal(df["x_b"], src["XB"])
    np.testing.assert_array_equal(df["t"], times)
    info = Dataset.open(out).manifest["import"]
    assert info["format"] == "pymeasure" and info["source_sha256"] == sha256(path)
    assert info["mapping"]["x_a"] == "X A (V)" and info["mapping"]["condition"] == "Condition"
    assert info["header"]["procedure"].endswith("Ringdown")
    assert info["header"]["parameters"] == {"Drive amplitude": "0.5 V", "Shots": "4"}
    assert info["header"]["metadata"] == {"Bench": "lab 2 µ"}
    assert info["units"] == {"t": "s", "x_a": "V", "x_b": "V"}


def test_hdf5_columns_in_a_group(tmp_path):
    h5py = pytest.importorskip("h5py")
    src = samples(n_trials=8, n=7, seed=3)
    path = tmp_path / "bench.h5"
    with h5py.File(path, "w") as fh:
        fh.attrs["lab"] = "elsewhere"
        g = fh.create_group("run1")
        g.attrs["temperature_k"] = 4.2
        g["shot"] = src["shot"].to_numpy()
        g.create_dataset("cond", data=src["cond"].to_numpy().astype(object), dtype=h5py.string_dtype())
        g["XA"] = src["XA"].to_numpy()
        g["XB"] = src["XB"].to_numpy()
        g["sa"] = src["sa"].to_numpy().astype(np.int8)
        g["sb"] = src["sb"].to_numpy().astype(np.float32)
    res = run_cli(path, "--to", tmp_path / "data", "--group", "run1", "--map", MAP)
    assert res.exit_code == 0, res.output
    assert_same(read_back(tmp_path / "data" / "bench"), src)
    info = Dataset.open(tmp_path / "data" / "bench").manifest["import"]
    assert info["format"] == "hdf5" and info["group"] == "/run1" and info["attributes"] == {"temperature_k": 4.2}
    assert info["source_sha256"] == sha256(path)
    res = run_cli(path, "--to", tmp_path / "data", "--run-id", "again", "--map", MAP)  # root has no columns
    assert res.exit_code == 2 and "group '/' holds no datasets" in res.output


def test_npz_arrays_by_name_in_parts_of_whole_trials(tmp_path):
    lengths = [5, 17, 3, 40, 1, 9, 23, 2, 11, 6]  # trials cross every chunk boundary
    src = samples(n_trials=len(lengths), lengths=lengths, seed=4)
    path = tmp_path / "shots.npz"
    np.savez(path, shot=src["shot"].to_numpy(), cond=src["cond"].to_numpy().astype("U20"),
             sa=src["sa"].to_numpy(), sb=src["sb"].to_numpy(), XA=src["XA"].to_numpy(), XB=src["XB"].to_numpy())
    seen = []
    out = import_dataset(path, tmp_path, mapping=dict(kv.split("=") for kv in MAP.split(",")), run_id="npz",
                         chunk_rows=7, part_rows=30, progress=seen.append)
    assert_same(read_back(out), src)
    ds = Dataset.open(out)
    # a part is committed once it holds >= 30 rows: 5+17+3+40, 1+9+23, then the rest
    assert [p["rows"] for p in ds.parts] == [65, 33, 19]
    for table in ds.iter_parts(["trial"]):  # each part holds whole trials
        trials = table["trial"].to_numpy()
        for trial in np.unique(trials):
            assert (trials == trial).sum() == lengths[trial - 100]
    assert seen and seen[-1] == sum(lengths) and seen == sorted(seen)
    assert ds.manifest["import"]["source_sha256"] == sha256(path)


def test_unmapped_columns_default_to_same_named_ones_and_format_override(tmp_path):
    src = samples(n_trials=3, n=4)
    flat = src.rename(columns={"shot": "trial", "XA": "x_a", "XB": "x_b"})[["trial", "x_a", "x_b"]]
    path = tmp_path / "flat.txt"
    flat.to_csv(path, index=False)
    res = run_cli(path, "--to", tmp_path)
    assert res.exit_code == 2 and "cannot tell the format of flat.txt" in res.output and "--format" in res.output
    res = run_cli(path, "--to", tmp_path, "--format", "csv")
    assert res.exit_code == 0, res.output
    df = read_back(tmp_path / "flat")
    assert (df["condition"] == "main").all() and (df["setting_a"] == 0).all() and (df["setting_b"] == 0).all()
    np.testing.assert_array_equal(df["x_b"], flat["x_b"])
    res = run_cli(path, "--to", tmp_path, "--format", "csv")
    assert res.exit_code == 2 and "already exists" in res.output


# ============================================================================ analysis


@pytest.mark.parametrize(("rho", "levels"), [(0.0, {"none"}), (0.8, {"dependence", "protocol-specific"})])
def test_an_imported_dataset_is_graded_by_the_default_plan(tmp_path, rho, levels):
    from corrlab.analysis.pipeline import analyze_dataset

    src = samples(n_trials=40, n=10, rho=rho, seed=11)
    src["cond"] = "main"
    path = tmp_path / "x.csv"
    src.to_csv(path, index=False)
    out = import_dataset(path, tmp_path, mapping={"trial": "shot", "condition": "cond", "x_a": "XA", "x_b": "XB"})
    res = analyze_dataset(out, n_resamples=199)
    assert res.verdict.level in levels
    assert res.verdict.dependence == (rho > 0) and not res.preregistered
    assert res.to_dict()["dataset"]["run_id"] == "x"


# ============================================================================ bad input


def bad_csv(tmp_path, edit, name="bad.csv") -> Path:
    lines = samples(n_trials=4, n=5).to_csv(index=False).splitlines()
    edit(lines)  # lines[0] is the header: data row k is lines[k], file line k + 1
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def set_cell(lines, row, column, value):
    cols = lines[0].split(",")
    cells = lines[row].split(",")
    cells[cols.index(column)] = value
    lines[row] = ",".join(cells)


def fails(tmp_path, path, *extra) -> str:
    """The CLI's one-line error (exit 2), and nothing left in the data folder."""
    out = tmp_path / "data"
    res = run_cli(path, "--to", out, *extra)
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("corrlab: error: "), res.output
    assert not out.exists() or not any(out.iterdir())  # no half dataset, no staging folder
    return lines[0]


def test_a_missing_column_is_named_with_what_the_source_has(tmp_path):
    path = bad_csv(tmp_path, lambda lines: None)
    msg = fails(tmp_path, path, "--map", "trial=shot,x_a=XA,x_b=X_B")
    assert "no column 'X_B' (mapped to x_b)" in msg and "'shot', 'cond', 'sa', 'sb', 'XA', 'XB'" in msg
    msg = fails(tmp_path, path, "--map", "trial=shot,x_a=XA")
    assert "no column 'x_b'" in msg and "--map x_b=NAME" in msg


def test_a_non_numeric_value_names_column_and_row(tmp_path):
    path = bad_csv(tmp_path, lambda lines: set_cell(lines, 13, "XB", "1.2.3"))
    msg = fails(tmp_path, path, "--map", MAP)
    assert "non-numeric value '1.2.3' in column 'XB' (x_b) at data row 13 (line 14)" in msg
    with pytest.raises(DatasetError, match="data row 13 "):
        import_dataset(path, tmp_path / "api", mapping={"trial": "shot", "x_a": "XA", "x_b": "XB"})


def test_rows_are_counted_as_in_the_file_across_chunks_comments_and_blank_lines(tmp_path):
    def edit(lines):
        set_cell(lines, 17, "XA", "oops")
        lines.insert(5, "")  # a blank line before the bad row
        lines.insert(0, "# recorded on the other bench")

    path = bad_csv(tmp_path, edit)
    assert path.read_text().splitlines()[19].split(",")[4] == "oops"  # file line 20
    with pytest.raises(DatasetError, match=r"non-numeric value 'oops' in column 'XA' \(x_a\) at data row 17 \(line 20\)"):
        import_dataset(path, tmp_path, mapping={"trial": "shot", "x_a": "XA", "x_b": "XB"}, chunk_rows=4)


def test_nan_in_x_is_refused(tmp_path):
    path = bad_csv(tmp_path, lambda lines: set_cell(lines, 8, "XA", ""))
    msg = fails(tmp_path, path, "--map", MAP)
    assert "NaN or empty value in column 'XA' (x_a) at data row 8 (line 9)" in msg and "finite" in msg
    path = bad_csv(tmp_path, lambda lines: set_cell(lines, 3, "XB", "nan"), name="nan.csv")
    assert "column 'XB' (x_b) at data row 3 (line 4)" in fails(tmp_path, path, "--map", MAP)
    npz = tmp_path / "nan.npz"
    np.savez(npz, trial=np.zeros(4, int), x_a=np.array([0.0, 1.0, np.nan, 2.0]), x_b=np.ones(4))
    with pytest.raises(DatasetError, match=r"NaN or empty value in column 'x_a' at row 3"):
        import_dataset(npz, tmp_path)


def test_a_trial_split_across_the_file_is_named_with_its_rows(tmp_path):
    def edit(lines):  # trial 101 (data rows 6-10) is cut after two samples, the rest moved to the end
        lines[:] = lines[:8] + lines[11:] + lines[8:11]

    path = bad_csv(tmp_path, edit)
    msg = fails(tmp_path, path, "--map", MAP)
    assert "trial 101 is split across the file: data rows 6-7 (lines 7-8), then again from data row 18 (line 19)" in msg
    with pytest.raises(DatasetError, match="trial 101 is split across the file: rows 6-7, then again from row 18"):
        src = samples(n_trials=4, n=5)
        order = list(range(7)) + list(range(10, 20)) + list(range(7, 10))
        npz = tmp_path / "split.npz"
        np.savez(npz, trial=src["shot"].to_numpy()[order], x_a=np.zeros(20), x_b=np.zeros(20))
        import_dataset(npz, tmp_path, chunk_rows=3)


def test_an_unknown_condition_is_named_with_the_allowed_ones(tmp_path):
    path = bad_csv(tmp_path, lambda lines: [set_cell(lines, k, "cond", "control:break_C") for k in range(11, 16)])
    msg = fails(tmp_path, path, "--map", MAP)
    assert "unknown condition 'control:break_C' in column 'cond' (condition) at data row 11 (line 12)" in msg
    assert "allowed: main, control:break_L, control:perturb_C, control:couple_env" in msg


def test_trial_level_values_must_not_change_inside_a_trial(tmp_path):
    path = bad_csv(tmp_path, lambda lines: set_cell(lines, 4, "sa", "1"))
    msg = fails(tmp_path, path, "--map", MAP)
    assert "trial 100 has setting_a 0 at data row 3 (line 4) but 1 at data row 4 (line 5)" in msg
    path = bad_csv(tmp_path, lambda lines: set_cell(lines, 2, "sb", "2"), name="two.csv")
    assert "value 2 in column 'sb' (setting_b) at data row 2 (line 3); allowed: 0, 1" in fails(tmp_path, path,
                                                                                              "--map", MAP)


def test_empty_sources_are_refused(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert "empty.csv is empty" in fails(tmp_path, empty)
    header = tmp_path / "header.csv"
    header.write_text("trial,x_a,x_b\n")
    assert "header.csv is empty: a header but no data rows" in fails(tmp_path, header)
    npz = tmp_path / "none.npz"
    np.savez(npz, trial=np.zeros(0, int), x_a=np.zeros(0), x_b=np.zeros(0))
    assert "none.npz is empty" in fails(tmp_path, npz)


def test_a_bad_mapping_is_a_plan_error(tmp_path):
    path = bad_csv(tmp_path, lambda lines: None)
    msg = fails(tmp_path, path, "--map", "trial=shot,xa=XA")
    assert "unknown dataset column 'xa'" in msg and "x_a" in msg
    assert "'trial' is not DEST=SOURCE" in fails(tmp_path, path, "--map", "trial")
    bad = tmp_path / "map.toml"
    bad.write_text('[mapping]\ntrial = "shot"\n')
    assert "unknown key(s) mapping" in fails(tmp_path, path, "--map-file", bad)
    with pytest.raises(PlanError, match="--group applies to HDF5 sources only"):
        import_dataset(path, tmp_path, group="run1")
