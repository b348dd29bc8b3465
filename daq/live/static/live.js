/* corrlab live view: reads the state from /events (server-sent events) and draws it. */
"use strict";
(() => {
  const $ = id => document.getElementById(id);
  const COLORS = { "main": "#0b62a4", "control:break_L": "#c62828", "control:perturb_C": "#b26a00",
                   "control:couple_env": "#6a3fb5" };
  const palette = ["#0b62a4", "#c62828", "#b26a00", "#6a3fb5", "#1a7f37", "#7a7f87"];
  const colorOf = (c, i) => COLORS[c] || palette[i % palette.length];
  let state = null;

  function duration(s) {
    if (s === null || s === undefined) return "-";
    s = Math.round(s);
    const h = Math.floor(s / 3600), m = Math.floor(s % 3600 / 60), r = s % 60;
    return h ? `${h} h ${m} min` : m ? `${m} min ${r} s` : `${r} s`;
  }
  const num = (v, d) => v === null || v === undefined ? "-" : Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-3 && v !== 0) ? v.toExponential(d || 3) : v.toPrecision(d || 4);
  const text = (el, t) => { if (el.textContent !== String(t)) el.textContent = t; };
  function esc(s) { return String(s === null || s === undefined ? "" : s).replace(/[&<>"]/g, c => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;" }[c])); }

  function header(s) {
    const r = s.run;
    text($("run-id"), r.run_id ? `${r.run_id}${r.protocol ? " (" + r.protocol + ")" : ""}` : "corrlab live: waiting for a run");
    const st = $("status"); text(st, r.status || "-"); st.className = "badge " + (r.status || "");
    text($("trials-done"), r.done); text($("trials-total"), r.total === null ? "?" : r.total);
    text($("rate"), r.rate_per_s ? `${num(r.rate_per_s, 3)} trials/s` : "-");
    text($("eta"), r.status === "running" ? duration(r.eta_s) : r.status === "waiting" ? "-" : "0 s");
    text($("faults"), (s.counts.fault || 0) + (s.counts.outage ? `, ${s.counts.outage} outage(s)` : ""));
    const pct = r.total ? Math.min(100, 100 * r.done / r.total) : 0;
    $("progress-fill").style.width = pct + "%"; $("progress").setAttribute("aria-valuenow", pct.toFixed(0));
    const reason = $("reason");
    reason.hidden = !r.reason || r.status === "running" || r.status === "complete";
    text(reason, r.reason || "");
    const cur = s.current && s.current.name ? `now: ${s.current.name}` + (s.current.trial !== null ? `, trial ${s.current.trial}` : "") : "";
    text($("current-step"), cur);
    text($("observable"), `each point and statistic: ${r.observable}`);
    const v = s.view;
    text($("view-note"), "read-only view on 127.0.0.1; the run does not wait for it" +
      (v.dropped ? `; ${v.dropped} update(s) dropped while the view fell behind` : "") + (v.error ? `; view error: ${v.error}` : ""));
  }

  function steps(s) {
    const ol = $("steps");
    const html = s.steps.map(st => {
      const current = s.current && s.current.name === st.name;
      const cls = [st.outcome || "", current ? "current" : ""].join(" ");
      const t = current && s.current.trial !== null ? ` (trial ${s.current.trial}: running)`
        : st.trial !== null && st.trial !== undefined ? ` (trial ${st.trial})` : "";
      const last = current && st.outcome ? `last check (trial ${st.trial}) ` : "";
      return `<li class="${cls}" data-step="${esc(st.name)}"><b>${esc(st.name)}${esc(t)}</b><span>${esc(last)}${esc(st.outcome || "not yet")}${st.message ? ": " + esc(st.message) : ""}</span></li>`;
    }).join("");
    if (ol.innerHTML !== html) ol.innerHTML = html;
  }

  function traces(s) {
    const c = $("traces");
    const series = [];
    const n = s.traces.length;
    s.traces.forEach((tr, i) => {
      const latest = i === n - 1, alpha = latest ? 1 : 0.25;
      const tms = tr.t.map(v => v === null ? null : v * 1e3);
      series.push({ name: latest ? `X_A (trial ${tr.trial}, ${tr.condition})` : "", color: "#0b62a4", x: tms, y: tr.x_a, alpha });
      series.push({ name: latest ? "X_B" : "", color: "#c62828", x: tms, y: tr.x_b, alpha });
    });
    const drawn = Plot.draw(c, { xlabel: "time in trial t (ms)", ylabel: "lock-in output X (V)", series, empty: "no trial yet" });
    c.dataset.points = drawn;
    const last = s.traces[n - 1];
    c.setAttribute("aria-label", last ? `X_A and X_B against time for trial ${last.trial} (${last.condition}), ${last.t.length} points each, and the ${n - 1} trial(s) before in pale colours` : "traces: no trial yet");
  }

  function scatter(s) {
    const c = $("scatter");
    const series = Object.entries(s.scatter).map(([cond, pts], i) => ({
      name: `${cond} (${pts.length})`, color: colorOf(cond, i), mode: "points", alpha: 0.7,
      x: pts.map(p => p[0]), y: pts.map(p => p[1]) }));
    const drawn = Plot.draw(c, { xlabel: "X_A per trial (V)", ylabel: "X_B per trial (V)", series, empty: "no trial yet" });
    c.dataset.points = drawn;
    const parts = Object.entries(s.stats).map(([k, v]) => `${k}: ${v.n} trials, r = ${v.r === null ? "n/a" : v.r}`);
    c.setAttribute("aria-label", drawn ? `scatter of the per-trial X_A against X_B by condition; ${parts.join("; ")}` : "scatter: no trial yet");
  }

  function temperature(s) {
    const c = $("temperature");
    const pts = s.temperature.points, band = s.temperature.band;
    const series = [{ name: "T (stabilize reads and suspensions)", color: "#1b1f24", mode: "points", radius: 2,
                      x: pts.map(p => p[0]), y: pts.map(p => p[1]) }];
    const opts = { xlabel: "time since the run started (s)", ylabel: "temperature T (K)", series, empty: "no reading yet" };
    if (band) {
      opts.band = { lo: band.setpoint_k - band.tolerance_k, hi: band.setpoint_k + band.tolerance_k,
                    label: `criterion ${band.setpoint_k} ± ${band.tolerance_k} K` };
      opts.hline = { y: band.setpoint_k };
    }
    const drawn = Plot.draw(c, opts);
    c.dataset.points = drawn;
    const last = pts[pts.length - 1];
    c.setAttribute("aria-label", last ? `temperature against time, ${pts.length} readings, latest ${last[1]} K` + (band ? `; the stabilize criterion is ${band.setpoint_k} ± ${band.tolerance_k} K` : "") : "temperature: no reading yet");
  }

  function stats(s) {
    const rows = Object.entries(s.stats).map(([k, v]) =>
      `<tr><td>${esc(k)}</td><td>${v.n}</td><td>${v.r === null ? "-" : v.r.toFixed(3)}</td><td>${num(v.mean_a)}</td><td>${num(v.mean_b)}</td><td>${num(v.var_a)}</td><td>${num(v.var_b)}</td><td>${v.f_rate === null ? "-" : v.f_rate.toFixed(2)}</td></tr>`).join("");
    const tb = $("stats").tBodies[0];
    if (tb.innerHTML !== rows) tb.innerHTML = rows;
    const panels = s.panels.filter(p => p.error || Object.keys(p.rows || {}).length).map(p => {
      const rows = Object.entries(p.rows || {});
      const cols = [];
      for (const [, r] of rows) for (const k of Object.keys(r || {})) if (!cols.includes(k)) cols.push(k);
      const body = rows.map(([name, r]) => `<tr><td>${esc(name)}</td>${cols.map(k => `<td>${esc(typeof r[k] === "number" ? num(r[k]) : r[k])}</td>`).join("")}</tr>`).join("");
      return `<div class="panel"><h3>${esc(p.title)}</h3>${p.error ? `<p class="error">${esc(p.error)}</p>` : ""}<div class="scroll"><table><thead><tr><th></th>${cols.map(k => `<th>${esc(k)}</th>`).join("")}</tr></thead><tbody>${body}</tbody></table></div></div>`;
    }).join("");
    if ($("panels").innerHTML !== panels) $("panels").innerHTML = panels;
  }

  function journal(s) {
    const html = s.journal.slice().reverse().map(e =>
      `<li class="${esc(e.step)} ${esc(e.outcome)}"><span class="tag">${esc(e.step)}</span> ${e.trial !== null && e.trial !== undefined ? "trial " + esc(e.trial) + ": " : ""}${esc(e.message || e.outcome)}${e.time_s !== null ? ` <small>(+${e.time_s.toFixed(1)} s)</small>` : ""}</li>`).join("");
    const ol = $("journal");
    if (ol.innerHTML !== html) ol.innerHTML = html || "<li>nothing yet</li>";
  }

  function campaign(s) {
    const sec = $("campaign");
    sec.hidden = !s.campaign;
    if (!s.campaign) return;
    text($("campaign-name"), s.campaign.name || "");
    const rows = s.campaign.queue.map(e => `<tr><td>${e.index}</td><td>${esc(e.run_id)}</td><td>${esc(e.status)}</td><td>${e.trials_committed}/${e.trials_planned === null ? "?" : e.trials_planned}</td><td>${e.faults}</td><td>${esc(e.verdict || "-")}</td></tr>`).join("");
    const tb = $("queue").tBodies[0];
    if (tb.innerHTML !== rows) tb.innerHTML = rows;
  }

  function render() {
    if (!state) return;
    for (const f of [header, stopState, steps, traces, scatter, temperature, stats, journal, campaign]) {
      try { f(state); } catch (e) { console.error(f.name, e); }
    }
  }

  function connect() {
    const es = new EventSource("/events");
    es.onopen = () => { const l = $("link"); l.textContent = "live"; l.className = "link up"; };
    es.onmessage = ev => { state = JSON.parse(ev.data); requestAnimationFrame(render); };
    es.onerror = () => {
      const l = $("link");
      const over = state && state.run.status !== "running";
      l.textContent = over ? "run over: view closed (replay with corrlab watch)" : "disconnected, retrying";
      l.className = "link";
      if (over) es.close();
    };
  }
  // the stop control: only when the URL carries this run's token (corrlab run --live --live-control)
  const token = new URLSearchParams(location.search).get("token");
  const stop = $("stop");
  function stopState(s) {
    if (!token) return;
    const running = s.run.status === "running";
    stop.hidden = false;
    stop.disabled = !running || s.view.stop_requested;
    text(stop, s.view.stop_requested ? (running ? "stopping after this trial" : "stopped") : "Stop after this trial");
  }
  stop.addEventListener("click", async () => {
    if (!confirm("Stop the run after the trial in progress? The bench goes to its safe state; the run can be resumed with corrlab run --resume.")) return;
    stop.disabled = true;
    const resp = await fetch("/stop?token=" + encodeURIComponent(token), { method: "POST" });
    text(stop, resp.ok ? "stopping after this trial" : `refused (${resp.status})`);
  });
  window.addEventListener("resize", () => requestAnimationFrame(render));
  connect();
})();
