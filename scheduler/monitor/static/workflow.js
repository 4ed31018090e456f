// The workflow page's script: plain JavaScript, no build step. It polls
// ../monitor/workflows/<id> (the id from the page's ?id=) and draws the tasks as an
// SVG graph, one column per dependency layer, laid out by the monitor
// (scheduler/monitor/workflow_view.py), each task colored by its state.
"use strict";
const POLL_MS = 1000;
const COLORS = {
  waiting: "#3a4552", pending: "#8b96a3", dispatched: "#d29922", running: "#58a6ff",
  succeeded: "#3fb950", failed: "#f85149", cancelled: "#a371f7", expired: "#db6d28",
  missing: "#20262e",
};
const ORDER = ["succeeded", "failed", "cancelled", "expired", "missing", "running",
               "dispatched", "pending", "waiting"];
const W = 120, H = 22, GAP_X = 50, GAP_Y = 8;
const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";

function put(id, v, text) {
  const el = $(id);
  el.dataset.v = v === null || v === undefined ? "" : String(v);
  el.textContent = text === undefined ? String(v) : text;
}
function el(name, attrs) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  return node;
}
function progress(wf) {
  const bar = $("wf-progress");
  bar.innerHTML = "";
  const legend = $("wf-counts");
  legend.innerHTML = "";
  for (const s of ORDER) {
    const n = wf.counts[s] || 0;
    if (!n) continue;
    const part = document.createElement("div");
    part.style.width = (100 * n / wf.total) + "%";
    part.style.background = COLORS[s];
    part.title = s + ": " + n;
    bar.appendChild(part);
    const key = document.createElement("span");
    key.id = "count-" + s;
    key.dataset.v = String(n);
    key.innerHTML = "<i style=\"background:" + COLORS[s] + "\"></i>";
    key.appendChild(document.createTextNode(s + " " + n));
    legend.appendChild(key);
  }
}
function graph(wf) {
  const svg = $("wf-graph");
  svg.innerHTML = "";
  if (wf.truncated) {
    $("wf-note").textContent = wf.total + " tasks: too many to draw; progress only.";
    return;
  }
  $("wf-note").textContent = "";
  svg.setAttribute("width", wf.layers * (W + GAP_X));
  svg.setAttribute("height", Math.max(1, wf.rows) * (H + GAP_Y));
  const at = {};
  for (const n of wf.nodes) at[n.id] = {x: n.layer * (W + GAP_X), y: n.row * (H + GAP_Y)};
  const edges = el("g", {id: "wf-edges"});
  for (const n of wf.nodes) {
    for (const p of n.parents) {
      const a = at[p], b = at[n.id];
      const x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x, y2 = b.y + H / 2, mid = (x1 + x2) / 2;
      edges.appendChild(el("path", {class: "edge", "data-from": p, "data-to": n.id,
        d: `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`}));
    }
  }
  svg.appendChild(edges);
  for (const n of wf.nodes) {
    const g = el("g", {class: "node", "data-id": n.id, "data-state": n.state,
                       transform: `translate(${at[n.id].x},${at[n.id].y})`});
    g.appendChild(el("rect", {width: W, height: H, rx: 4, fill: COLORS[n.state] || "#444"}));
    const label = el("text", {x: 6, y: 15});
    label.textContent = n.id.length > 17 ? "…" + n.id.slice(-16) : n.id;
    g.appendChild(label);
    const title = el("title", {});
    title.textContent = n.id + " (" + (n.name || "?") + "): " + n.state +
      (n.worker ? " on " + n.worker : "") + (n.reason ? ", " + n.reason : "");
    g.appendChild(title);
    svg.appendChild(g);
  }
}
async function tick(id) {
  try {
    const r = await fetch("../monitor/workflows/" + encodeURIComponent(id), {cache: "no-store"});
    if (!r.ok) throw new Error(r.status === 404 ? "no such workflow (or it expired)" : "HTTP " + r.status);
    const wf = await r.json();
    put("wf-done", wf.done);
    put("wf-total", wf.total);
    put("wf-finished", wf.finished ? "finished" : "running", wf.finished ? "finished" : "in progress");
    progress(wf);
    graph(wf);
    $("updated").textContent = new Date().toLocaleTimeString();
    $("error").textContent = "";
    document.body.dataset.polls = String(Number(document.body.dataset.polls || 0) + 1);
  } catch (e) {
    $("error").textContent = "cannot read the workflow: " + e.message;
  }
  setTimeout(() => tick(id), POLL_MS);
}
const id = new URLSearchParams(location.search).get("id");
if (!id) {
  $("error").textContent = "no workflow id: open this page as dashboard/workflow?id=ID";
} else {
  $("wf-id").textContent = id;
  document.title = "yardmaster workflow " + id;
  tick(id);
}
