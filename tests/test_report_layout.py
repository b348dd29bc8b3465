"""The report and the terminal summary for people: the verdict at the top of the HTML report,
every plot with alt text, a layout that holds at 390 px (in real Chromium), and a terminal
summary that fits 80 columns without cutting a word."""

from __future__ import annotations

import io
import re

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from corrlab.analysis.pipeline import analyze_dataset
from corrlab.analysis.render import print_summary, write_report

from .test_live import _browser


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    """Dependent data by hand (a per-trial common offset), with a control whose name is long."""
    rng = np.random.default_rng(7)
    n_trials, n = 32, 20
    z = rng.standard_normal(n_trials)
    trial = np.repeat(np.arange(n_trials), n)
    table = pa.table({
        "trial": trial, "condition": np.where((trial // 4) % 4 == 3, "control:couple_env", "main"),
        "setting_a": (trial % 2).astype(np.int8), "setting_b": ((trial // 2) % 2).astype(np.int8),
        "x_a": (z[:, None] + rng.standard_normal((n_trials, n))).ravel(),
        "x_b": (z[:, None] + rng.standard_normal((n_trials, n))).ravel()})
    path = tmp_path_factory.mktemp("flat") / "flat.parquet"
    pq.write_table(table, path)
    return analyze_dataset(path, plan={"n_resamples": 99})


def test_the_terminal_summary_fits_80_columns_and_cuts_no_word(result):
    from rich.console import Console

    out = io.StringIO()
    print_summary(result, Console(file=out, width=80, force_terminal=False, highlight=False))
    text = out.getvalue()
    lines = text.splitlines()
    assert max(map(len, lines)) <= 80
    assert "…" not in text
    words = set(text.split())
    for name in ("main", "control:couple_env"):  # whole in the conditions, controls and no-signalling tables
        assert sum(name in line.split()[:2] for line in lines) >= 3, name
    for reason in result.verdict.reasons:  # the reasons wrap at spaces: every word whole
        missing = [w for w in reason.split() if w not in words]
        assert not missing, (reason, missing)
    assert f"level: {result.verdict.level}" in text


@pytest.mark.filterwarnings("error::RuntimeWarning")  # the control's unbounded MI interval once overflowed the axis
def test_the_report_puts_the_verdict_first_and_holds_at_390_px(result, tmp_path):
    path = tmp_path / "r.html"
    write_report(result, path)
    page_html = path.read_text()
    level = result.verdict.level
    assert level == "dependence"  # the data were made dependent; no control shown exceeded
    assert re.search(r"</h1><section class='verdict level-dependence' aria-label='verdict'><p class='level'>"
                     r"Verdict: <b>dependence</b>", page_html)
    imgs = re.findall(r"<img [^>]*>", page_html)
    assert len(imgs) >= 3
    for img in imgs:
        alt = re.search(r"alt='([^']*)'", img)
        assert alt and len(alt.group(1)) > 40, img[-200:]
    assert "name='viewport'" in page_html
    pw, browser = _browser()
    try:
        for width in (390, 1280):
            page = browser.new_page(viewport={"width": width, "height": 844})
            page.goto(path.as_uri())
            assert page.evaluate("document.documentElement.scrollWidth") <= width  # no sideways scrolling
            box = page.locator("section.verdict").bounding_box()
            assert box["y"] < 200 and box["x"] + box["width"] <= width  # at the top, on screen
            assert "Verdict: dependence" in page.locator("section.verdict").inner_text()
            for el in page.locator("img").all():
                b = el.bounding_box()
                assert b["x"] + b["width"] <= width, b
            if width == 390:
                page.screenshot(path=str(tmp_path / "report-390.png"), full_page=False)
            page.close()
    finally:
        browser.close()
        pw.stop()


def test_an_interval_end_from_an_infinite_resample_is_reported_unbounded(result):
    """The 8-trial control's resamples that repeat one or two trials have infinite MI; the upper
    end interpolated next to them once came out as 8.99e307 nats, a number, not infinity."""
    low, high = result.conditions["control:couple_env"]["mi"]["ci"]
    assert 0 < low < 1 and high == float("inf")
    assert result.to_dict()["conditions"]["control:couple_env"]["mi"]["ci"][1] is None  # JSON: unbounded
