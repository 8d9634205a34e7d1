// Outcome Loop dashboard: plain JavaScript, no build step. Reads /dashboard/api/...,
// draws charts with the vendored uPlot, and sends operator actions with a bearer token.
"use strict";

(function () {
  const API = "/dashboard/api";
  const REFRESH_MS = 15000;
  const COLOURS = ["#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2", "#ff9da6", "#9d755d"];
  const state = { overview: null, charts: [], choices: {}, busy: false };

  // -- small helpers -------------------------------------------------------------------

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else if (k === "dataset") Object.assign(node.dataset, v);
      else node.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  function num(v) {
    if (v === null || v === undefined || Number.isNaN(v)) return "-";
    if (typeof v !== "number") return String(v);
    const a = Math.abs(v);
    if (a !== 0 && (a < 0.001 || a >= 1e6)) return v.toExponential(2);
    if (Number.isInteger(v)) return String(v);
    return a >= 100 ? v.toFixed(1) : v.toPrecision(4).replace(/\.?0+$/, "");
  }

  function when(iso) {
    if (!iso) return "-";
    const d = new Date(iso);
    const pad = (n) => String(n).padStart(2, "0");
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
      `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }

  function span(seconds) {
    if (seconds === null || seconds === undefined) return "-";
    const s = Math.abs(seconds);
    if (s < 120) return `${seconds.toFixed(s < 10 ? 1 : 0)} s`;
    if (s < 7200) return `${(seconds / 60).toFixed(0)} min`;
    if (s < 172800) return `${(seconds / 3600).toFixed(1)} h`;
    return `${(seconds / 86400).toFixed(1)} d`;
  }

  function badge(value) {
    return el("span", { class: `badge ${value || ""}`, text: value || "-" });
  }

  function say(text, ok) {
    const box = document.getElementById("message");
    box.textContent = text;
    box.className = ok ? "ok" : "bad";
    box.hidden = !text;
  }

  async function getJSON(path) {
    const res = await fetch(API + path, { headers: { Accept: "application/json" } });
    const body = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(body.error || `${res.status} ${res.statusText}`);
    return body;
  }

  // -- the operator: token asked once per browser tab -----------------------------------

  const session = {
    get token() { return sessionStorage.getItem("ol.token"); },
    get name() { return sessionStorage.getItem("ol.name") || "dashboard"; },
    set(token, name) {
      sessionStorage.setItem("ol.token", token);
      sessionStorage.setItem("ol.name", name || "dashboard");
    },
    forget() { sessionStorage.removeItem("ol.token"); },
  };

  function showOperator() {
    const actions = state.overview && state.overview.actions;
    document.getElementById("readonly").hidden = !!actions;
    document.getElementById("login").hidden = !actions || !!session.token;
    document.getElementById("session").hidden = !actions || !session.token;
    document.getElementById("who").textContent = session.name;
  }

  async function login(event) {
    event.preventDefault();
    const token = document.getElementById("token").value.trim();
    const name = document.getElementById("name").value.trim();
    const res = await fetch(`${API}/session`, {
      method: "POST",
      headers: { Authorization: `Bearer ${token}` },
    });
    const body = await res.json().catch(() => ({}));
    if (!res.ok) {
      say(body.error || `token refused (${res.status})`, false);
      return;
    }
    session.set(token, name);
    document.getElementById("token").value = "";
    say(`token accepted: acting as ${session.name}`, true);
    showOperator();
  }

  async function act(action, model, version) {
    if (!session.token) {
      say("enter the operator token (top right) first", false);
      document.getElementById("token").focus();
      return;
    }
    const what = version ? `${action} ${model} ${version}` : `${action} ${model}`;
    if (!window.confirm(`${what}?`)) return;
    state.busy = true;
    say(`${what}: sent, waiting for the worker's answer…`, true);
    document.querySelectorAll("button.act").forEach((b) => { b.disabled = true; });
    try {
      const res = await fetch(`${API}/models/${encodeURIComponent(model)}/${action}`, {
        method: "POST",
        headers: { Authorization: `Bearer ${session.token}`, "Content-Type": "application/json" },
        body: JSON.stringify({ version, issued_by: session.name, reason: "from the dashboard" }),
      });
      const body = await res.json().catch(() => ({}));
      if (res.status === 401) {
        session.forget();
        showOperator();
      }
      const detail = body.detail || body.error || res.statusText;
      say(`${what}: ${body.status || res.status}${detail ? ": " + detail : ""}`, res.ok);
    } catch (err) {
      say(`${what}: ${err}`, false);
    } finally {
      state.busy = false;
      await refresh();
    }
  }

  function actionButton(action, model, version, label) {
    if (!state.overview || !state.overview.actions) return null;
    return el("button", {
      type: "button",
      class: `act ${action}`,
      dataset: { action, model, version: version || "" },
      onclick: () => act(action, model, version),
      text: label,
    });
  }

  // -- charts --------------------------------------------------------------------------

  // Lines that each have their own times, on one x axis: the union of the times, with
  // gaps (null) where a line has no point.
  function align(lines) {
    const xs = [...new Set(lines.flatMap((l) => l.t))].sort((a, b) => a - b);
    const index = new Map(xs.map((x, i) => [x, i]));
    const ys = lines.map((l) => {
      const y = new Array(xs.length).fill(null);
      l.t.forEach((t, i) => { y[index.get(t)] = l.v[i]; });
      return y;
    });
    return [xs, ...ys];
  }

  function chart(target, title, lines, opts) {
    const box = el("div", { class: "chart" });
    target.append(box);
    const points = lines.reduce((n, l) => n + l.t.length, 0);
    box.dataset.points = String(points);
    if (!points) {
      box.append(el("div", { class: "empty", text: `${title}: no data yet` }));
      return;
    }
    const width = Math.max(280, (target.clientWidth || 500) - 10);
    const series = [{}].concat(lines.map((l, i) => ({
      label: l.label,
      stroke: l.colour || COLOURS[i % COLOURS.length],
      width: l.width || 2,
      dash: l.dash,
      spanGaps: true,
      paths: l.pointsOnly ? () => null : undefined,
      points: l.pointsOnly ? { show: true, size: 8, fill: l.colour, stroke: l.colour } : { show: false },
      value: (u, v) => num(v),
    })));
    const plot = new uPlot({
      title,
      width,
      height: (opts && opts.height) || 220,
      // One point (or one instant) still gets a readable minute of axis around it.
      scales: { x: { time: true, range: (u, min, max) => (min === max ? [min - 60, max + 60] : [min, max]) } },
      series,
      axes: [{}, { values: (u, vals) => vals.map(num), size: 60 }],
      legend: { live: true },
    }, align(lines), box);
    state.charts.push(plot);
  }

  // -- sections ------------------------------------------------------------------------

  function pendingCard(p) {
    const tw = p.training_window || {};
    const part = (x) => (x && x.n ? `${when(x.from)} → ${when(x.to)} (${x.n} rows)` : "none");
    const metrics = Object.entries(p.metrics || {});
    const gates = p.gate_report || [];
    return el("div", { class: "card pending", dataset: { model: p.model, version: p.version } },
      el("div", { class: "model-head" },
        el("h3", {}, `${p.model} `, el("b", { text: p.version }), " ", badge("candidate")),
        el("span", { class: "muted" },
          `${p.kind}, run ${p.run_id ?? "-"}, from ${p.parent_version || "-"}, created ${when(p.created_at)}`,
          p.expires_in_seconds !== null
            ? `, expires ${when(p.expires_at)} (${p.expires_in_seconds > 0 ? "in " + span(p.expires_in_seconds) : "due"})`
            : ""),
        el("span", { class: "actions" },
          actionButton("approve", p.model, p.version, "Approve"), " ",
          actionButton("reject", p.model, p.version, "Reject"))),
      el("div", { class: "grid" },
        el("div", {},
          el("h3", { text: "Training window" }),
          el("table", {},
            el("tr", {}, el("th", { text: "train" }), el("td", { text: part(tw.train) })),
            el("tr", {}, el("th", { text: "validation" }), el("td", { text: part(tw.validation) })),
            tw.recent && tw.recent.n ? el("tr", {}, el("th", { text: "recent" }), el("td", { text: part(tw.recent) })) : null,
            el("tr", {}, el("th", { text: "samples" }),
              el("td", { text: Object.entries(p.samples || {}).map(([k, v]) => `${k} ${v}`).join(", ") || "-" })),
            el("tr", {}, el("th", { text: "trigger" }),
              el("td", { text: p.trigger ? `${p.trigger.kind || "-"} by ${p.trigger.by || "-"}` : "-" })))),
        el("div", {},
          el("h3", { text: "Metrics" }),
          el("table", {}, metrics.map(([k, v]) => el("tr", {}, el("th", { text: k }), el("td", { class: "num", text: num(v) })))))),
      el("h3", { text: "Gate report" }),
      el("table", { class: "gates" },
        el("tr", {}, el("th", { text: "gate" }), el("th", { text: "passed" }), el("th", { text: "reason" })),
        gates.map((g) => el("tr", {},
          el("td", { text: g.name }),
          el("td", {}, badge(g.passed ? "ok" : "bad")),
          el("td", { text: g.reason || "" })))));
  }

  function renderPending(list) {
    const box = document.getElementById("pending");
    box.replaceChildren();
    if (!list.length) {
      box.append(el("p", { class: "muted", text: "no candidate waits for approval" }));
      return;
    }
    for (const p of list) box.append(pendingCard(p));
  }

  function loopBox(m) {
    const r = m.retrain;
    if (!r) return el("div", {}, el("h3", { text: "Retrain loop" }), el("p", { class: "muted", text: "no state yet" }));
    const rows = [
      ["state", badge(r.state)],
      ["since", when(r.since)],
      ["why", r.reason || "-"],
      ["opened by", r.trigger || "-"],
      ["version replaced", r.version || "-"],
      ["change began", when(r.change_at)],
      ["attempts", String(r.attempts)],
      ["next attempt", when(r.next_attempt_at)],
      ["paused", r.paused ? `yes (${r.paused_by || "?"}: ${r.paused_reason || ""})` : "no"],
    ];
    return el("div", { class: "loop" }, el("h3", { text: "Retrain loop" }),
      el("table", {}, rows.map(([k, v]) => el("tr", {}, el("th", { text: k }), el("td", {}, v)))));
  }

  function lagBox(m) {
    const l = m.lag;
    const total = l.predictions_in_window || 0;
    const pct = (n) => (total ? (100 * n) / total : 0);
    const bar = el("div", { class: "bar", title: "join completeness" });
    for (const [cls, n] of [["with", l.with_outcome], ["none", l.no_outcome], ["pend", l.pending_in_window]]) {
      const s = el("span", { class: cls });
      s.style.width = `${pct(n)}%`;
      bar.append(s);
    }
    const d = l.label_delay_seconds;
    return el("div", { class: "lag" },
      el("h3", { text: `Label lag and completeness (last ${span(l.window_seconds)})` }),
      el("table", {},
        el("tr", {}, el("th", { text: "label delay p50 / p90 / p99" }),
          el("td", { text: d ? `${span(d.p50)} / ${span(d.p90)} / ${span(d.p99)}` : "-" })),
        el("tr", {}, el("th", { text: "predictions" }), el("td", { class: "num", text: String(total) }))),
      bar,
      el("div", { class: "muted" },
        el("span", { class: "legend-dot with" }), `outcome ${pct(l.with_outcome).toFixed(0)}%  `,
        el("span", { class: "legend-dot none" }), `no outcome ${pct(l.no_outcome).toFixed(0)}%  `,
        el("span", { class: "legend-dot pend" }), `pending ${pct(l.pending_in_window).toFixed(0)}%`),
      el("p", { class: "muted",
        text: `${l.pending_total} pending in all; oldest ${l.oldest_pending_at ? when(l.oldest_pending_at) + " (" + span(l.oldest_pending_seconds) + " ago)" : "-"}` }));
  }

  function qualitySection(m, q, target) {
    const choice = state.choices[m.model] || {};
    const select = el("select", {
      onchange: (e) => {
        const [window, metric] = e.target.value.split("|");
        state.choices[m.model] = { ...choice, window, metric };
        refresh();
      },
    }, q.choices.map((c) => el("option", {
      value: `${c.window}|${c.metric}`,
      selected: c.window === q.window && c.metric === q.metric,
      text: `${c.metric} over ${c.window}`,
    })));
    target.append(el("div", { class: "chart-tools" }, el("b", { text: "Rolling quality" }), q.choices.length ? select : null));
    const lines = Object.entries(q.series).map(([version, s], i) => ({
      label: version === m.champion ? `${version} (champion)` : version,
      t: s.t, v: s.v, colour: COLOURS[i % COLOURS.length],
    }));
    const xs = lines.flatMap((l) => l.t);
    for (const b of q.bounds) {
      if (b.value === null || !xs.length) continue;
      const t = [Math.min(...xs), Math.max(...xs)];
      lines.push({ label: `alert ${b.direction} ${num(b.value)}`, t, v: [b.value, b.value], colour: "#a33", dash: [6, 4], width: 1 });
    }
    if (q.alerts.length) {
      lines.push({ label: "alert", t: q.alerts.map((a) => a.t), v: q.alerts.map((a) => a.v), colour: "#d62728", pointsOnly: true });
    }
    chart(target, `${m.model}: ${q.metric} over ${q.window}, by version`, lines);
    const shadow = Object.entries(q.shadow);
    if (shadow.length) {
      const first = shadow[0][1];
      chart(target, `Shadow challengers vs the champion (${first.metric}, ${first.window}, same examples)`,
        shadow.map(([label, s], i) => ({
          label, t: s.t, v: s.v, colour: COLOURS[(i + 3) % COLOURS.length],
          dash: label.startsWith("champion") ? [4, 3] : undefined,
        })), { height: 180 });
    }
  }

  function driftSection(m, d, target) {
    const choice = state.choices[m.model] || {};
    const tools = el("div", { class: "chart-tools" }, el("b", { text: "Drift per feature" }));
    if (d.versions.length) {
      tools.append(el("select", {
        onchange: (e) => { state.choices[m.model] = { ...choice, version: e.target.value }; refresh(); },
      }, d.versions.map((v) => el("option", { value: v, selected: v === d.version, text: `version ${v}` }))));
    }
    target.append(tools);
    if (!d.features.length) {
      target.append(el("div", { class: "empty", text: "no drift checks yet" }));
      return;
    }
    const grid = el("div", { class: "drift-grid" });
    target.append(grid);
    // Every cell first, so each chart is sized to its column of the finished grid.
    const cells = d.features.map((f) => el("div", { class: "drift-feature", dataset: { feature: f.feature } }));
    grid.append(...cells);
    d.features.forEach((f, n) => {
      const cell = cells[n];
      const drifted = { t: [], v: [] };
      f.t.forEach((t, i) => { if (f.drifted[i]) { drifted.t.push(t); drifted.v.push(f.statistic[i]); } });
      const lines = [
        { label: f.method, t: f.t, v: f.statistic, colour: "#4c78a8" },
        { label: "threshold", t: f.t, v: f.threshold, colour: "#a33", dash: [6, 4], width: 1 },
      ];
      if (drifted.t.length) lines.push({ label: "drifted", t: drifted.t, v: drifted.v, colour: "#d62728", pointsOnly: true });
      chart(cell, `${f.feature}${f.drifted_now ? " — drifting" : ""}`, lines, { height: 160 });
    });
  }

  function stages(durations) {
    const entries = Object.entries(durations || {});
    const total = entries.reduce((s, [, v]) => s + Number(v), 0);
    const bar = el("div", { class: "stages", title: entries.map(([k, v]) => `${k} ${Number(v).toFixed(2)} s`).join(", ") });
    for (const [, v] of entries) {
      const s = el("span");
      s.style.width = `${total ? (100 * Number(v)) / total : 0}%`;
      bar.append(s);
    }
    return bar;
  }

  function timelineSection(m, tl, target) {
    target.append(el("h3", { text: "Timeline: versions, runs, promotions" }));
    if (!tl.events.length) {
      target.append(el("div", { class: "empty", text: "nothing yet" }));
      return;
    }
    const rows = tl.events.slice(0, 60).map((e) => {
      let what;
      let detail;
      if (e.kind === "version") {
        const v = e.version;
        what = el("span", {}, "version ", el("b", { text: v.version }), " ", badge(v.status));
        detail = `${v.kind}${v.parent_version ? ", from " + v.parent_version : ""}` +
          `${v.decided_by ? ", decided by " + v.decided_by : ""}` +
          (Object.keys(v.metrics).length ? "; " + Object.entries(v.metrics).map(([k, x]) => `${k} ${num(x)}`).join(", ") : "");
      } else if (e.kind === "run") {
        const r = e.run;
        what = el("span", {}, `run ${r.id} `, badge(r.status));
        const why = r.failed_gate ? `gate ${r.failed_gate.name}: ${r.failed_gate.reason}` : (r.error || "");
        detail = el("details", {},
          el("summary", {}, `${r.trigger}${r.candidate_version ? " → " + r.candidate_version : ""}, ` +
            `${r.rows ?? "-"} rows, ${num(r.seconds)} s${why ? "; " + why : ""}`),
          stages(r.durations),
          el("table", {},
            el("tr", {}, el("th", { text: "stage" }), el("th", { text: "seconds" })),
            Object.entries(r.durations).map(([k, v]) => el("tr", {}, el("td", { text: k }), el("td", { class: "num", text: num(Number(v)) })))),
          el("table", {},
            el("tr", {}, el("th", { text: "gate" }), el("th", { text: "passed" }), el("th", { text: "reason" })),
            r.gate_report.map((g) => el("tr", {}, el("td", { text: g.name }), el("td", {}, badge(g.passed ? "ok" : "bad")), el("td", { text: g.reason || "" })))));
      } else {
        const p = e.promotion;
        what = el("span", {}, e.kind === "rollback" ? "rollback to " : "champion ", el("b", { text: p.version }));
        detail = `${p.previous_version ? "was " + p.previous_version + "; " : ""}by ${p.set_by}${p.reason ? ": " + p.reason : ""}`;
      }
      return el("tr", { class: `event ${e.kind}` }, el("td", { text: when(e.at) }), el("td", {}, what), el("td", {}, detail));
    });
    target.append(el("table", { class: "timeline" },
      el("tr", {}, el("th", { text: "when" }), el("th", { text: "what" }), el("th", { text: "details" })), rows));
  }

  async function renderModel(m, container) {
    const choice = state.choices[m.model] || {};
    const qs = choice.window ? `?window=${encodeURIComponent(choice.window)}&metric=${encodeURIComponent(choice.metric)}` : "";
    const ds = choice.version ? `?version=${encodeURIComponent(choice.version)}` : "";
    const name = encodeURIComponent(m.model);
    const [q, d, tl] = await Promise.all([
      getJSON(`/models/${name}/quality${qs}`),
      getJSON(`/models/${name}/drift${ds}`),
      getJSON(`/models/${name}/timeline`),
    ]);
    const card = el("section", { class: "card model", dataset: { model: m.model } },
      el("div", { class: "model-head" },
        el("h2", { text: m.model }),
        el("span", { class: "muted" },
          `${m.task || "not configured"}, promotion ${m.promotion || "-"}, champion `, el("b", { text: m.champion || "-" }),
          `, ${m.versions} versions, ${m.candidates} waiting`),
        el("span", { class: "actions" }, m.champion ? actionButton("rollback", m.model, null, "Rollback") : null)));
    container.append(card);
    card.append(el("div", { class: "grid" }, loopBox(m), lagBox(m)));
    const charts = el("div", { class: "charts" });
    card.append(charts);
    const qbox = el("div", { class: "quality" });
    const dbox = el("div", { class: "drift" });
    charts.append(qbox, dbox);
    qualitySection(m, q, qbox);
    driftSection(m, d, dbox);
    timelineSection(m, tl, card);
  }

  async function refresh() {
    try {
      const overview = await getJSON("/overview");
      state.overview = overview;
      document.getElementById("generated").textContent = `as of ${when(overview.generated_at)}`;
      showOperator();
      renderPending(overview.pending);
      const container = document.getElementById("models");
      const next = el("div");
      const old = state.charts;
      state.charts = [];
      container.replaceChildren(next);
      if (!overview.models.length) next.append(el("p", { class: "muted", text: "no models configured or seen yet" }));
      for (const m of overview.models) await renderModel(m, next);
      for (const c of old) c.destroy();
      document.body.dataset.loaded = "true";
    } catch (err) {
      say(`could not load: ${err.message || err}`, false);
    }
  }

  document.getElementById("login").addEventListener("submit", login);
  document.getElementById("logout").addEventListener("click", () => { session.forget(); showOperator(); });
  refresh();
  setInterval(() => { if (!state.busy && !document.querySelector("select:focus")) refresh(); }, REFRESH_MS);
})();
