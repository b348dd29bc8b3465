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
