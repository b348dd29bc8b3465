"""Figures of the two-ensemble theory: the entanglement "crevasse" over time and a scan's curves.

Separate from :mod:`corrlab.theory.ensembles` so the numerics import no plotting library;
matplotlib is imported inside the functions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from corrlab.errors import PlanError
from corrlab.theory.ensembles import (
    DEFAULT_TOL, EnsembleScan, _check_convention, _check_n, _check_time, binomial_entropy_bits,
    gaussian_limit_entropy_bits, schmidt_spectrum, tau_from_time,
)


# magic times 2 tau / pi = p / q in (0, 1]: the entropy tends to log2 q once N >> q^2
MAGIC_TIMES = ((1, 6), (1, 4), (1, 3), (1, 2), (2, 3), (3, 4), (5, 6), (1, 1))


def _pi_label(p: int, q: int) -> str:
    """Label of the angle p pi / q."""
    from fractions import Fraction

    f = Fraction(p, q)
    num = "" if f.numerator == 1 else str(f.numerator)
    return f"{num}π" if f.denominator == 1 else f"{num}π/{f.denominator}"


def _time_axis(ax, convention: str, t_max_tau: float) -> None:
    """pi-fraction ticks on the convention's time axis, the other convention's time on top."""
    from fractions import Fraction

    scale = 1.0 if convention == "bec" else 4.0
    ticks, labels = [], []
    for i in range(0, 17):
        tau = i * math.pi / 16
        if tau > t_max_tau + 1e-12:
            break
        if i % 2 and t_max_tau > math.pi / 4 + 1e-9:
            continue
        f = Fraction(i, 16) * (1 if convention == "bec" else 4)
        ticks.append(tau * scale)
        labels.append("0" if i == 0 else _pi_label(f.numerator, f.denominator))
    ax.set_xticks(ticks, labels)
    other = r"$\chi t = 4\tau$ (spin-j convention)" if convention == "bec" else r"$\tau = J t$ (BEC convention)"
    sec = ax.secondary_xaxis("top", functions=((lambda x: x * 4.0), (lambda x: x / 4.0)) if convention == "bec"
                             else ((lambda x: x / 4.0), (lambda x: x * 4.0)))
    sec.set_xlabel(other, fontsize=9, color="0.35")
    sec.tick_params(labelsize=8, colors="0.35")
    # the other convention's time in fractions of pi too: chi t = 0, pi/2, ..., or tau = 0, pi/8, ...
    top_ticks, top_labels = [], []
    for i in range(0, 17, 2):
        tau = i * math.pi / 16
        if tau > t_max_tau + 1e-12:
            break
        f = Fraction(i, 16) * (4 if convention == "bec" else 1)
        top_ticks.append(tau * (4.0 if convention == "bec" else 1.0))
        top_labels.append("0" if i == 0 else _pi_label(f.numerator, f.denominator))
    sec.set_xticks(top_ticks, top_labels)


def _mark_magic(ax, convention: str, t_max_tau: float, ymax: float) -> None:
    scale = 1.0 if convention == "bec" else 4.0
    for p, q in MAGIC_TIMES:
        tau = p * math.pi / (2 * q)
        if tau > t_max_tau + 1e-12:
            continue
        level = math.log2(q) if q > 1 else 0.0
        x = tau * scale
        ax.axvline(x, color="0.55", lw=0.8, ls=":", zorder=0)
        lab = _pi_label(p, 2 * q) if convention == "bec" else _pi_label(2 * p, q)
        txt = f"{lab}\n{level:.3g} bit" + ("" if level == 1 else "s")
        if q == 1:
            txt = f"{lab}\nrevival"
        ax.annotate(txt, (x, ymax), xytext=(0, -2), textcoords="offset points", ha="center", va="top",
                    fontsize=8, color="0.25", bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8})
        if q > 1:
            ax.plot([x], [level], marker="o", ms=4, mfc="none", mec="0.2", zorder=5)


def plot_crevasse(path, ns: Sequence[int] = (10, 100, 1000, 10_000), *, steps: int = 1601,
                  convention: str = "bec", t_max: float | None = None, tol: float = DEFAULT_TOL,
                  zoom_steps: int = 401, dpi: int = 150) -> str:
    """The Devil's crevasse: entanglement entropy against time for several N, written as a PNG.

    Top panel: the entropy over the time axis (default the full period, tau from 0 to pi/2,
    i.e. chi t from 0 to 2 pi), axes labelled with the convention (its time variable below,
    the other convention's above); magic times 2 tau / pi = p / q are marked with their limit
    log2 q (open circles, reached once N >> q^2) and each N's upper bound H(Binomial(N, 1/2))
    is dashed. Bottom panel: the crevasse at tau = pi/4 in the scaled time g = 2N(tau - pi/4),
    where every large N falls on 1 bit plus the Gaussian (Holstein-Primakoff) CZ curve
    h(sqrt(1 + g^2)/2) (black dashes): the crevasse is 1/N wide. Returns the path written.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    convention = _check_convention(convention)
    ns = sorted(_check_n(n) for n in ns)
    if not ns:
        raise PlanError("ns must name at least one N")
    for name, val in (("steps", steps), ("zoom_steps", zoom_steps)):
        if isinstance(val, bool) or not isinstance(val, (int, np.integer)) or val < 2:
            raise PlanError(f"{name} must be an integer >= 2, got {val!r}")
    t_max_tau = math.pi / 2 if t_max is None else tau_from_time(_check_time(t_max, "t_max"), convention)
    if t_max_tau <= 0:
        raise PlanError(f"t_max must be positive, got {t_max}")
    scale = 1.0 if convention == "bec" else 4.0
    # the grid holds the magic times themselves: the crevasses are too narrow to be hit by chance
    magic = [p * math.pi / (2 * q) for p, q in MAGIC_TIMES if p * math.pi / (2 * q) <= t_max_tau]
    taus = np.union1d(np.linspace(0.0, t_max_tau, int(steps)), magic)
    gs = np.linspace(-12.0, 12.0, int(zoom_steps))

    fig, (ax, az) = plt.subplots(2, 1, figsize=(11, 9.5), dpi=dpi, gridspec_kw={"height_ratios": [2.1, 1]})
    colors = plt.get_cmap("viridis")(np.linspace(0.05, 0.85, len(ns)))
    top = 0.0
    widths = np.linspace(1.4, 0.6, len(ns)) if len(ns) > 1 else [1.2]
    for n, col, lw in zip(ns, colors, widths):
        s = np.array([schmidt_spectrum(n, t, tol=tol).entropy_bits() for t in taus])
        bound = binomial_entropy_bits(n)
        top = max(top, bound)
        label = f"N = {n:,}".replace(",", " ")
        ax.plot(taus * scale, s, color=col, lw=lw, label=label, zorder=3 + len(ns) - list(ns).index(n))
        ax.axhline(bound, color=col, lw=0.8, ls="--", alpha=0.7)
        sz = np.array([schmidt_spectrum(n, math.pi / 4 + g / (2 * n), tol=tol).entropy_bits() for g in gs])
        az.plot(gs, sz, color=col, lw=1.2, label=label)
    ax.plot([], [], color="0.4", lw=0.8, ls="--", label="upper bound:\nH(Binomial(N, 1/2))")
    ax.plot([], [], ls="none", marker="o", ms=4, mfc="none", mec="0.2", label="magic time p/q:\nlog2 q for N >> q^2")
    ymax = top * 1.12 + 0.6
    ax.set_ylim(0, ymax)
    ax.set_xlim(0, t_max_tau * scale)
    _mark_magic(ax, convention, t_max_tau, ymax)
    _time_axis(ax, convention, t_max_tau)
    if convention == "bec":
        ax.set_xlabel(r"$\tau = J\,t$   (BEC convention: $H = J\,S_1^z S_2^z$, $S^z = n_a - n_b$)")
    else:
        ax.set_xlabel(r"$\chi t = 4\tau$   (spin-j convention: $H = \chi\,J_{1z} J_{2z}$, $J_z = (n_a - n_b)/2$)")
    ax.set_ylabel("entanglement entropy of one ensemble (bits)")
    ax.set_title(r"Two x-polarised ensembles of N atoms under $S_1^z S_2^z$: the Devil's crevasse", fontsize=12)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=9, frameon=False)
    ax.grid(axis="y", color="0.9", lw=0.6)

    hp = np.array([1.0 + gaussian_limit_entropy_bits(g) for g in gs])
    az.plot(gs, hp, color="black", lw=1.0, ls=(0, (4, 3)), label="1 + Gaussian CZ limit")
    az.axhline(1.0, color="0.55", lw=0.8, ls=":")
    az.set_xlim(gs[0], gs[-1])
    if convention == "bec":
        az.set_xlabel(r"scaled time near the magic time $\pi/4$:  $g = 2N(\tau - \pi/4)$")
    else:
        az.set_xlabel(r"scaled time near the magic time $\chi t = \pi$:  $g = N(\chi t - \pi)/2$")
    az.set_ylabel("entropy (bits)")
    az.set_title("The crevasse at the magic time is 1/N wide: a 1-bit cat plus a Gaussian two-mode CZ", fontsize=10)
    az.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=9, frameon=False)
    az.grid(axis="y", color="0.9", lw=0.6)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return str(path)


