"""``corrlab simulate ensembles``: the seed physics of two atomic ensembles, from the command line.

Register with ``from corrlab.daq.cli.simulate import simulate; cli.add_command(simulate)``. numpy,
scipy and matplotlib are imported inside the command, so ``corrlab --help`` stays fast.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from corrlab.daq.cli.common import CorrlabGroup

TABLE_MAX_ROWS = 60


class _TimeType(click.ParamType):
    """A time: a number or a multiple of pi ("pi/4", "3pi/8")."""

    name = "T"

    def convert(self, value, param, ctx):
        if isinstance(value, float):
            return value
        from corrlab.errors import PlanError
        from corrlab.theory.ensembles import parse_time

        try:
            return parse_time(value)
        except PlanError as exc:
            self.fail(str(exc), param, ctx)


@click.group(cls=CorrlabGroup)
def simulate():
    """Simulations of the seed physics (theory side; no bench involved)."""


@simulate.command("ensembles", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--n", "n", type=int, required=True, metavar="N", help="atoms per ensemble (1 to 10^7)")
@click.option("--tau", "taus", type=_TimeType(), multiple=True, metavar="T",
              help="time(s), in the convention's time variable: tau = J t (bec) or chi t = 4 tau (spin-j); "
                   "numbers or multiples of pi (pi/4, 3pi/8); several: --tau 0.3 pi/4 pi/8")
@click.argument("more_taus", nargs=-1, type=_TimeType(), metavar="")
@click.option("--scan", metavar="T0:T1:STEPS", help="STEPS equally spaced times from T0 to T1 inclusive, e.g. 0:pi/2:2000")
@click.option("--convention", type=click.Choice(["bec", "spin-j"]), default="bec", show_default=True,
              help="bec: S^z = n_a - n_b, H = J S1^z S2^z, time tau = J t; "
                   "spin-j: J_z = (n_a - n_b)/2, H = chi J1z J2z, time chi t = 4 tau")
@click.option("--dephasing", "gamma_t", type=float, metavar="GAMMA_T",
              help="collective dephasing, Lindblad sqrt(Gamma) S^z (bec) or sqrt(Gamma) J_z (spin-j) on each "
                   "ensemble: GAMMA_T is Gamma * t in that convention, the same at every time point")
@click.option("--dephasing-rate", "gamma_rate", type=float, metavar="GAMMA/J",
              help="collective dephasing as the rate Gamma / J (= Gamma / chi): Gamma t grows with the time")
@click.option("--window", type=float, metavar="W",
              help="keep k within N/2 +- W sqrt(N)/2 (default: the smallest window meeting --tol; exact for small N)")
@click.option("--tol", type=float, default=1e-6, show_default=True, metavar="BITS",
              help="precision asked of the entropy (rigorous bound) and of the dephased negativity's window")
@click.option("--max-sector-dim", type=int, default=12_000, show_default=True, metavar="ROWS",
              help="largest symmetry block of the dephased partial transpose to diagonalise "
                   "(N = 1000 at tau = pi/4 needs 9312: minutes and ~1 GB)")
@click.option("--negativity-method", type=click.Choice(["auto", "sector", "hp", "hp-cat", "banded", "bracket"]),
              default="auto", show_default=True,
              help="dephased log negativity: auto picks per regime; sector (exact, N^3), hp (Gaussian regime, tau "
                   "~ g/2N), hp-cat (1 bit + hp near tau = pi/4, N even), banded (rigorous bracket at tau = pi/4, "
                   "N even), bracket (rigorous 0 <= E_N <= E_N pure, no value); JSON: log_negativity_method and "
                   "bracket")
@click.option("--json", "json_file", metavar="FILE", help="write the results as JSON to FILE ('-': stdout)")
@click.option("--plot", "plot_file", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE.png",
              help="plot entropy and log negativity against time to FILE.png")
@click.option("--quiet", is_flag=True, help="no progress bar, no table")
def ensembles(n, taus, more_taus, scan, convention, gamma_t, gamma_rate, window, tol, max_sector_dim,
              negativity_method, json_file, plot_file, quiet):
    """Entanglement of two x-polarised ensembles of N atoms under H = J S1^z S2^z.

    \b
    Per time point: entanglement entropy (bits) of the pure state, logarithmic negativity
    (bits) of the pure state and, with --dephasing / --dephasing-rate, of the dephased state;
    the window used and the probability weight it leaves out.

    \b
    corrlab simulate ensembles --n 1000 --tau 0.3 pi/4 pi/8
    corrlab simulate ensembles --n 10000 --scan 0:pi/2:2000 --json scan.json --plot scan.png
    corrlab simulate ensembles --n 20 --tau pi/4 --dephasing 0.05
    corrlab simulate ensembles --n 1000 --tau pi/2 --convention spin-j
    """
    from corrlab.theory.ensembles import SPIN_OPERATOR, TIME_VARIABLE, parse_scan, simulate_ensembles
    from corrlab.theory.ensembles_figures import plot_scan

    times = list(taus) + list(more_taus)
    if more_taus and not taus:
        raise click.UsageError("unexpected argument(s); times go after --tau (e.g. --tau 0.3 pi/4)")
    if bool(times) == bool(scan):
        raise click.UsageError("give either --tau T... or --scan T0:T1:STEPS")
    if gamma_t is not None and gamma_rate is not None:
        raise click.UsageError("give either --dephasing GAMMA_T or --dephasing-rate GAMMA/J, not both")
    if scan:
        times = list(parse_scan(scan))

    to_stdout = json_file == "-"
    show = not quiet and not to_stdout
    from rich.console import Console

    err = Console(stderr=True, highlight=False)
    if show and len(times) > 1:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        with Progress(TextColumn("N = {task.fields[n]}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      console=err, transient=True) as bar:
            task = bar.add_task("scan", total=len(times), n=n)
            result = simulate_ensembles(n, times, convention=convention, dephasing=gamma_t, dephasing_rate=gamma_rate,
                                        window=window, tol=tol, max_sector_dim=max_sector_dim,
                                        negativity_method=negativity_method,
                                        progress=lambda done, total: bar.update(task, completed=done))
    else:
        result = simulate_ensembles(n, times, convention=convention, dephasing=gamma_t, dephasing_rate=gamma_rate,
                                    window=window, tol=tol, max_sector_dim=max_sector_dim,
                                    negativity_method=negativity_method)

    data = result.to_dict()
    if json_file:
        text = json.dumps(data, indent=2)
        if to_stdout:
            click.echo(text)
        else:
            Path(json_file).write_text(text + "\n")
    if plot_file is not None:
        plot_scan(result, plot_file)

    if show:
        out = Console(highlight=False)
        _print_table(out, result, SPIN_OPERATOR[convention], TIME_VARIABLE[convention])
        if json_file:
            out.print(f"JSON: {json_file}")
        if plot_file is not None:
            out.print(f"plot: {plot_file}")


@simulate.command("crevasse", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE.png")
@click.option("--n", "ns", type=int, multiple=True, metavar="N", help="atoms per ensemble, repeatable "
              "(default: 10, 100, 1000, 10000)")
@click.option("--convention", type=click.Choice(["bec", "spin-j"]), default="bec", show_default=True,
              help="time axis below: tau = J t (bec) or chi t = 4 tau (spin-j); the other one is on top")
@click.option("--steps", type=int, default=1601, show_default=True, help="time points over the period")
@click.option("--tol", type=float, default=1e-6, show_default=True, metavar="BITS", help="entropy precision")
def crevasse(out, ns, convention, steps, tol):
    """The Devil's crevasse: entanglement entropy against time for several N, as a PNG.

    \b
    Magic times 2 tau / pi = p / q are marked with their limit log2 q; below, the 1/N-wide
    crevasse at tau = pi/4 against the Gaussian (Holstein-Primakoff) CZ limit.

    \b
    corrlab simulate crevasse docs/crevasse.png          # the README's figure (~1 min)
    """
    from corrlab.theory.ensembles_figures import plot_crevasse

    kwargs = {"ns": ns} if ns else {}
    path = plot_crevasse(out, convention=convention, steps=steps, tol=tol, **kwargs)
    click.echo(f"plot: {path}")


@simulate.command("crevasse-dephased", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE.png")
@click.option("--n", "n", type=int, default=10_000, show_default=True, metavar="N", help="atoms per ensemble (even)")
@click.option("--gamma-t-n", "gamma_t_ns", type=float, multiple=True, metavar="X",
              help="Gamma t N of the curves, repeatable (default: 0.1 0.3 0.6 1)")
@click.option("--cat-gamma-t", "cat_gamma_ts", type=float, multiple=True, metavar="GAMMA_T",
              help="Gamma t of the points at tau = pi/4, repeatable (default: 0.005 ... 1)")
@click.option("--g-max", type=float, default=2.0, show_default=True, help="scaled time range |2N(tau - pi/4)|")
@click.option("--g-steps", type=int, default=17, show_default=True, help="points of each curve over [0, g-max]")
@click.option("--map-steps", type=(int, int), default=(9, 13), show_default=True, metavar="NG NGAMMA",
              help="map points in g and in Gamma t N")
@click.option("--map-gamma-t-n-max", type=float, default=1.2, show_default=True, help="map's largest Gamma t N")
@click.option("--tol", type=float, default=1e-3, show_default=True, metavar="BITS",
              help="precision asked of each E_N (a figure needs no more)")
@click.option("--json", "json_file", metavar="FILE", help="also write the numbers (with methods and brackets) as JSON")
def crevasse_dephased(out, n, gamma_t_ns, cat_gamma_ts, g_max, g_steps, map_steps, map_gamma_t_n_max, tol,
                      json_file):
    """The crevasse at tau = pi/4 under dephasing, and a map of E_N over tau and Gamma t, as a PNG.

    \b
    Log negativity (bits, bec convention) against g = 2N(tau - pi/4) for several Gamma t N, with
    1 + the Gaussian CZ limit; the map of E_N over g and Gamma t N; E_N at tau = pi/4 against
    Gamma t. Every point by the auto method (hp-cat near pi/4, banded at pi/4; see
    --negativity-method of 'ensembles'), named in the JSON with its bracket.

    \b
    corrlab simulate crevasse-dephased docs/crevasse_dephased.png --json crevasse_dephased.json
    """
    from corrlab.theory.ensembles_figures import dephased_crevasse_data, plot_dephased_crevasse

    kwargs = {}
    if gamma_t_ns:
        kwargs["gamma_t_ns"] = gamma_t_ns
    if cat_gamma_ts:
        kwargs["cat_gamma_ts"] = cat_gamma_ts
    data = dephased_crevasse_data(n, g_max=g_max, g_steps=g_steps, map_steps=map_steps,
                                  map_gamma_t_n_max=map_gamma_t_n_max, tol=tol, **kwargs)
    if json_file:
        Path(json_file).write_text(json.dumps(data, indent=1) + "\n")
        click.echo(f"JSON: {json_file}")
    click.echo(f"plot: {plot_dephased_crevasse(out, data)}")


def _print_table(console, result, spin_op: str, time_var: str) -> None:
    from rich.table import Table

    dephased = any(p.gamma_t is not None for p in result.points)
    conv = result.convention
    tlabel = "τ = J t" if conv == "bec" else "χ t"
    title = (f"two ensembles of N = {result.n} atoms, H = {'J S1^z S2^z' if conv == 'bec' else 'chi J1z J2z'}; "
             f"convention {conv} ({spin_op}, {time_var})")
    if result.dephasing is not None:
        title += f"; dephasing Γt = {result.dephasing:g} ({conv})"
    elif result.dephasing_rate is not None:
        title += (f"; dephasing Γ/{'J' if conv == 'bec' else 'χ'} = {result.dephasing_rate:g} "
                  f"(Γt = {result.dephasing_rate:g} × {tlabel.split(' =')[0]}, in the JSON as gamma_t)")
    from rich import box

    table = Table(caption_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    # short headers, unwrapped cells, light borders: the numbers must survive an 80-column terminal
    table.add_column(tlabel, justify="right", no_wrap=True)
    table.add_column("entropy", justify="right", no_wrap=True)
    table.add_column("± bound", justify="right", no_wrap=True)
    table.add_column("E_N pure", justify="right", no_wrap=True)
    if dephased:
        table.add_column("E_N deph.", justify="right", no_wrap=True)
    table.add_column("window w", justify="right", no_wrap=True)
    table.add_column("omitted", justify="right", no_wrap=True)
    notes = ["entropy and log negativity E_N in bits; window w in units of sqrt(N)/2 (of the entropy), omitted: "
             "the probability weight of one ensemble outside it"]

    def window_cell(w):
        return "exact" if w is None else f"{w:.2f}"

    pts = list(zip(result.times, result.points))
    neg_windows = {(p.log_negativity_window, p.log_negativity_omitted_weight) for _, p in pts
                   if p.gamma_t and p.log_negativity_method not in ("hp", "hp-cat", "bracket")}  # no S^z window
    methods = sorted({p.log_negativity_method for _, p in pts if p.gamma_t})
    if methods:
        brackets = [(p.log_negativity_lower_bits, p.log_negativity_upper_bits) for _, p in pts if p.gamma_t]
        width = max(hi - lo for lo, hi in brackets)
        if "bracket" in methods:
            notes.append("bracket: no method reaches these points, E_N deph. shows lower..upper (rigorous)")
        kinds = sorted({p.log_negativity_bound_kind for _, p in pts if p.gamma_t})
        notes.append(f"E_N deph. by {', '.join(methods)} (bracket width <= {width:.1e} bits, {'/'.join(kinds)})")
    if len(neg_windows) == 1:
        (w, eps), = neg_windows
        notes.append(f"E_N deph. on window {window_cell(w)}" + ("" if w is None else f", omitted {eps or 0:.1e}"))
    rows = pts
    if len(pts) > TABLE_MAX_ROWS:  # a long scan: its lowest and highest entropies, then a pointer to the JSON
        ordered = sorted(pts, key=lambda tp: tp[1].entropy_bits)
        rows = sorted(ordered[:10] + ordered[-5:], key=lambda tp: tp[0])
        notes.insert(0, f"{len(pts)} points; shown: the 10 lowest and 5 highest entropies (all in --json)")
    for t, p in rows:
        cells = [f"{t:.6g}", f"{p.entropy_bits:.6f}", f"{p.entropy_error_bound_bits:.0e}", f"{p.log_negativity_pure_bits:.6f}"]
        if dephased:
            cells.append(f"{p.log_negativity_lower_bits:.3f}..{p.log_negativity_upper_bits:.3f}"
                         if p.log_negativity_method == "bracket" else f"{p.log_negativity_bits:.6f}")
        cells += [window_cell(p.window), f"{p.omitted_weight:.0e}"]
        table.add_row(*cells)
    table.caption = "; ".join(notes)
    console.print(title)  # above the table, not its title: a title wraps at the table's width
    console.print(table)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(simulate())
