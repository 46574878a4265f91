// The pushd web app: a chat room with presence, the task list with live
// progress, and the connection's state, on pushd.js. Everything shown is
// set as text (textContent), never parsed as HTML.
//
// The page takes ?room=, ?user= and ?transport= from its URL, and a token
// from #token= (removed from the address bar at once) or from its form.

import { Client, TRANSPORTS, parseCursor, tokenUser } from "./pushd.js";

const NAME = /^[A-Za-z0-9._-]{1,64}$/;
const MAX_MESSAGES = 500; // kept on the page
const HISTORY = 100; // shown from before the page opened

const $ = (id) => document.getElementById(id);

/** el makes an element with a class and text, set as text. */
function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

/** hue picks a stable colour for a name. */
function hue(name) {
  let h = 0;
  for (const c of name) h = (h * 31 + c.codePointAt(0)) % 360;
  return h;
}

function avatar(name) {
  const a = el("span", "avatar", name.slice(0, 1).toUpperCase());
  a.style.setProperty("--hue", String(hue(name)));
  a.setAttribute("aria-hidden", "true");
  return a;
}

const clock = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });

function timeOf(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? "" : clock.format(d);
}

/** seconds formats a duration for people: "4 s", "2 min 5 s", "1 h 3 min". */
function seconds(s) {
  if (!Number.isFinite(s) || s < 0) return "";
  if (s < 10) return `${s.toFixed(1)} s`;
  if (s < 60) return `${Math.round(s)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s % 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

const TRANSPORT_NAMES = { ws: "WebSocket", sse: "SSE", longpoll: "long polling", poll: "polling" };

// ---- settings from the URL ----

function settings() {
  const q = new URLSearchParams(location.search);
  const h = new URLSearchParams(location.hash.slice(1));
  let token = h.get("token") || sessionStorage.getItem("pushd-token") || "";
  if (h.has("token")) {
    // Keep the token out of the address bar, bookmarks and history.
    history.replaceState(null, "", location.pathname + location.search);
  }
  const transport = q.get("transport") || "auto";
  return {
    room: q.get("room") || "lobby",
    user: q.get("user") || tokenUser(token) || "",
    transport: TRANSPORTS.includes(transport) ? transport : "auto",
    token,
  };
}

// ---- the connection pill ----

const conn = {
  timer: null,
  outage: false,
  show(s) {
    const box = $("conn");
    clearInterval(this.timer);
    this.timer = null;
    box.dataset.state = s.state;
    box.dataset.transport = s.transport || "";
    const name = TRANSPORT_NAMES[s.transport] || "";
    $("conn-transport").textContent = name && s.state !== "closed" ? name : "";
    const text = $("conn-text");
    switch (s.state) {
      case "connecting":
        text.textContent = "Connecting";
        break;
      case "connected":
        text.textContent = "Live";
        if (this.outage) note(`Reconnected over ${name}.`, "net");
        this.outage = false;
        break;
      case "reconnecting": {
        if (!this.outage) note(`Connection lost (${s.error?.message || "dropped"}); reconnecting.`, "net warn");
        this.outage = true;
        box.dataset.reconnects = String(Number(box.dataset.reconnects || 0) + 1);
        const until = Date.now() + s.retryIn;
        const tick = () => {
          const left = Math.max(0, until - Date.now());
          text.textContent = left > 0 ? `Reconnecting in ${(left / 1000).toFixed(1)} s` : "Reconnecting";
          if (left === 0) {
            clearInterval(this.timer);
            this.timer = null;
          }
        };
        tick();
        this.timer = setInterval(tick, 100);
        box.title = s.error?.message || "";
        break;
      }
      case "closed":
        text.textContent = s.error ? "Disconnected" : "Closed";
        box.title = s.error?.message || "";
        if (s.error) note(`Disconnected: ${s.error.message}`, "net error");
        break;
    }
  },
};

// ---- messages ----

function atBottom(list) {
  return list.scrollHeight - list.scrollTop - list.clientHeight < 40;
}

function append(li) {
  const list = $("messages");
  const stick = atBottom(list);
  list.append(li);
  while (list.children.length > MAX_MESSAGES) list.firstElementChild.remove();
  if (stick) list.scrollTop = list.scrollHeight;
}

/** note shows a line from the page itself (connection changes, errors). */
function note(text, cls = "") {
  const li = el("li", `sys ${cls}`.trim());
  li.append(el("span", "", text));
  append(li);
}

let lastAuthor = "";

function showEvent(ev) {
  const li = el("li");
  li.dataset.seq = String(ev.seq);
  li.dataset.type = ev.type;
  if (ev.user) li.dataset.user = ev.user;
  switch (ev.type) {
    case "message": {
      li.className = "msg";
      const grouped = lastAuthor === ev.user;
      if (grouped) li.classList.add("cont");
      li.append(grouped ? el("span", "avatar-gap") : avatar(ev.user || "?"));
      const body = el("div", "body");
      if (!grouped) {
        const head = el("div", "head");
        head.append(el("b", "who", ev.user || "?"), el("time", "", timeOf(ev.time)));
        head.lastChild.dateTime = ev.time;
        body.append(head);
      }
      body.append(el("p", "text", ev.text ?? ""));
      li.append(body);
      lastAuthor = ev.user;
      break;
    }
    case "login":
    case "logout":
      li.className = "sys";
      li.append(el("span", "", `${ev.user} ${ev.type === "login" ? "joined" : "left"}`), el("time", "", timeOf(ev.time)));
      lastAuthor = "";
      break;
    case "reset":
      li.className = "sys warn";
      li.append(el("span", "", `The server's history was reset (${ev.reason || "reset"}): earlier messages may be missing.`));
      lastAuthor = "";
      break;
    default:
      return;
  }
  append(li);
}

