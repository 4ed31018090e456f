// The dashboard's script: plain JavaScript, no build step. It polls the monitor's
// JSON routes (relative to the page, so it works wherever the page is mounted),
// draws the charts with the vendored uPlot, and calls the HTTP API only for a
// strategy rollback, with the admin token typed into the page (kept in this
// page's memory only, never stored).
"use strict";
const POLL_MS = 1000;
const KEEP = 3600;
const $ = (id) => document.getElementById(id);
const state = { api: null, since: null, cols: null, charts: {}, cursor: null, query: null,
                now: null };

function fmt(v, digits) {
  if (v === null || v === undefined) return "–";
  return Number(v).toFixed(digits);
}
function put(id, v, digits) {
  const el = $(id);
  el.dataset.v = v === null || v === undefined ? "" : String(v);
  el.textContent = fmt(v, digits);
}
function esc(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({"&":"&amp;","<":"&lt;",">":"&gt;","\"":"&quot;","'":"&#39;"}[c]));
}
function rows(el, head, body, attrs) {
  el.innerHTML = "<tr>" + head.map((h) => "<th>" + esc(h) + "</th>").join("") + "</tr>" +
    body.map((r, i) => "<tr" + (attrs ? attrs(i) : "") + ">" +
      r.map((c) => "<td>" + c + "</td>").join("") + "</tr>").join("");
}
function when(t) {
  return t ? new Date(t * 1000).toLocaleTimeString() : "–";
}
function json(v) {
  return v === null || v === undefined ? "" : JSON.stringify(v);
}
async function getJSON(path) {
  const r = await fetch(path, {cache: "no-store"});
  if (!r.ok) throw new Error(path.split("?")[0] + ": HTTP " + r.status);
  return r.json();
}

// ---- the snapshot: current numbers ------------------------------------------
function show(s) {
  const h = s.health;
  put("health-score", h.score, 0);
  const st = $("health-status");
  st.textContent = h.status; st.className = "badge " + h.status;
  $("strategy").textContent = s.dispatcher.strategy || "–";
  put("switches", s.dispatcher.strategy_switches, 0);
  $("cache-box").hidden = !s.cache;
  if (s.cache) { put("cache", s.cache.hit_ratio * 100, 1); $("cache").textContent += "%"; }
  put("thr-1s", s.throughput.total["1s"], 1);
  put("thr-1m", s.throughput.total["1m"], 2);
  put("thr-5m", s.throughput.total["5m"], 3);
  const c = s.counters;
  put("finished", (c.succeeded || 0) + (c.failed || 0) + (c.cancelled || 0) + (c.expired || 0), 0);
  for (const kind of ["wait", "run"]) {
    const a = s.latency[kind].all;
    put(kind + "-p50", a.p50, 3); put(kind + "-p95", a.p95, 3); put(kind + "-p99", a.p99, 3);
    put(kind + "-n", a.count, 0);
  }
  rows($("by-task"), ["task", "tasks/s (1m)", "run p50", "run p95", "wait p95"],
    Object.keys(s.latency.run.by_task).map((t) => [
      esc(t), fmt((s.throughput.by_task[t] || {})["1m"], 2),
      fmt(s.latency.run.by_task[t].p50, 3), fmt(s.latency.run.by_task[t].p95, 3),
      fmt((s.latency.wait.by_task[t] || {}).p95, 3)]));
  put("backlog", s.backlog.total, 0);
  put("miss", s.deadlines.miss_ratio * 100, 1); $("miss").textContent += "%";
  put("fail", s.failures.long.ratio * 100, 1); $("fail").textContent += "%";
  const pmax = Math.max(1, ...Object.values(s.backlog.by_priority));
  rows($("by-priority"), ["priority", "pending", ""],
    Object.entries(s.backlog.by_priority).sort((a, b) => b[0] - a[0]).map(([p, n]) => [
      "p" + esc(p), String(n), '<div class="bar" style="width:' + (100 * n / pmax) + '%"></div>']));
  put("workers", s.workers.length, 0);
  put("slots-busy", s.slots.busy, 0); put("slots-total", s.slots.total, 0);
  put("util", s.slots.utilization * 100, 0); $("util").textContent += "%";
  put("anomaly-count", s.anomalies.length, 0);
  $("anomalies").innerHTML = s.anomalies.length ? s.anomalies.map((a) =>
    '<li><b class="sev-' + esc(a.severity) + '">' + esc(a.severity) + " " + esc(a.type) + "</b> " +
    esc(a.reason) + '<br><span class="dim">' + esc(a.recommendation) + "</span></li>").join("")
    : '<li class="dim">none</li>';
  rows($("components"), ["component", "score"],
    Object.entries(h.components).map(([k, v]) => [esc(k), fmt(v, 0)]));
  $("reasons").textContent = h.reasons.join("; ");
  $("updated").textContent = when(s.time);
  state.now = s.time;  // Redis server time: the clock the task timestamps use
}

