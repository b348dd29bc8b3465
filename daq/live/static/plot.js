/* corrlab's small canvas plots: lines and scatters with titled axes, units, "nice" ticks,
   a legend and an optional horizontal band. No dependencies, no network. */
"use strict";
const Plot = (() => {
  function niceStep(span, target) {
    const raw = span / Math.max(target, 1);
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const f = raw / mag;
    return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag;
  }
  function ticks(lo, hi, target) {
    if (!(hi > lo)) { const d = Math.abs(lo) * 0.1 || 1; lo -= d; hi += d; }
    const step = niceStep(hi - lo, target);
    const out = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
    return { lo, hi, step, values: out };
  }
  function fmt(v, step) {
    const a = Math.abs(step);
    if (a >= 1e-3 && a < 1e5) { const d = Math.max(0, -Math.floor(Math.log10(a) + 1e-9)); return v.toFixed(d); }
    return v.toExponential(1).replace("e+", "e");
  }
  function extent(values, pad) {
    let lo = Infinity, hi = -Infinity;
    for (const v of values) { if (v !== null && isFinite(v)) { if (v < lo) lo = v; if (v > hi) hi = v; } }
    if (lo === Infinity) return null;
    const d = (hi - lo) * (pad || 0.05) || Math.abs(hi) * 0.05 || 1;
    return [lo - d, hi + d];
  }
  function setup(canvas) {
    const dpr = window.devicePixelRatio || 1;
    const w = canvas.clientWidth || 400, h = canvas.clientHeight || 260;
    if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
      canvas.width = Math.round(w * dpr); canvas.height = Math.round(h * dpr);
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    ctx.font = "12px system-ui, sans-serif";
    return { ctx, w, h };
  }
  function legendRows(ctx, items, width) {
    if (!items.length) return 0;
    let rows = 1, x = 0;
    for (const [name] of items) {
      const tw = ctx.measureText(name).width + 26;
      if (x > 0 && x + tw - 10 > width) { rows++; x = 0; }
      x += tw;
    }
    return rows;
  }
  /* opts: {xlabel, ylabel, series: [{name, color, x: [], y: [], mode: "line"|"points", alpha}],
            band: {lo, hi, label}, hline: {y, label}, xrange, yrange} */
  function draw(canvas, opts) {
    const { ctx, w, h } = setup(canvas);
    const xs = [], ys = [];
    let count = 0;
    for (const s of opts.series) { xs.push(...s.x); ys.push(...s.y); count += s.x.length; }
    if (opts.band) ys.push(opts.band.lo, opts.band.hi);
    const xr = opts.xrange || extent(xs, 0.02), yr = opts.yrange || extent(ys, 0.08);
    const items = opts.series.filter(s => s.name).map(s => [s.name, s.color]);
    if (opts.band && opts.band.label) items.push([opts.band.label, "rgba(26,127,55,0.35)"]);
    const m = { l: 64, r: 10, t: 10 + 16 * legendRows(ctx, items, w - 64), b: 40 };
    const pw = w - m.l - m.r, ph = h - m.t - m.b;
    ctx.fillStyle = "#5b6470";
    if (!xr || !yr || pw < 20 || ph < 20) {
      ctx.fillText(opts.empty || "no data yet", m.l, m.t + 20);
      return 0;
    }
    const tx = ticks(xr[0], xr[1], Math.max(2, Math.floor(pw / 80))), ty = ticks(yr[0], yr[1], Math.max(2, Math.floor(ph / 40)));
    const X = v => m.l + (v - tx.lo) / (tx.hi - tx.lo) * pw, Y = v => m.t + ph - (v - ty.lo) / (ty.hi - ty.lo) * ph;
    // band
    if (opts.band) {
      ctx.fillStyle = "rgba(26,127,55,0.12)";
      const y0 = Y(opts.band.hi), y1 = Y(opts.band.lo);
      ctx.fillRect(m.l, y0, pw, y1 - y0);
    }
    // grid and ticks
    ctx.strokeStyle = "#e6e9ed"; ctx.lineWidth = 1; ctx.fillStyle = "#5b6470";
    ctx.textAlign = "center"; ctx.textBaseline = "top";
    for (const v of tx.values) { const x = X(v); ctx.beginPath(); ctx.moveTo(x, m.t); ctx.lineTo(x, m.t + ph); ctx.stroke(); ctx.fillText(fmt(v, tx.step), x, m.t + ph + 4); }
    ctx.textAlign = "right"; ctx.textBaseline = "middle";
    for (const v of ty.values) { const y = Y(v); ctx.beginPath(); ctx.moveTo(m.l, y); ctx.lineTo(m.l + pw, y); ctx.stroke(); ctx.fillText(fmt(v, ty.step), m.l - 4, y); }
    ctx.strokeStyle = "#8a939d"; ctx.strokeRect(m.l, m.t, pw, ph);
    if (opts.hline) {
      ctx.strokeStyle = "#1a7f37"; ctx.setLineDash([4, 3]); ctx.beginPath();
      ctx.moveTo(m.l, Y(opts.hline.y)); ctx.lineTo(m.l + pw, Y(opts.hline.y)); ctx.stroke(); ctx.setLineDash([]);
    }
    // axis labels
    ctx.fillStyle = "#1b1f24"; ctx.textAlign = "center"; ctx.textBaseline = "bottom";
    ctx.fillText(opts.xlabel || "", m.l + pw / 2, h - 2);
    ctx.save(); ctx.translate(12, m.t + ph / 2); ctx.rotate(-Math.PI / 2); ctx.textBaseline = "middle";
    ctx.fillText(opts.ylabel || "", 0, 0); ctx.restore();
    // data
    ctx.save(); ctx.beginPath(); ctx.rect(m.l, m.t, pw, ph); ctx.clip();
    for (const s of opts.series) {
      ctx.globalAlpha = s.alpha || 1;
      ctx.strokeStyle = ctx.fillStyle = s.color;
      if (s.mode === "points") {
        const r = s.radius || 2.5;
        for (let i = 0; i < s.x.length; i++) {
          if (s.x[i] === null || s.y[i] === null) continue;
          ctx.beginPath(); ctx.arc(X(s.x[i]), Y(s.y[i]), r, 0, 2 * Math.PI); ctx.fill();
        }
      } else {
        ctx.lineWidth = s.width || 1.2; ctx.beginPath();
        let pen = false;
        for (let i = 0; i < s.x.length; i++) {
          if (s.x[i] === null || s.y[i] === null) { pen = false; continue; }
          if (pen) ctx.lineTo(X(s.x[i]), Y(s.y[i])); else { ctx.moveTo(X(s.x[i]), Y(s.y[i])); pen = true; }
        }
        ctx.stroke();
      }
    }
    ctx.restore(); ctx.globalAlpha = 1;
    // legend (wraps onto more lines when narrow; the plot area starts below it)
    if (items.length) {
      let x = m.l, y = 11; ctx.textAlign = "left"; ctx.textBaseline = "middle";
      for (const [name, color] of items) {
        const tw = ctx.measureText(name).width;
        if (x > m.l && x + tw + 16 > w) { x = m.l; y += 16; }
        ctx.fillStyle = color; ctx.fillRect(x, y - 5, 10, 10);
        ctx.fillStyle = "#1b1f24"; ctx.fillText(name, x + 13, y);
        x += tw + 26;
      }
    }
    return count;
  }
  return { draw, ticks, fmt };
})();