// ---- presence ----

function showPresence(users) {
  const ul = $("presence");
  ul.replaceChildren(
    ...users.map((u) => {
      const li = el("li");
      li.dataset.user = u;
      li.append(avatar(u), el("span", "", u));
      return li;
    }),
  );
  $("presence-count").textContent = String(users.length);
}

// ---- tasks ----

const FINAL = new Set(["succeeded", "failed", "cancelled"]);
const tasks = new Map(); // id -> {task, at}: at is the time of the event that brought it

/** merge keeps the newer view of a task: a final one stays final, progress never goes back. */
function merge(t, at) {
  const old = tasks.get(t.id);
  if (old) {
    if (FINAL.has(old.task.state) && !FINAL.has(t.state)) return;
    if (!FINAL.has(t.state) && t.percent < old.task.percent) return;
  }
  tasks.set(t.id, { task: t, at: at || t.finished || new Date().toISOString() });
}

function rateOf(t, at) {
  if (!t.started || t.done <= 0) return null;
  const s = (new Date(at) - new Date(t.started)) / 1000;
  return s > 0 ? t.done / s : null;
}

function taskItem(id) {
  const li = el("li", "task");
  li.dataset.id = id;
  const top = el("div", "task-top");
  top.append(el("span", "task-name"), el("span", "badge"));
  const bar = el("div", "bar");
  bar.setAttribute("role", "progressbar");
  bar.setAttribute("aria-valuemin", "0");
  bar.setAttribute("aria-valuemax", "100");
  bar.append(el("div", "fill"));
  const foot = el("div", "task-foot");
  const cancel = el("button", "link cancel", "Cancel");
  cancel.type = "button";
  foot.append(el("span", "nums"), cancel);
  li.append(top, bar, foot, el("p", "task-msg"));
  return li;
}

function showTasks(client) {
  const ul = $("tasks");
  const sorted = [...tasks.values()].sort((a, b) => (a.task.created < b.task.created ? 1 : -1)).slice(0, 20);
  const items = sorted.map(({ task: t, at }) => {
    let li = ul.querySelector(`li[data-id="${CSS.escape(t.id)}"]`) || taskItem(t.id);
    li.dataset.state = t.state;
    li.dataset.percent = String(t.percent);
    li.querySelector(".task-name").textContent = t.name || t.kind;
    const badge = li.querySelector(".badge");
    badge.textContent = t.state;
    badge.dataset.state = t.state;
    const bar = li.querySelector(".bar");
    bar.setAttribute("aria-valuenow", String(Math.round(t.percent)));
    bar.setAttribute("aria-label", `${t.name || t.kind}: ${Math.round(t.percent)}%`);
    li.querySelector(".fill").style.width = `${Math.max(0, Math.min(100, t.percent))}%`;
    const parts = [`${Math.round(t.percent)}%`];
    if (t.total > 0) parts.push(`${t.done} / ${t.total}`);
    const rate = rateOf(t, at);
    if (FINAL.has(t.state)) {
      if (t.started && t.finished) parts.push(`in ${seconds((new Date(t.finished) - new Date(t.started)) / 1000)}`);
    } else {
      if (rate !== null) parts.push(`${rate >= 10 ? Math.round(rate) : rate.toFixed(1)}/s`);
      if (t.eta_seconds !== undefined) parts.push(`ETA ${seconds(t.eta_seconds)}`);
    }
    li.querySelector(".nums").textContent = parts.join(" · ");
    li.querySelector(".task-msg").textContent = t.message || "";
    const cancel = li.querySelector(".cancel");
    cancel.hidden = FINAL.has(t.state);
    cancel.onclick = () => {
      cancel.disabled = true;
      client.cancelTask(t.id).catch((err) => note(`Cancel failed: ${err.message}`, "error")).finally(() => {
        cancel.disabled = false;
      });
    };
    return li;
  });
  ul.replaceChildren(...items);
  $("tasks-empty").hidden = items.length > 0;
}