// ---- workers as stored: slots, tasks held, resources and labels ---------------
function showWorkers(ws) {
  rows($("worker-table"), ["worker", "busy", "slots", "beat", "ok", "failed", "resources", "labels"],
    ws.workers.map((w) => [esc(w.name), String(w.in_flight), String(w.slots),
      fmt(w.heartbeat_age, 1) + " s", String(w.succeeded), String(w.failed),
      '<span class="mono">' + esc(json(w.resources)) + "</span>",
      '<span class="mono">' + esc(json(w.labels)) + "</span>"]));
}

// ---- charts over time -----------------------------------------------------------
const COLORS = ["#f85149", "#d29922", "#e3b341", "#3fb950", "#58a6ff", "#a371f7", "#db61a2",
                "#79c0ff", "#56d364", "#8b96a3"];
function merge(cols, add) {
  if (!cols) return add;
  const n = cols.time.length;
  for (const key of Object.keys(add)) {
    if (key === "wait_p50" || key === "wait_p95") {
      for (const p of Object.keys(add[key])) {
        if (!cols[key][p]) cols[key][p] = new Array(n).fill(null);
        cols[key][p].push(...add[key][p]);
      }
      for (const p of Object.keys(cols[key])) {
        if (!add[key][p]) cols[key][p].push(...new Array(add.time.length).fill(null));
      }
    } else {
      cols[key].push(...add[key]);
    }
  }
  const over = cols.time.length - KEEP;
  if (over > 0) {
    for (const key of Object.keys(cols)) {
      if (key === "wait_p50" || key === "wait_p95") {
        for (const p of Object.keys(cols[key])) cols[key][p].splice(0, over);
      } else cols[key].splice(0, over);
    }
  }
  return cols;
}
function chart(id, series, data) {
  const el = $(id);
  const key = series.map((s) => s.label).join("|");
  let c = state.charts[id];
  if (c && c.key !== key) { c.plot.destroy(); c = null; }
  if (!c) {
    const width = Math.max(300, el.clientWidth - 8);
    const plot = new uPlot({
      width: width, height: 170, series: [{}, ...series],
      axes: [{stroke: "#8b96a3", grid: {stroke: "#2c3540"}}, {stroke: "#8b96a3", grid: {stroke: "#2c3540"}}],
      legend: {show: false}, cursor: {drag: {x: false, y: false}},
    }, data, el);
    c = state.charts[id] = {plot: plot, key: key};
  } else {
    c.plot.setData(data);
  }
  el.dataset.points = String(data[0].length);
}
function line(label, stroke, dash) {
  return {label: label, stroke: stroke, width: 1.5, spanGaps: true, dash: dash};
}
function drawCharts(cols) {
  const t = cols.time;
  chart("chart-throughput", [line("1 s", "#58a6ff"), line("1 min", "#3fb950")],
    [t, cols.throughput_1s, cols.throughput_1m]);
  const prios = Object.keys(cols.wait_p95).sort((a, b) => b - a);
  const waitSeries = [], waitData = [t];
  for (const p of prios) {
    const color = COLORS[(9 - Number(p)) % COLORS.length];
    waitSeries.push(line("p" + p + " p95", color));
    waitData.push(cols.wait_p95[p]);
    waitSeries.push(line("p" + p + " p50", color, [4, 4]));
    waitData.push(cols.wait_p50[p]);
  }
  chart("chart-wait", waitSeries, waitData);
  $("wait-key").innerHTML = prios.map((p) => '<span class="key" style="background:' +
    COLORS[(9 - Number(p)) % COLORS.length] + '"></span>p' + esc(p)).join("");
  chart("chart-backlog", [line("pending", "#d29922")], [t, cols.backlog]);
  chart("chart-utilization", [line("busy slots %", "#a371f7")],
    [t, cols.utilization.map((u) => u === null ? null : 100 * u)]);
  chart("chart-health", [line("score", "#3fb950")], [t, cols.health]);
  chart("chart-memory", [line("used %", "#f85149")],
    [t, cols.redis_memory_ratio.map((r) => r === null ? null : 100 * r)]);
  $("series-span").textContent = t.length ? t.length + " points since " + when(t[0]) : "";
}
async function pollSeries() {
  const q = state.since === null ? "" : "?since=" + state.since;
  const add = await getJSON("monitor/series" + q);
  if (!add.time.length && state.cols) return;
  state.cols = merge(state.cols, add);
  if (state.cols.time.length) state.since = state.cols.time[state.cols.time.length - 1];
  drawCharts(state.cols);
}