def plot_scan(scan: EnsembleScan, path, *, dpi: int = 150) -> str:
    """Entropy and log negativity of one scan (or a few points) against time, written as a PNG."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    t = scan.times
    order = np.argsort(t)
    t = t[order]
    pts = [scan.points[i] for i in order]
    fig, ax = plt.subplots(figsize=(10, 5.5), dpi=dpi)
    style = {"marker": "o", "ms": 3} if len(t) < 60 else {}
    ax.plot(t, [p.entropy_bits for p in pts], color="C0", lw=1.1, label="entropy (pure state)", **style)
    ax.plot(t, [p.log_negativity_pure_bits for p in pts], color="C1", lw=0.9, alpha=0.8,
            label="log negativity (pure state)", **style)
    if any(p.gamma_t is not None for p in pts):
        lab = ("log negativity, Gamma t = " + f"{scan.dephasing:g}") if scan.dephasing is not None else \
            f"log negativity, Gamma/{'J' if scan.convention == 'bec' else 'chi'} = {scan.dephasing_rate:g}"
        ax.plot(t, [p.log_negativity_bits for p in pts], color="C3", lw=1.1, label=lab, **style)
        lo = np.array([np.nan if p.log_negativity_lower_bits is None else p.log_negativity_lower_bits for p in pts])
        hi = np.array([np.nan if p.log_negativity_upper_bits is None else p.log_negativity_upper_bits for p in pts])
        if np.any(np.isfinite(lo)):
            # every dephased point has a bracket; where no method reaches ("bracket") it is all there is
            ax.fill_between(t, lo, hi, color="C3", alpha=0.15, lw=0,
                            label="its bracket (" + ", ".join(sorted({p.log_negativity_method for p in pts
                                                                      if p.log_negativity_method})) + ")")
    bound = binomial_entropy_bits(scan.n)
    ax.axhline(bound, color="0.4", lw=0.8, ls="--", label="H(Binomial(N, 1/2))")
    ymax = bound * 1.15 + 0.5
    ax.set_ylim(0, ymax)
    lo, hi = float(t.min()), float(t.max())
    if hi > lo:
        ax.set_xlim(lo, hi)
        scale = 1.0 if scan.convention == "bec" else 4.0
        for p, q in MAGIC_TIMES:
            x = p * math.pi / (2 * q) * scale
            if lo <= x <= hi:
                ax.axvline(x, color="0.6", lw=0.7, ls=":", zorder=0)
    var = r"$\tau = J t$ (BEC convention, $S^z = n_a - n_b$)" if scan.convention == "bec" else \
        r"$\chi t = 4\tau$ (spin-j convention, $J_z = (n_a - n_b)/2$)"
    ax.set_xlabel(var)
    ax.set_ylabel("bits")
    ax.set_title(f"Two ensembles of N = {scan.n} atoms under " + r"$S_1^z S_2^z$")
    ax.legend(fontsize=9, loc="upper right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return str(path)


def dephased_crevasse_data(n: int = 10_000, *, gamma_t_ns: Sequence[float] = (0.1, 0.3, 0.6, 1.0),
                           g_max: float = 2.0, g_steps: int = 17, map_gamma_t_n_max: float = 1.2,
                           map_steps: tuple[int, int] = (9, 13),
                           cat_gamma_ts: Sequence[float] = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0),
                           tol: float = 1e-3, progress=None) -> dict:
    """The numbers behind :func:`plot_dephased_crevasse`, computed by the "auto" dephased negativity.

    Near tau = pi/4 (N even) in the scaled time g = 2N(tau - pi/4): E_N (bits) for each Gamma t N
    of ``gamma_t_ns`` (and the pure state) on ``g_steps`` points of [0, g_max]; a map of E_N over
    g in [0, g_max] x Gamma t N in [0, map_gamma_t_n_max] (``map_steps`` points each); and E_N at
    tau = pi/4 itself for each Gamma t of ``cat_gamma_ts`` (the banded bounds). E_N is even in g
    (rho(-tau) is the complex conjugate of rho(tau), and E_N is invariant under conjugation), so
    only g >= 0 is computed. Every entry records the method, bracket and bound kind.
    """
    from corrlab.theory.ensembles import ensemble_point
    from corrlab.theory.ensembles_dephased import gaussian_limit_log_negativity_bits

    n = _check_n(n)
    if n % 2:
        raise PlanError("the dephased crevasse needs an even N (the cat time pi/4)")
    gs = np.linspace(0.0, float(g_max), int(g_steps))
    mg = np.linspace(0.0, float(g_max), int(map_steps[0]))
    mt = np.linspace(0.0, float(map_gamma_t_n_max), int(map_steps[1]))
    total = len(gs) * (1 + len(gamma_t_ns)) + mg.size * mt.size + len(cat_gamma_ts)
    done = [0]

    def point(tau, gamma_t):
        # the pure state's E_N needs a tight window (at tol 1e-3 it was 3.5e-3 bits off at N = 10^4, g = 2)
        p = ensemble_point(n, tau, dephasing=gamma_t, tol=tol if gamma_t > 0 else min(tol, 1e-6))
        done[0] += 1
        if progress is not None:
            progress(done[0], total)
        return {"value": p.log_negativity_bits, "lower": p.log_negativity_lower_bits,
                "upper": p.log_negativity_upper_bits, "method": p.log_negativity_method,
                "bound_kind": p.log_negativity_bound_kind}

    tau_of = lambda g: math.pi / 4 + g / (2 * n)  # noqa: E731
    curves = {"0": [point(tau_of(g), 0.0) for g in gs]}
    for x in gamma_t_ns:
        curves[f"{x:g}"] = [point(tau_of(g), x / n) for g in gs]
    grid = [[point(tau_of(g), x / n) for g in mg] for x in mt]
    cat = [point(math.pi / 4, x) for x in cat_gamma_ts]
    return {
        "n": n, "convention": "bec", "tol_bits": tol, "g": gs.tolist(), "gamma_t_n": [0.0] + [float(x) for x in gamma_t_ns],
        "curves": curves,
        "gaussian_limit": {k: [1.0 + gaussian_limit_log_negativity_bits(g, float(k)) for g in gs] for k in curves},
        "map_g": mg.tolist(), "map_gamma_t_n": mt.tolist(), "map": grid,
        "cat_gamma_t": [float(x) for x in cat_gamma_ts], "cat": cat,
    }


def plot_dephased_crevasse(path, data: dict, *, dpi: int = 150) -> str:
    """The crevasse at tau = pi/4 under dephasing (from :func:`dephased_crevasse_data`), written as a PNG.

    Left: E_N against g = 2N(tau - pi/4) for several Gamma t N, with 1 + the Gaussian two-mode
    limit (dashed); the Gaussian part dies at Gamma t N = |g|/2, the cat's bit survives. Middle:
    the map of E_N over g and Gamma t N, with that line. Right: E_N at tau = pi/4 against Gamma t
    (banded brackets): the cat's robustness to dephasing of order 0.01 to 0.1.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    n = data["n"]
    g = np.array(data["g"])
    fig, (a1, a2, a3) = plt.subplots(1, 3, figsize=(16, 5.2), dpi=dpi)
    keys = list(data["curves"])
    colors = plt.get_cmap("plasma")(np.linspace(0.0, 0.8, len(keys)))
    for key, col in zip(keys, colors):
        vals = np.array([p["value"] for p in data["curves"][key]])
        gg = np.concatenate([-g[::-1], g[1:]])
        vv = np.concatenate([vals[::-1], vals[1:]])
        lab = "pure state" if key == "0" else f"Γt N = {key}"
        methods = sorted({p["method"] for p in data["curves"][key]} - {"pure"})
        if methods:
            lab += f" ({', '.join(methods)})"
        a1.plot(gg, vv, color=col, lw=1.4, marker="o", ms=2.5, label=lab)
        lim = np.array(data["gaussian_limit"][key])
        a1.plot(gg, np.concatenate([lim[::-1], lim[1:]]), color=col, lw=0.9, ls=(0, (4, 3)))
    a1.plot([], [], color="0.3", lw=0.9, ls=(0, (4, 3)), label="1 + Gaussian CZ limit with dephasing")
    a1.axhline(1.0, color="0.55", lw=0.8, ls=":")
    a1.set_xlabel(r"$g = 2N(\tau - \pi/4)$  (BEC convention, $\tau = J t$)")
    a1.set_ylabel("log negativity $E_N$ (bits)")
    a1.set_title(f"N = {n:,}: the crevasse at π/4 under dephasing".replace(",", " "), fontsize=10)
    a1.legend(fontsize=8, loc="upper center")
    a1.set_ylim(0.8, None)

    mg, mt = np.array(data["map_g"]), np.array(data["map_gamma_t_n"])
    z = np.array([[p["value"] for p in row] for row in data["map"]])
    ggm = np.concatenate([-mg[::-1], mg[1:]])
    zz = np.concatenate([z[:, ::-1], z[:, 1:]], axis=1)
    im = a2.pcolormesh(ggm, mt, zz, shading="nearest", cmap="viridis")
    fig.colorbar(im, ax=a2, label="$E_N$ (bits)")
    xs = np.linspace(ggm[0], ggm[-1], 200)
    a2.plot(xs, np.abs(xs) / 2, color="white", lw=1.2, ls="--", label="Γt N = |g|/2 (Gaussian part dies)")
    a2.set_ylim(mt[0], mt[-1])
    a2.set_xlabel(r"$g = 2N(\tau - \pi/4)$")
    a2.set_ylabel(r"$\Gamma t\,N$  (BEC convention)")
    meth = sorted({p["method"] for row in data["map"] for p in row})
    a2.set_title(f"E_N against τ and Γt at N = {n:,} ({', '.join(meth)})".replace(",", " ", 1), fontsize=10)
    a2.legend(fontsize=8, loc="upper center")

    gt = np.array(data["cat_gamma_t"])
    lo = np.array([p["lower"] for p in data["cat"]])
    hi = np.array([p["upper"] for p in data["cat"]])
    a3.fill_between(gt, lo, hi, color="C3", alpha=0.3)
    a3.plot(gt, [p["value"] for p in data["cat"]], color="C3", marker="o", ms=3,
            label="E_N at τ = π/4 (" + ", ".join(sorted({p["method"] for p in data["cat"]})) + " bracket)")
    a3.set_xscale("log")
    a3.set_xlabel("Γt (BEC convention)")
    a3.set_ylabel("$E_N$ (bits)")
    a3.set_ylim(0, 1.05)
    a3.axhline(1.0, color="0.55", lw=0.8, ls=":")
    a3.set_title(f"The cat's bit at τ = π/4 against dephasing, N = {n:,}".replace(",", " "), fontsize=10)
    a3.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return str(path)