// ---- joining ----

function askToJoin(s, message = "", needToken = false) {
  $("main").hidden = true;
  $("where").hidden = true;
  $("join").hidden = false;
  const f = $("join-form");
  f.room.value = s.room;
  f.user.value = s.user;
  f.transport.value = s.transport;
  $("token-label").hidden = !needToken && !s.token;
  f.token.value = s.token;
  $("join-error").textContent = message;
  f.onsubmit = (e) => {
    e.preventDefault();
    const token = f.token.value.trim();
    const next = {
      room: f.room.value.trim(),
      user: f.user.value.trim() || tokenUser(token),
      transport: f.transport.value,
      token,
    };
    if (!NAME.test(next.user)) {
      $("join-error").textContent = "Give a name: letters, digits, dot, dash or underscore.";
      $("token-label").hidden = !needToken && !token;
      return;
    }
    const q = new URLSearchParams({ room: next.room, user: next.user });
    if (next.transport !== "auto") q.set("transport", next.transport);
    history.replaceState(null, "", `${location.pathname}?${q}`);
    start(next);
  };
}

async function start(s) {
  if (!NAME.test(s.room) || !NAME.test(s.user)) return askToJoin(s, s.user ? "Room and name: letters, digits, dot, dash or underscore." : "");
  const client = new Client(new URL(".", location.href).href, { user: s.user, token: s.token, transport: s.transport });
  try {
    await client.presence(s.room);
  } catch (err) {
    if (err.status === 401) return askToJoin(s, s.token ? `The server refused the token: ${err.message}` : "This server needs a token.", true);
    if (err.status === 403 || err.status === 400) return askToJoin(s, err.message, Boolean(s.token));
    // Unreachable for now: go on, the subscription will say so and retry.
  }
  if (s.token) sessionStorage.setItem("pushd-token", s.token);
  $("join").hidden = true;
  $("main").hidden = false;
  $("where").hidden = false;
  $("room-name").textContent = `#${s.room}`;
  $("user-name").textContent = s.user;
  document.title = `#${s.room} · pushd`;
  $("text").placeholder = `Message #${s.room}`;

  let presenceTimer = null;
  const refreshPresence = () => {
    clearTimeout(presenceTimer);
    presenceTimer = setTimeout(() => {
      client.presence(s.room).then(showPresence, () => {});
    }, 50);
  };

  // Open on the room's last messages, not its whole history.
  let since = "0";
  try {
    const head = parseCursor(await client.roomCursor(s.room));
    if (head && head.seq > HISTORY) since = `${head.epoch}:${head.seq - HISTORY}`;
  } catch {
    // Unreachable for now: the subscription starts at the beginning once it is back.
  }
  client.subscribeRoom(s.room, {
    since,
    onEvent(ev) {
      showEvent(ev);
      if (ev.type === "login" || ev.type === "logout" || ev.type === "reset") refreshPresence();
    },
    onState(st) {
      conn.show(st);
      if (st.state === "connected") refreshPresence();
    },
  });

  let listed = false;
  client.subscribeTasks({
    onEvent(ev) {
      if (ev.type === "reset") listed = false;
      if (ev.task) merge(ev.task, ev.time);
      if (!listed) relist();
      else showTasks(client);
    },
    onState(st) {
      if (st.state === "connected" && !listed) relist();
    },
  });
  const relist = () => {
    listed = true;
    client.tasks().then((list) => {
      for (const t of list) merge(t);
      showTasks(client);
    }, () => {
      listed = false;
    });
  };

  $("composer").onsubmit = (e) => {
    e.preventDefault();
    const input = $("text");
    const text = input.value;
    if (!text.trim()) return;
    input.value = "";
    client.publish(s.room, text).catch((err) => {
      note(`Not sent: ${err.message}`, "error");
      if (!input.value) input.value = text;
    });
  };
  $("start-task").onclick = () => {
    client.startTask({ kind: "demo", name: `demo by ${s.user}`, total: 100, interval: "50ms" }).catch((err) => note(`Task not started: ${err.message}`, "error"));
  };
  $("text").focus();
}

const s = settings();
if (s.user) start(s);
else askToJoin(s);