// ---- the task explorer ----------------------------------------------------------
async function search(more) {
  const q = more ? state.query : new URLSearchParams({
    state: $("q-state").value, name: $("q-name").value.trim(), worker: $("q-worker").value.trim(),
  });
  state.query = q;
  const params = new URLSearchParams(q);
  params.set("limit", "50");
  if (more && state.cursor) params.set("cursor", state.cursor);
  const page = await getJSON("monitor/tasks?" + params);
  const table = $("task-rows");
  const old = more ? Array.from(table.querySelectorAll("tr.pick")).map((tr) => tr.dataset.row) : [];
  const list = old.map((r) => JSON.parse(r)).concat(page.tasks);
  rows(table, ["id", "name", "state", "priority", "worker", "attempt", "submitted", "runtime"],
    list.map((t) => ['<span class="mono">' + esc(t.id) + "</span>", esc(t.name), esc(t.state),
      String(t.priority), esc(t.worker || "–"), String(t.attempt), when(t.submitted_at),
      fmt(t.runtime, 3)]),
    (i) => ' class="pick" data-id="' + esc(list[i].id) + '" data-row="' + esc(JSON.stringify(list[i])) + '"');
  state.cursor = page.next_cursor;
  $("more").hidden = !page.next_cursor;
  $("search-msg").textContent = list.length + " shown" + (page.next_cursor ? ", more to load" : "");
  table.dataset.count = String(list.length);
}
function segment(cls, from, to, t0, span, title) {
  if (from === null || to === null) return "";
  const left = 100 * (from - t0) / span, width = Math.max(0.3, 100 * (to - from) / span);
  return '<div class="seg ' + cls + '" title="' + esc(title) + '" style="left:' + left +
    "%;width:" + width + '%"></div>';
}
function timeline(t, now) {
  const attempts = t.attempts;
  const finished = t.finished_at !== null || (attempts.length && attempts.every((a) => a.ended_at));
  const ends = attempts.map((a) => a.ended_at || now);
  const t0 = t.submitted_at || (attempts[0] && attempts[0].dispatched_at) || now;
  const t1 = finished ? Math.max(t.finished_at || 0, ...ends) : Math.max(now, ...ends);
  const span = Math.max(1e-3, t1 - t0);
  const axis = '<div class="axis"><span></span><div><span>submitted ' + when(t0) +
    "</span><span>+" + fmt(span, 3) + " s" + (finished ? "" : " (now)") + "</span></div></div>";
  if (!attempts.length) {
    return '<div class="attempt" data-attempt="0"><span>not dispatched</span><div class="track">' +
      segment("queued", t0, t1, t0, span, "waiting") + "</div></div>" + axis;
  }
  let prev = t0;
  return attempts.map((a) => {
    const end = a.ended_at || now, start = a.started_at, disp = a.dispatched_at;
    const label = "#" + a.attempt + " " + (a.outcome || "") + (a.worker ? " on " + a.worker : "") +
      (a.error ? ": " + a.error : "");
    const html = '<div class="attempt" data-attempt="' + a.attempt + '" data-outcome="' +
      esc(a.outcome || "") + '"><span title="' + esc(label) + '">#' + a.attempt + " " +
      esc(a.outcome || "") + "</span><div class=\"track\">" +
      segment("queued", prev, disp, t0, span, "waiting since " + when(prev)) +
      segment("handed", disp, start || end, t0, span, "dispatched " + when(disp)) +
      segment("ran " + esc(a.outcome || ""), start, end, t0, span,
        "started " + when(start) + ", ended " + when(a.ended_at) + (a.error ? ": " + a.error : "")) +
      "</div></div>";
    prev = end;
    return html;
  }).join("") + axis;
}
async function openTask(id) {
  let t;
  try {
    t = await getJSON("monitor/tasks/" + encodeURIComponent(id));
  } catch (e) {
    $("search-msg").textContent = "no task " + id + " (" + e.message + ")";
    $("task-detail").hidden = true;
    return;
  }
  $("task-detail").hidden = false;
  $("task-detail").dataset.id = t.id;
  $("t-id").textContent = t.id;
  $("t-state").textContent = t.state + (t.source === "event" ? " (record expired; from the events stream)" : "");
  $("timeline").innerHTML = timeline(t, state.now || Date.now() / 1000);
  $("timeline").dataset.attempts = String(t.attempts.length);
  const shown = ["name", "priority", "worker", "attempt", "submitted_at", "dispatched_at",
                 "started_at", "finished_at", "runtime", "deadline", "reason", "affinity_key"];
  rows($("t-fields"), ["field", "value"], shown.filter((k) => t[k] !== null).map((k) =>
    [esc(k), esc(k.endsWith("_at") || k === "deadline" ? when(t[k]) + " (" + t[k] + ")" : t[k])]));
  const p = t.progress;
  $("task-progress").textContent = p ? (fmt(p.done, 0) + (p.total !== null ? " / " + fmt(p.total, 0) : "") +
    (p.note ? " — " + p.note : "") + (p.at ? " at " + when(p.at) : "")) : "none reported";
  $("task-progress").dataset.v = p ? json(p) : "";
  $("t-args").textContent = "args " + JSON.stringify(t.args) + "\nkwargs " + JSON.stringify(t.kwargs);
  const failed = t.error || t.last_error;
  $("t-outcome-label").textContent = failed ? "error" : "result";
  $("t-outcome").textContent = failed ? (t.error || "") + (t.last_error && t.last_error !== t.error ?
    "\nlast retried attempt: " + t.last_error : "") : JSON.stringify(t.result, null, 1);
}
function fromHash() {
  const h = new URLSearchParams(location.hash.slice(1));
  if (h.get("task")) { $("q-id").value = h.get("task"); openTask(h.get("task")); }
  if (h.get("state")) {
    $("q-state").value = h.get("state");
    $("q-name").value = h.get("name") || "";
    $("q-worker").value = h.get("worker") || "";
    search(false).catch((e) => { $("search-msg").textContent = e.message; });
  }
}

