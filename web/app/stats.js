// The operators' page of the pushd web app: the server's stats, live from
// its stats stream (every node of a cluster merged): connections, events
// in and deliveries out with their sparklines, the streams (sortable,
// filterable; a click shows a stream's subscribers), the subscribers
// furthest behind, the tasks, and the store and process of each node.
// Everything shown is set as text (textContent), never parsed as HTML.
//
// It needs an admin token (#token=, or its form), or on a server without
// tokens a browser on the server's machine. ?transport= picks the
// transport.

import { Client, TRANSPORTS } from "./pushd.js";

const $ = (id) => document.getElementById(id);
const SPARK_POINTS = 60; // a sparkline's last snapshots: the minute the server keeps
const SUBSCRIBERS_EVERY = 1000; // ms between refreshes of a stream's subscribers

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

// ---- numbers for people ----

const whole = new Intl.NumberFormat("en");

function count(n) {
  return whole.format(n ?? 0);
}

/** rate writes a figure per second: "0", "12.3", "1.2k", "24k". */
function rate(r) {
  if (!(r > 0)) return "0";
  if (r < 100) return String(Math.round(r * 10) / 10);
  if (r < 1000) return String(Math.round(r));
  if (r < 10e3) return `${Math.round(r / 100) / 10}k`;
  if (r < 1e6) return `${Math.round(r / 1e3)}k`;
  return `${Math.round(r / 1e5) / 10}M`;
}

function bytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 || n >= 10 ? Math.round(n) : Math.round(n * 10) / 10} ${units[i]}`;
}

function millis(ms) {
  if (!(ms > 0)) return "0 ms";
  if (ms < 0.1) return `${Math.round(ms * 1000)} µs`;
  if (ms < 1) return `${ms.toFixed(2)} ms`;
  if (ms < 1000) return `${Math.round(ms * 10) / 10} ms`;
  return `${Math.round(ms / 100) / 10} s`;
}

/** age writes how long ago iso was: "45 s", "2 min 13 s", "1 h 2 min". */
function age(iso) {
  const s = Math.max(0, Math.round((Date.now() - new Date(iso).getTime()) / 1000));
  if (!Number.isFinite(s)) return "";
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

/** label shows a stream: a room by its name, the tasks stream as "(tasks)". */
function label(stream) {
  return stream.startsWith("room/") ? stream.slice(5) : `(${stream})`;
}

/** lagLevel says how near a lag is to the limit: "", "warn" or "bad". */
function lagLevel(lag, limit) {
  if (!limit || lag === 0) return "";
  if (lag * 10 >= limit * 9) return "bad";
  if (lag * 2 >= limit) return "warn";
  return "";
}

// ---- the connection pill ----

const NAMES = { ws: "WebSocket", sse: "SSE", longpoll: "long polling", poll: "polling" };

function showConn(s) {
  const box = $("conn");
  box.dataset.state = s.state;
  box.dataset.transport = s.transport || "";
  $("conn-transport").textContent = s.state !== "closed" ? NAMES[s.transport] || "" : "";
  $("conn-text").textContent = {
    connecting: "Connecting",
    connected: "Live",
    reconnecting: "Reconnecting",
    closed: s.error ? "Disconnected" : "Closed",
  }[s.state] ?? s.state;
  box.title = s.error?.message || "";
}

// ---- sparklines ----

const trail = { conns: [], in: [], out: [] };

function remember(key, v) {
  const h = trail[key];
  h.push(v);
  if (h.length > SPARK_POINTS) h.shift();
}

/** spark draws points as a line over a shaded area in an SVG of 120×28, scaled to their top, the newest at the right. */
function spark(svg, points) {
  const top = Math.max(1, ...points);
  const step = 120 / (SPARK_POINTS - 1);
  const off = (SPARK_POINTS - points.length) * step;
  const xy = points.map((p, i) => `${(off + i * step).toFixed(1)},${(27 - (p / top) * 25).toFixed(1)}`);
  if (svg.children.length === 0) {
    for (const tag of ["polygon", "polyline"]) svg.append(document.createElementNS("http://www.w3.org/2000/svg", tag));
  }
  const [area, line] = svg.children;
  line.setAttribute("points", xy.join(" "));
  area.setAttribute("points", xy.length ? `${off.toFixed(1)},28 ${xy.join(" ")} 120,28` : "");
}

// ---- the streams table ----

const table = { sort: "deliveries_out", desc: true, filter: "", streams: [] };

function showStreams(st, open) {
  table.streams = st.streams;
  const needle = table.filter.toLowerCase();
  const rows = st.streams.filter((s) => label(s.stream).toLowerCase().includes(needle));
  const k = table.sort;
  rows.sort((a, b) => {
    const x = k === "stream" ? label(a.stream).localeCompare(label(b.stream)) : a[k] - b[k];
    return (table.desc ? -x : x) || a.stream.localeCompare(b.stream);
  });
  const limit = maxLag(st);
  $("streams").tBodies[0].replaceChildren(
    ...rows.map((s) => {
      const tr = el("tr");
      tr.dataset.stream = s.stream;
      tr.tabIndex = 0;
      tr.title = `Show the subscribers of ${label(s.stream)}`;
      const lag = el("td", `num ${lagLevel(s.max_lag, limit)}`, count(s.max_lag));
      tr.append(el("td", "name", label(s.stream)), el("td", "num", count(s.subscribers)), el("td", "num", count(s.present)),
        el("td", "num", rate(s.events_in)), el("td", "num", rate(s.deliveries_out)), el("td", "num", count(s.head)), lag);
      tr.onclick = () => open(s.stream);
      tr.onkeydown = (e) => {
        if (e.key === "Enter") open(s.stream);
      };
      return tr;
    }),
  );
  $("streams-count").textContent = `${rows.length} of ${count(st.streams_total)}`;
  $("streams-empty").hidden = rows.length > 0;
  for (const b of document.querySelectorAll("#streams th button")) {
    b.parentElement.setAttribute("aria-sort", b.dataset.sort === k ? (table.desc ? "descending" : "ascending") : "none");
  }
}

function maxLag(st) {
  return Math.max(0, ...st.nodes.map((n) => n.max_lag || 0));
}

// ---- the other panels ----

function subscriberRow(s, limit, withStream) {
  const tr = el("tr");
  if (withStream) tr.append(el("td", "name", label(s.stream)));
  tr.append(el("td", "", s.transport), el("td", "mono", s.addr), el("td", "", s.user || "–"),
    el("td", `num ${lagLevel(s.lag, limit)}`, count(s.lag)));
  if (!withStream) {
    const cell = el("td");
    const bar = el("div", `bar lag ${lagLevel(s.lag, limit)}`);
    const fill = el("div", "fill");
    fill.style.width = `${limit ? Math.min(100, (s.lag / limit) * 100) : 0}%`;
    bar.append(fill);
    cell.append(bar);
    tr.append(cell);
  }
  tr.append(el("td", "num", age(s.since)));
  if (!withStream) tr.append(el("td", "", s.node || ""));
  return tr;
}

function showLagging(st) {
  const limit = maxLag(st);
  $("lagging").tBodies[0].replaceChildren(...st.lagging.map((s) => subscriberRow(s, limit, true)));
  $("lagging-empty").hidden = st.lagging.length > 0;
}

function showTasks(st) {
  const by = st.tasks.by_state;
  const done = (by.succeeded || 0) + (by.failed || 0) + (by.cancelled || 0);
  $("tasks-counts").textContent = `${by.running || 0} running · ${by.queued || 0} queued · ${done} done`;
  $("live-tasks").replaceChildren(
    ...st.tasks.live.map((t) => {
      const li = el("li", "task");
      li.dataset.state = t.state;
      const top = el("div", "task-top");
      const badge = el("span", "badge", t.state);
      badge.dataset.state = t.state;
      top.append(el("span", "task-name", t.name || t.id), badge);
      const bar = el("div", "bar");
      const fill = el("div", "fill");
      fill.style.width = `${Math.max(0, Math.min(100, t.percent))}%`;
      bar.append(fill);
      li.append(top, bar);
      return li;
    }),
  );
  $("tasks-empty").hidden = st.tasks.live.length > 0;
}

function showNodes(st) {
  $("nodes-count").textContent = st.nodes.length === 1 ? "1 node" : `${st.nodes.length} nodes`;
  $("nodes").tBodies[0].replaceChildren(
    ...st.nodes.map((n) => {
      const tr = el("tr");
      tr.dataset.node = n.node;
      if (n.error) {
        const td = el("td", "bad", `no answer: ${n.error}`);
        td.colSpan = 8;
        tr.append(el("td", "name", n.node), td);
        return tr;
      }
      const conns = Object.values(n.connections || {}).reduce((a, b) => a + b, 0);
      let probe = n.store.probe ? `${n.store.probe} ${millis(n.store.probe_ms)}` : "memory store";
      if (n.store.probe_error) probe = `${n.store.probe} failed: ${n.store.probe_error}`;
      tr.append(el("td", "name", n.node), el("td", "num", count(conns)), el("td", "num", rate(n.store.appends)),
        el("td", "num", millis(n.store.append_p50_ms)), el("td", "num", millis(n.store.append_p99_ms)),
        el("td", n.store.probe_error ? "bad" : "", probe), el("td", "num", bytes(n.process.memory_bytes)),
        el("td", "num", count(n.process.goroutines)),
        el("td", "num", n.process.cpu < 0 ? "?" : `${n.process.cpu.toFixed(2)} of ${n.process.cores}`));
      return tr;
    }),
  );
}

function show(st, open) {
  const c = st.connections;
  const total = Object.values(c).reduce((a, b) => a + b, 0);
  $("conns").textContent = count(total);
  $("conns-by").textContent = `ws ${count(c.ws)} · sse ${count(c.sse)} · longpoll ${count(c.longpoll)}`;
  $("in").textContent = rate(st.events_in);
  $("out").textContent = rate(st.deliveries_out);
  $("drops").textContent = count(st.slow_drops);
  $("drops").classList.toggle("warn", st.slow_drops > 0);
  spark($("spark-conns"), trail.conns);
  spark($("spark-in"), trail.in);
  spark($("spark-out"), trail.out);
  showStreams(st, open);
  showLagging(st);
  showTasks(st);
  showNodes(st);
}

// ---- one stream's subscribers ----

function roomView(client) {
  let stream = "";
  let timer = null;
  let last = null;
  const refresh = async () => {
    const asked = stream;
    try {
      const list = await client.subscribers(asked, { limit: 500 });
      if (asked !== stream) return;
      $("room-error").textContent = (list.missing || []).map((m) => `Not answering: ${m}`).join(" ");
      $("room-title").textContent = `${label(asked)} · ${count(list.total)} subscriber${list.total === 1 ? "" : "s"} · head ${count(list.head)}`;
      const limit = last ? maxLag(last) : 0;
      $("subscribers").tBodies[0].replaceChildren(...list.subscribers.map((s) => subscriberRow(s, limit, false)));
    } catch (err) {
      if (asked === stream) $("room-error").textContent = `Could not list the subscribers: ${err.message}`;
    }
    if (asked === stream) timer = setTimeout(refresh, SUBSCRIBERS_EVERY);
  };
  $("room-close").onclick = () => {
    stream = "";
    clearTimeout(timer);
    $("room").hidden = true;
  };
  return {
    stats(st) {
      last = st;
    },
    open(s) {
      clearTimeout(timer);
      stream = s;
      $("room").hidden = false;
      $("room-title").textContent = label(s);
      $("room-error").textContent = "";
      $("subscribers").tBodies[0].replaceChildren();
      refresh();
      $("room").scrollIntoView({ block: "nearest" });
    },
  };
}

// ---- starting ----

function settings() {
  const q = new URLSearchParams(location.search);
  const h = new URLSearchParams(location.hash.slice(1));
  const token = h.get("token") || sessionStorage.getItem("pushd-token") || "";
  if (h.has("token")) history.replaceState(null, "", location.pathname + location.search);
  const transport = q.get("transport") || "auto";
  return { token, transport: TRANSPORTS.includes(transport) ? transport : "auto" };
}

function askToken(s, why) {
  $("stats").hidden = true;
  $("ask").hidden = false;
  $("ask-why").textContent = why;
  const f = $("token-form");
  f.token.value = s.token;
  f.onsubmit = (e) => {
    e.preventDefault();
    start({ ...s, token: f.token.value.trim() });
  };
}

async function start(s) {
  const client = new Client(new URL(".", location.href).href, { token: s.token, transport: s.transport });
  try {
    await client.stats();
  } catch (err) {
    if (err.status === 401) return askToken(s, s.token ? `The server refused the token: ${err.message}` : "This server needs an admin token.");
    if (err.status === 403) return askToken(s, err.message);
    // Unreachable for now: go on, the subscription will say so and retry.
  }
  if (s.token) sessionStorage.setItem("pushd-token", s.token);
  $("ask").hidden = true;
  $("stats").hidden = false;
  const room = roomView(client);
  let last = null;
  const draw = () => {
    if (last) show(last, room.open);
  };
  for (const b of document.querySelectorAll("#streams th button")) {
    b.onclick = () => {
      const k = b.dataset.sort;
      table.desc = table.sort === k ? !table.desc : k !== "stream";
      table.sort = k;
      draw();
    };
  }
  $("filter").oninput = (e) => {
    table.filter = e.target.value;
    draw();
  };
  client.subscribeStats({
    since: "0",
    onEvent(ev) {
      if (!ev.stats) return;
      last = ev.stats;
      remember("conns", Object.values(last.connections).reduce((a, b) => a + b, 0));
      remember("in", last.events_in);
      remember("out", last.deliveries_out);
      room.stats(last);
      draw();
    },
    onState: showConn,
  });
}

start(settings());
