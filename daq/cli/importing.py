"""``corrlab import SOURCE --to DIR``: data recorded elsewhere into a v1 dataset."""

from __future__ import annotations

from pathlib import Path

import click

from corrlab.daq.cli.common import vacuum_option

FORMAT_CHOICES = ("csv", "tsv", "pymeasure", "hdf5", "npz")  # corrlab.daq.importer.FORMATS (not imported: --help stays fast)


@click.command("import")
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--to", "to_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("data"),
              show_default=True, help="data folder; the dataset goes to TO/<run_id>")
@click.option("--run-id", help="dataset name (default: the source's file name)")
@click.option("--map", "maps", multiple=True, metavar="DEST=SRC,...",
              help="source column of each dataset column, e.g. trial=shot,condition=cond,x_a=XA,x_b=XB "
                   "(unmapped columns use same-named source columns)")
@click.option("--map-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="a TOML file with a [map] table (dest = \"source column\"); --map entries win")
@click.option("--format", "fmt", type=click.Choice(FORMAT_CHOICES),
              help="source format (default: from the extension; a .csv with pymeasure's header is pymeasure)")
@click.option("--group", help="HDF5 group that holds the columns (default: the root)")
@click.option("--vacuum-variance", callback=vacuum_option, metavar="VA,VB",
              help="record the calibration of the quadrature columns (column units)")
@click.option("--quiet", is_flag=True, help="no progress line")
def import_command(source, to_dir, run_id, maps, map_file, fmt, group, vacuum_variance, quiet):
    """Import SOURCE (CSV, TSV, pymeasure results, HDF5, .npz) into a complete v1 dataset.

    \b
    Required columns: trial, x_a, x_b. Optional: condition (main or control:<name>;
    default main), setting_a, setting_b (0/1; default 0), f (default true), t (default
    the sample index), y_a, y_b. Trials must be consecutive in the file.
    """
    from rich.console import Console

    from corrlab.dataset import Dataset
    from corrlab.daq.importer import import_dataset, parse_mapping, read_mapping_file

    mapping = read_mapping_file(map_file) if map_file else {}
    mapping.update(parse_mapping(maps))
    console = Console(stderr=True, highlight=False)
    if quiet or not console.is_terminal:
        path = import_dataset(source, to_dir, mapping=mapping, format=fmt, run_id=run_id, group=group,
                              vacuum_variance=vacuum_variance)
    else:
        with console.status(f"importing {source.name}") as status:
            path = import_dataset(source, to_dir, mapping=mapping, format=fmt, run_id=run_id, group=group,
                                  vacuum_variance=vacuum_variance,
                                  progress=lambda rows: status.update(f"importing {source.name}: {rows:,} rows"))
    ds = Dataset.open(path)
    info = ds.manifest["import"]
    mapped = ", ".join(f"{d}={s}" for d, s in info["mapping"].items())
    click.echo(f"imported {info['rows']:,} rows, {info['trials']:,} trial(s) from {source.name} ({info['format']}) "
               f"into {path}: {len(ds.parts)} part(s)")
    defaults = f"; defaults: {', '.join(sorted(info['defaults']))}" if info["defaults"] else ""
    click.echo(f"columns: {mapped}{defaults}")
    click.echo(f"source sha256 {info['source_sha256']}")


# the lazy loader of corrlab.daq.cli.main looks the command up by its name, and `import` is a keyword
globals()["import"] = import_command