// ---- strategy: versions, and a rollback through the API ---------------------
async function showStrategy() {
  const s = await getJSON("monitor/strategy");
  $("strategy-config").textContent = s.config ? s.config.strategy + " (version " + s.config.version + ")" : "none set (YM_STRATEGY)";
  $("strategy-active").textContent = s.active ? s.active.strategy + " (version " + s.active.version + ")" : "–";
  const h = s.history.slice().reverse();
  rows($("strategy-history"), ["version", "strategy", "params", "who", "when", "note"],
    h.map((v) => [String(v.version), esc(v.strategy), '<span class="mono">' + esc(json(v.params)) + "</span>",
      esc(v.who), when(v.at), esc(v.note)]));
  $("strategy-history").dataset.versions = String(s.history.length);
  $("strategy-history").dataset.latest = s.history.length ? s.history[s.history.length - 1].note : "";
}
async function rollback(ev) {
  ev.preventDefault();
  const msg = $("rollback-msg");
  if (state.api === null) {
    msg.textContent = "no API on this server: start the monitor with YM_API_TOKENS (yardmaster up does)";
    msg.className = "msg-bad"; msg.dataset.status = "none";
    return;
  }
  const token = $("admin-token").value.trim();
  const headers = {"Content-Type": "application/json"};
  if (token) headers.Authorization = "Bearer " + token;
  const r = await fetch(state.api + "v1/strategy/rollback", {method: "POST", headers: headers, body: "{}"});
  const body = await r.json().catch(() => ({}));
  msg.dataset.status = String(r.status);
  if (r.ok) {
    msg.textContent = "rolled back: version " + body.version + " runs " + body.strategy;
    msg.className = "msg-ok";
  } else {
    msg.textContent = "refused (" + r.status + "): " + (body.message || r.statusText);
    msg.className = "msg-bad";
  }
  await showStrategy();
}

// ---- workflows: progress, and a link to each one's graph page --------------------
function showWorkflows(w) {
  put("waiting", w.waiting, 0);
  rows($("workflow-rows"), ["workflow", "done", "total", "progress", "by state", "submitted"],
    w.workflows.map((f) => [
      "<a class=\"mono\" href=\"dashboard/workflow?id=" + encodeURIComponent(f.id) + "\">" +
        esc(f.id) + "</a>",
      String(f.done), String(f.total),
      "<div style=\"background:#0b0f14;border-radius:3px\"><div class=\"bar\" style=\"width:" +
        (f.total ? 100 * f.done / f.total : 100).toFixed(1) + "%\"></div></div>",
      esc(Object.entries(f.counts).map(([k, v]) => k + "=" + v).join(", ")),
      when(f.submitted_at),
    ]),
    (i) => " data-workflow=\"" + esc(w.workflows[i].id) + "\"");
}

// ---- the loop ---------------------------------------------------------------------
async function tick() {
  try {
    show(await getJSON("monitor/snapshot"));
    await pollSeries();
    const polls = Number(document.body.dataset.polls || 0) + 1;
    if (polls % 2 === 1) {
      showWorkers(await getJSON("monitor/workers"));
      await showStrategy();
      showWorkflows(await getJSON("monitor/workflows"));
    }
    document.body.dataset.polls = String(polls);
    $("error").textContent = "";
  } catch (e) {
    $("error").textContent = "cannot reach the monitor: " + e.message;
  }
  setTimeout(tick, POLL_MS);
}
async function init() {
  try {
    state.api = (await getJSON("monitor/config")).api;
  } catch (e) {
    state.api = null;
  }
  $("rollback").disabled = false;
  $("task-search").addEventListener("submit", (ev) => {
    ev.preventDefault();
    search(false).catch((e) => { $("search-msg").textContent = e.message; });
  });
  $("more").addEventListener("click", () => search(true));
  $("open-id").addEventListener("click", () => openTask($("q-id").value.trim()));
  $("task-rows").addEventListener("click", (ev) => {
    const tr = ev.target.closest("tr.pick");
    if (tr) openTask(tr.dataset.id);
  });
  $("rollback-form").addEventListener("submit", (ev) => rollback(ev).catch((e) => {
    $("rollback-msg").textContent = e.message;
  }));
  window.addEventListener("hashchange", fromHash);
  fromHash();
  tick();
}
init();
