// pushd.js is the browser client of pushd: it follows rooms and tasks over
// WebSocket, Server-Sent Events, long polling or short polling, resumes
// after every drop without losing or repeating an event, publishes, and
// drives background tasks. PROTOCOL.md is the wire contract it implements;
// the Go client (package client) is its model, state for state.
//
// It is one ES module with no dependencies and no build step. pushd serves
// it at /pushd.js; pushd.d.ts beside it has its types.
//
//   import { Client } from "http://127.0.0.1:8080/pushd.js";
//   const c = new Client("http://127.0.0.1:8080", { user: "ann" });
//   const sub = c.subscribeRoom("lobby", {
//     onEvent: (ev) => console.log(ev.type, ev.user, ev.text),
//     onState: (s) => console.log(s.state, s.transport),
//   });
//   await c.publish("lobby", "hi");
//   sub.close();

/** The WebSocket subprotocol in which one message may carry several events. */
const BATCH_SUBPROTOCOL = "pushd.batch.v1";

/** The transports a Client may be told to use. */
export const TRANSPORTS = Object.freeze(["auto", "ws", "sse", "longpoll", "poll"]);

/** What auto tries, in order, while a network refuses one. */
const AUTO_ORDER = ["ws", "sse", "longpoll", "poll"];

/** Defaults of the Client's options, in milliseconds where a time. */
export const DEFAULTS = Object.freeze({
  transport: "auto",
  minBackoff: 250,
  maxBackoff: 30000,
  idleTimeout: 45000,
  connectTimeout: 10000,
  longPollWait: 25000,
  pollInterval: 1000,
  requestTimeout: 30000,
  publishTries: 5,
});

/** How long a connection must have lasted, if it delivered nothing, for the backoff to start over. */
const STABLE_AFTER = 5000;

/** How long a WebSocket has, after a check found events it had not brought, to bring them. */
const PROBE_GRACE = 3000;

/** The most events the server puts in one poll answer; a full answer means more wait. */
const MAX_POLL_EVENTS = 1000;

/** How much of an error answer is read. */
const MAX_ERROR_BODY = 16 << 10;

/**
 * PushdError is a failed request: the server's HTTP status, its error code
 * and message, and the Retry-After it gave. status 0 means no answer came
 * (the server is down, the network failed, the request timed out, or the
 * server refused this page's origin); code "" means the answer was not
 * pushd's (a proxy's page).
 */
export class PushdError extends Error {
  constructor(status, code, message, retryAfter = 0) {
    super(message);
    this.name = "PushdError";
    /** @type {number} */
    this.status = status;
    /** @type {string} */
    this.code = code;
    /** Milliseconds the server asked to wait before trying again; 0 if it said nothing. */
    this.retryAfter = retryAfter;
  }

  /** Whether the same request may succeed later: no answer, 408, 429 or 5xx. */
  get temporary() {
    return this.status === 0 || this.status === 408 || this.status === 429 || this.status >= 500;
  }
}

/** The close reason by which the server ends one task's stream after the task's final event. */
const TASK_FINISHED = "task_finished";

/**
 * CloseError is the server ending a connection on purpose: a WebSocket
 * close frame (closeCode 1012 restart, 1013 try later, 4008 slow consumer,
 * 1008 refusal, 1000 with reason task_finished: the stream is complete)
 * or an SSE close event (closeCode 0). The subscription reconnects after
 * one, except after a refusal and the end of the stream.
 */
export class CloseError extends Error {
  constructor(closeCode, reason, message = "") {
    let text = "server closed the connection";
    if (closeCode) text += ` (${closeCode})`;
    if (reason) text += `: ${reason}`;
    if (message) text += `: ${message}`;
    super(text);
    this.name = "CloseError";
    this.closeCode = closeCode;
    this.reason = reason;
  }
}

/**
 * RefusedError: the server, or something on the way, did not give the
 * transport asked for. Auto falls back to the next transport, unless the
 * server refused the credentials (every transport would be refused alike).
 * transient: no readable answer came, so it cannot be told for sure.
 */
class RefusedError extends Error {
  constructor(transport, cause, transient = false) {
    super(`${transport} refused: ${cause.message}`);
    this.name = "RefusedError";
    this.transport = transport;
    this.cause = cause;
    this.transient = transient;
  }

  /** A 401, or pushd's own 403: the request's credentials, not the transport, were refused. */
  get credentials() {
    const c = this.cause;
    return c instanceof PushdError && (c.status === 401 || (c.status === 403 && c.code !== ""));
  }
}

/** Closed is thrown inside a subscription whose close() was called. */
class Closed extends Error {}

/** Ended is thrown inside a subscription when a poll's answer says the stream has ended ("final"). */
class Ended extends Error {}

/**
 * streamEnded: the server ended the stream for good, as one task's stream
 * ends after the task's final event (a close with reason task_finished, or
 * a poll's answer with final). The subscription ends without an error.
 */
function streamEnded(err) {
  return err instanceof Ended || (err instanceof CloseError && err.reason === TASK_FINISHED);
}

/**
 * backoffDelay is the wait in ms before try n (from 1): a random time up to
 * min·2ⁿ⁻¹ (full jitter), or up to hint (the SSE retry field) when that is
 * larger, capped at max; and at least retryAfter (the server's
 * Retry-After), capped at max. It is the schedule of internal/backoff.
 */
export function backoffDelay(n, { minBackoff, maxBackoff }, hint = 0, retryAfter = 0) {
  let ceil = maxBackoff;
  const c = minBackoff * 2 ** (Math.max(n, 1) - 1);
  if (c > 0 && c < ceil) ceil = c;
  if (hint > ceil) ceil = Math.min(hint, maxBackoff);
  let d = Math.floor(Math.random() * (ceil + 1));
  const ra = Math.min(retryAfter, maxBackoff);
  if (ra > d) d = ra;
  return d;
}

/** parseCursor reads "<epoch>:<seq>" or a bare "<seq>"; null when it is neither. */
export function parseCursor(s) {
  const m = /^(?:([A-Za-z0-9._-]{1,64}):)?(\d{1,16})$/.exec(String(s));
  return m ? { epoch: m[1] ?? "", seq: Number(m[2]) } : null;
}

/** tokenUser returns the user a token names (its sub claim), read without verifying it; "" if unreadable. */
export function tokenUser(token) {
  try {
    const part = String(token).trim().split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const sub = JSON.parse(atob(part.padEnd(Math.ceil(part.length / 4) * 4, "="))).sub;
    return typeof sub === "string" && /^[A-Za-z0-9._-]{1,64}$/.test(sub) ? sub : "";
  } catch {
    return "";
  }
}

/** retryAfterMs reads a Retry-After header (seconds or an HTTP date) as ms; 0 when absent. */
function retryAfterMs(v) {
  if (!v) return 0;
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const t = Date.parse(v);
  return Number.isNaN(t) ? 0 : Math.max(0, t - Date.now());
}

/** errorFrom turns an answer that is not the one expected into a PushdError. */
async function errorFrom(resp) {
  let text = "";
  try {
    text = (await resp.text()).slice(0, MAX_ERROR_BODY);
  } catch {
    // The body is lost; the status says enough.
  }
  const ra = retryAfterMs(resp.headers.get("Retry-After"));
  if ((resp.headers.get("Content-Type") || "").startsWith("application/json")) {
    try {
      const e = JSON.parse(text).error;
      if (e && typeof e.code === "string" && e.code !== "") {
        return new PushdError(resp.status, e.code, String(e.message ?? ""), ra);
      }
    } catch {
      // Not pushd's error body; fall through.
    }
  }
  let msg = `unexpected answer ${resp.status}`;
  const t = text.trim();
  if (t) msg += `: ${t.length > 200 ? t.slice(0, 200) + "..." : t}`;
  return new PushdError(resp.status, "", msg, ra);
}

/** noAnswer is the PushdError of a request that got no answer. */
function noAnswer(what, err) {
  const why = err && err.message ? err.message : String(err);
  return new PushdError(0, "", `${what}: no answer (the server is down or unreachable, or refused this page's origin): ${why}`);
}

/** permanent: reconnecting cannot help. */
function permanent(err) {
  if (err instanceof RefusedError) {
    if (err.cause instanceof PushdError && err.cause.status !== 0) return permanent(err.cause);
    return !err.transient;
  }
  if (err instanceof PushdError) return err.status >= 400 && err.status < 500 && err.status !== 408 && err.status !== 429;
  if (err instanceof CloseError) return err.closeCode === 1008;
  return false;
}

/** retryAfterOf returns the Retry-After in ms that err carries, if any. */
function retryAfterOf(err) {
  if (err instanceof RefusedError) return retryAfterOf(err.cause);
  return err instanceof PushdError ? err.retryAfter : 0;
}

/** report passes an exception thrown by a callback to the page, without stopping the subscription. */
function report(err) {
  if (typeof globalThis.reportError === "function") globalThis.reportError(err);
  else setTimeout(() => { throw err; });
}

/** randomKey returns 128 random bits in hex: an Idempotency-Key. */
function randomKey() {
  const b = new Uint8Array(16);
  globalThis.crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/**
 * Client talks to one pushd server. It holds configuration and the
 * subscriptions it made; close() ends them all.
 */
export class Client {
  #base;
  #opts;
  #subs = new Set();

  /**
   * @param {string} baseURL the server, such as "http://127.0.0.1:8080" (a path prefix is kept); relative to the page
   * @param {object} [options] user, token, transport, and the timings of DEFAULTS
   */
  constructor(baseURL, options = {}) {
    const u = new URL(baseURL, globalThis.location?.href);
    if (u.protocol === "ws:") u.protocol = "http:";
    if (u.protocol === "wss:") u.protocol = "https:";
    if (u.protocol !== "http:" && u.protocol !== "https:") {
      throw new TypeError(`pushd: server URL ${baseURL}: want http:// or https://`);
    }
    this.#base = u.origin + u.pathname.replace(/\/+$/, "");
    const o = { ...DEFAULTS };
    for (const [k, v] of Object.entries(options)) if (v !== undefined) o[k] = v;
    o.transport = checkTransport(o.transport);
    o.token = o.token ? String(o.token).trim() : "";
    o.user = o.user ? String(o.user) : tokenUser(o.token);
    this.#opts = o;
  }

  /** The server's base URL, as the constructor cleaned it. */
  get baseURL() {
    return this.#base;
  }

  /** The user the client acts as: the author of publish, present in the rooms it follows. */
  get user() {
    return this.#opts.user;
  }

  /**
   * subscribeRoom follows a room, present in it as the client's user while
   * connected (options.user overrides; "" is not present).
   */
  subscribeRoom(room, options = {}) {
    const user = options.user !== undefined ? options.user : this.#opts.user;
    return this.#subscribe(`/v1/rooms/${encodeURIComponent(room)}/events`, `room ${room}`, { ...options, user });
  }

  /** subscribeTasks follows every task's progress. */
  subscribeTasks(options = {}) {
    return this.#subscribe("/v1/tasks/events", "tasks", { ...options, user: "" });
  }

  /**
   * subscribeTask follows one task's progress (cursors of the tasks
   * stream). It ends by itself after the task's final event (state
   * "closed", error null); from the live end, a task that has ended
   * already gives that event, then the end.
   */
  subscribeTask(id, options = {}) {
    return this.#subscribe(`/v1/tasks/${encodeURIComponent(id)}/events`, `task ${id}`, { ...options, user: "" });
  }

  /**
   * subscribeStats follows the server's stats: an event of type "stats" a
   * second, with the snapshot in ev.stats (every node of a cluster
   * merged). It needs an admin token, or on a server without tokens a page
   * on the server's machine. From since "0" it starts with the last minute
   * the server keeps; after a restart of the server, a reset.
   */
  subscribeStats(options = {}) {
    return this.#subscribe("/v1/admin/stats/events", "stats", { ...options, user: "" });
  }

  #subscribe(path, name, options) {
    const o = { ...this.#opts };
    for (const [k, v] of Object.entries(options)) if (v !== undefined) o[k] = v;
    o.transport = checkTransport(o.transport);
    const sub = new Subscription(this, path, name, o, () => this.#subs.delete(sub));
    this.#subs.add(sub);
    sub._start();
    return sub;
  }

  /** close ends every subscription this client made. */
  close() {
    for (const s of [...this.#subs]) s.close();
  }

  /**
   * publish posts text to room as the client's user and resolves to the
   * stored event. It sends a random Idempotency-Key and retries, with the
   * same key, a try that failed for a passing reason (no answer, 408, 429,
   * 5xx; after Retry-After when given), at most publishTries tries in all.
   */
  async publish(room, text, { signal } = {}) {
    const body = { text: String(text) };
    if (this.#opts.user) body.user = this.#opts.user;
    return this.#postOnce(`/v1/rooms/${encodeURIComponent(room)}/messages`, body, randomKey(), signal);
  }

  /**
   * #postOnce posts body to path with an Idempotency-Key, and posts it
   * again with the same key after a failure for a passing reason, at most
   * publishTries tries in all: the server does it once.
   */
  async #postOnce(path, body, key, signal) {
    const headers = { "Idempotency-Key": key };
    for (let tries = 1; ; tries++) {
      try {
        return await this._request("POST", path, { body, headers, want: [201, 200], signal });
      } catch (err) {
        if (!(err instanceof PushdError) || !err.temporary || tries >= this.#opts.publishTries || signal?.aborted) {
          throw err;
        }
        await sleep(backoffDelay(tries, this.#opts, 0, err.retryAfter), signal);
      }
    }
  }

  /**
   * roomCursor resolves to the room's cursor now ("<epoch>:<seq>", seq 0
   * when empty): where a subscription from the live end would start.
   */
  async roomCursor(room, { signal } = {}) {
    const q = new URLSearchParams({ wait: "0" });
    const p = await this._request("GET", `/v1/rooms/${encodeURIComponent(room)}/events`, { query: q, signal });
    return p.cursor;
  }

  /** presence resolves to the users present in room, sorted. */
  async presence(room, { signal } = {}) {
    const p = await this._request("GET", `/v1/rooms/${encodeURIComponent(room)}/presence`, { signal });
    return p.users ?? [];
  }

  /**
   * startTask starts a task ({kind: "demo", name, total, interval, room,
   * private, cancel_unwatched, ...}; kind defaults to demo) as the
   * client's user and resolves to it. Like publish it sends an
   * Idempotency-Key (key, or a random one) and retries with it: the task
   * starts once.
   */
  async startTask(params = {}, { signal, key } = {}) {
    const body = { kind: "demo", ...params };
    if (this.#opts.user && body.user === undefined) body.user = this.#opts.user;
    return this.#postOnce("/v1/tasks", body, key ?? randomKey(), signal);
  }

  /** cancelTask cancels a task and resolves to it; a 409 PushdError if it had ended. */
  async cancelTask(id, { signal } = {}) {
    return this._request("POST", `/v1/tasks/${encodeURIComponent(id)}/cancel`, { want: [202], signal });
  }

  /** tasks resolves to every task the server keeps, newest first. */
  async tasks({ signal } = {}) {
    const l = await this._request("GET", "/v1/tasks", { signal });
    return l.tasks ?? [];
  }

  /** task resolves to one task. */
  async task(id, { signal } = {}) {
    return this._request("GET", `/v1/tasks/${encodeURIComponent(id)}`, { signal });
  }

  /** stats resolves to a snapshot of the server's stats (GET /v1/admin/stats). */
  async stats({ signal } = {}) {
    return this._request("GET", "/v1/admin/stats", { signal });
  }

  /** subscribers resolves to a stream's subscribers ("room/lobby", "tasks"), the furthest behind first. */
  async subscribers(stream, { limit, signal } = {}) {
    const q = new URLSearchParams({ stream });
    if (limit) q.set("limit", String(limit));
    return this._request("GET", "/v1/admin/stats/subscribers", { query: q, signal });
  }

  /** _url is the absolute URL of path with query q (a URLSearchParams). Internal. */
  _url(path, q) {
    const qs = q ? q.toString() : "";
    return this.#base + path + (qs ? "?" + qs : "");
  }

  /** _headers are the headers every fetch carries. Internal. */
  _headers(extra = {}) {
    const h = { ...extra };
    if (this.#opts.token) h.Authorization = `Bearer ${this.#opts.token}`;
    return h;
  }

  /** _token is the bearer token, for the WebSocket's ?token=. Internal. */
  get _token() {
    return this.#opts.token;
  }

  /**
   * _request sends one request and resolves to its JSON answer, if its
   * status is one of want; else it throws a PushdError. It is bounded by
   * requestTimeout plus extra ms, and by signal. Internal.
   */
  async _request(method, path, { query, body, headers, want = [200], signal, extra = 0 } = {}) {
    const ctrl = new AbortController();
    const timer = setTimeout(() => ctrl.abort(new Error(`timed out after ${this.#opts.requestTimeout + extra} ms`)), this.#opts.requestTimeout + extra);
    const onAbort = () => ctrl.abort(signal.reason);
    if (signal) {
      if (signal.aborted) throw signal.reason;
      signal.addEventListener("abort", onAbort, { once: true });
    }
    const what = `${method} ${path}`;
    try {
      const h = this._headers({ Accept: "application/json", ...headers });
      const init = { method, headers: h, signal: ctrl.signal, cache: "no-store" };
      if (body !== undefined) {
        h["Content-Type"] = "application/json";
        init.body = JSON.stringify(body);
      }
      let resp;
      try {
        resp = await fetch(this._url(path, query), init);
      } catch (err) {
        if (signal?.aborted) throw signal.reason;
        throw noAnswer(what, ctrl.signal.aborted ? ctrl.signal.reason : err);
      }
      if (!want.includes(resp.status)) throw await errorFrom(resp);
      if (!(resp.headers.get("Content-Type") || "").startsWith("application/json")) {
        throw new PushdError(resp.status, "", `${what}: ${resp.status} answer is not JSON: is this pushd?`);
      }
      try {
        return await resp.json();
      } catch (err) {
        if (signal?.aborted) throw signal.reason;
        throw new PushdError(0, "", `${what}: answer body unreadable: ${err.message}`);
      }
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    }
  }
}

/** checkTransport returns t if it names a transport, else throws. */
function checkTransport(t) {
  const v = t === "" || t == null ? "auto" : String(t);
  if (!TRANSPORTS.includes(v)) throw new TypeError(`pushd: unknown transport "${t}": use auto, ws, sse, longpoll or poll`);
  return v;
}

/** sleep resolves after ms, or rejects when signal aborts. */
function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal.reason);
    };
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Subscription follows one stream. It connects, reads, reconnects with
 * backoff and resumes from the cursor of the last event it passed on, so
 * every event reaches onEvent once and in order, across reconnects and
 * transport changes; duplicates a resume may bring (same epoch, seq not
 * above the last) are dropped. A reset event is passed on like any other
 * and moves the cursor: what is derived from the stream must be fetched
 * again. onState gets every change of connection state. After close()
 * returns, neither is called again, and no timer or connection is left.
 */
class Subscription {
  #c;
  #path;
  #name;
  #o;
  #onEnd;
  #pos = null; // {epoch, seq, str}: where to resume, after the last event passed on
  #cursor = null; // the cursor of the last event passed on
  #working = null; // auto: the transport that worked last
  #hint = 0; // the server's SSE retry hint, ms
  #longPollRefusals = 0; // long polls in a row that only the network refused
  #closed = false;
  #ended = false;
  #state = "connecting";
  #transport = null;
  #stop = new AbortController(); // aborted by close()
  #conn = null; // the current connection's stop function
  #timers = new Set();

  constructor(client, path, name, opts, onEnd) {
    this.#c = client;
    this.#path = path;
    this.#name = name;
    this.#o = opts;
    this.#onEnd = onEnd;
    if (opts.since !== undefined && opts.since !== null && opts.since !== "") {
      const p = parseCursor(opts.since);
      if (!p) throw new TypeError(`pushd: since "${opts.since}": want <epoch>:<seq> or <seq>`);
      this.#pos = { ...p, str: String(opts.since) };
    }
  }

  /** The cursor ("<epoch>:<seq>") of the last event passed to onEvent, or null before the first. */
  get cursor() {
    return this.#cursor;
  }

  /** The transport of the current or last connection, null before the first worked. */
  get transport() {
    return this.#transport;
  }

  /** The current state: "connecting", "connected", "reconnecting" or "closed". */
  get state() {
    return this.#state;
  }

  /** What is followed: "room lobby", "tasks", "task t1". */
  get stream() {
    return this.#name;
  }

  /** close stops the subscription, its timers and its connection; it reports the closed state once. */
  close() {
    if (this.#closed) return;
    this.#closed = true;
    this.#finish(null);
  }

  _start() {
    this.#run();
  }

  #finish(error) {
    if (this.#ended) return;
    this.#ended = true;
    this.#stop.abort(new Closed("closed"));
    if (this.#conn) this.#conn();
    this.#conn = null;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    this.#onEnd();
    this.#emit({ state: "closed", transport: this.#transport, error, retryIn: 0, attempt: 0 }, true);
  }

  #emit(s, final = false) {
    if (this.#ended && !final) return;
    this.#state = s.state;
    if (s.state === "connected") this.#transport = s.transport;
    if (!this.#o.onState) return;
    try {
      this.#o.onState({ state: s.state, transport: s.transport ?? null, error: s.error ?? null, retryIn: s.retryIn ?? 0, attempt: s.attempt ?? 0 });
    } catch (err) {
      report(err);
    }
  }

  /** #timer runs fn after ms unless the subscription ends first. */
  #timer(fn, ms) {
    const t = setTimeout(() => {
      this.#timers.delete(t);
      fn();
    }, ms);
    this.#timers.add(t);
    return t;
  }

  #clearTimer(t) {
    if (t === undefined || t === null) return;
    clearTimeout(t);
    this.#timers.delete(t);
  }

  /** #wait resolves after ms, or early when the browser comes back online; it rejects with Closed on close(). */
  #wait(ms) {
    return new Promise((resolve, reject) => {
      if (this.#ended) return reject(new Closed());
      const done = () => {
        this.#clearTimer(t);
        globalThis.removeEventListener?.("online", done);
        this.#stop.signal.removeEventListener("abort", stopped);
        resolve();
      };
      const stopped = () => {
        this.#clearTimer(t);
        globalThis.removeEventListener?.("online", done);
        reject(new Closed());
      };
      const t = this.#timer(done, ms);
      globalThis.addEventListener?.("online", done);
      this.#stop.signal.addEventListener("abort", stopped, { once: true });
    });
  }

  async #run() {
    let failures = 0;
    for (;;) {
      const sess = { opened: false, openedAt: 0, delivered: 0 };
      let err;
      try {
        await this.#connect(sess);
        err = new Error("connection ended");
      } catch (e) {
        err = e;
      }
      if (this.#ended) return;
      if (streamEnded(err)) {
        this.#finish(null);
        return;
      }
      if (permanent(err)) {
        this.#finish(err instanceof RefusedError && err.cause ? err.cause : err);
        return;
      }
      if (sess.delivered > 0 || (sess.opened && Date.now() - sess.openedAt >= STABLE_AFTER)) failures = 0;
      failures++;
      const delay = backoffDelay(failures, this.#o, this.#hint, retryAfterOf(err));
      this.#emit({ state: "reconnecting", transport: this.#order()[0], attempt: failures, retryIn: delay, error: err });
      try {
        await this.#wait(delay);
      } catch {
        return; // closed
      }
    }
  }

  /** #order is the transports to try, in order. */
  #order() {
    if (this.#o.transport !== "auto") return [this.#o.transport];
    const i = AUTO_ORDER.indexOf(this.#working);
    return i > 0 ? AUTO_ORDER.slice(i) : AUTO_ORDER;
  }

  /** #connect makes one connection, falling back in auto mode while transports are refused, and reads it until it ends. */
  async #connect(sess) {
    const order = this.#order();
    this.#emit({ state: "connecting", transport: order[0] });
    if (!this.#pos) {
      // Live end: learn where "now" is first, so that a drop before the
      // first event resumes from here instead of skipping ahead.
      const p = await this.#poll(null, 0, "");
      if (p.final) {
        // One task's stream, of a task that has ended: its final event,
        // and nothing more to follow.
        for (const ev of p.events ?? []) this.#deliver(ev, sess);
        this.#setPos(p.cursor);
        throw new Ended("the stream has ended");
      }
      this.#setPos(p.cursor);
    }
    let last;
    for (let i = 0; i < order.length; i++) {
      const t = order[i];
      if (i > 0) this.#emit({ state: "connecting", transport: t });
      try {
        await this.#runTransport(t, sess);
        return;
      } catch (err) {
        last = err;
        if (this.#ended) throw err;
        if (sess.opened) {
          if (this.#o.transport === "auto") {
            // A transport that worked and then was refused (a long poll a
            // proxy will not hold) gives way to the next for good.
            this.#working = err instanceof RefusedError && i + 1 < order.length ? order[i + 1] : t;
          }
          throw err;
        }
        if (!(err instanceof RefusedError)) throw err;
        if (err.credentials) throw err.cause;
        if (i === order.length - 1) throw err;
      }
    }
    throw last;
  }

  #runTransport(t, sess) {
    switch (t) {
      case "ws":
        return this.#runWS(sess);
      case "sse":
        return this.#runSSE(sess);
      case "longpoll":
        return this.#runPoll(sess, "longpoll", this.#o.longPollWait);
      case "poll":
        return this.#runPoll(sess, "poll", 0);
    }
    throw new TypeError(`unknown transport ${t}`);
  }

  /** #query is the subscribe request's query: since= the position, user= for presence. */
  #query() {
    const q = new URLSearchParams();
    if (this.#pos) q.set("since", this.#pos.str);
    if (this.#o.user) q.set("user", this.#o.user);
    return q;
  }

  #open(sess, t) {
    sess.opened = true;
    sess.openedAt = Date.now();
    if (t !== "sse") this.#hint = 0; // SSE's retry hint is for SSE reconnects
    this.#emit({ state: "connected", transport: t });
  }

  #setPos(str) {
    const p = parseCursor(str);
    if (!p) throw new PushdError(0, "", `server sent a cursor that is not one: ${str}`);
    this.#pos = { ...p, str: String(str) };
  }

  /** #deliver passes ev on unless it is a duplicate, and moves the position to it. */
  #deliver(ev, sess) {
    if (this.#ended) throw new Closed();
    if (ev === null || typeof ev !== "object" || typeof ev.seq !== "number" || typeof ev.epoch !== "string") {
      throw new Error("malformed event from server");
    }
    const p = this.#pos;
    if (ev.type !== "reset" && p && ev.epoch === p.epoch && ev.seq <= p.seq) return;
    const cur = `${ev.epoch}:${ev.seq}`;
    this.#pos = { epoch: ev.epoch, seq: ev.seq, str: cur };
    this.#cursor = cur;
    sess.delivered++;
    if (!this.#o.onEvent) return;
    try {
      this.#o.onEvent(ev);
    } catch (err) {
      report(err);
    }
  }

  #deliverJSON(text, sess) {
    let ev;
    try {
      ev = JSON.parse(text);
    } catch (err) {
      throw new Error(`malformed event from server: ${err.message}`);
    }
    this.#deliver(ev, sess);
  }

  /** #poll sends one poll after cursor (null: none) waiting up to wait ms, present as user. */
  #poll(cursor, wait, user) {
    const q = new URLSearchParams();
    if (cursor) q.set("since", cursor);
    q.set("wait", `${wait}ms`);
    if (user) q.set("user", user);
    return this.#c._request("GET", this.#path, { query: q, signal: this.#stop.signal, extra: wait });
  }

  /**
   * #probe explains a transport that failed without an answer it could
   * read (a browser shows a refused WebSocket handshake, or a fetch a
   * proxy answered without CORS headers, as no answer): a short poll of
   * the same stream tells a server that is away (no answer here either),
   * one that refuses the request (its error), and a network that refuses
   * only the transport (the poll works).
   */
  async #probe(t, cause) {
    try {
      await this.#poll(this.#pos?.str ?? null, 0, "");
    } catch (err) {
      if (this.#ended) throw new Closed();
      if (err instanceof PushdError && err.status !== 0) return new RefusedError(t, err);
      return cause;
    }
    return new RefusedError(t, new PushdError(0, "", `${cause.message}, while short polls of the same stream work: something on the way refuses ${t}`), true);
  }

  /**
   * #connection registers stop as the current connection's and returns a
   * watchdog: after ms without kick it calls onQuiet.
   */
  #connection(stop) {
    this.#conn = stop;
    let t = null;
    let d = 0;
    let onQuiet = null;
    const wd = {
      set: (ms, fn) => {
        d = ms;
        onQuiet = fn;
        wd.kick();
      },
      kick: () => {
        this.#clearTimer(t);
        t = d > 0 && !this.#ended ? this.#timer(() => onQuiet(), d) : null;
      },
      stop: () => {
        d = 0;
        this.#clearTimer(t);
        t = null;
        if (this.#conn === stop) this.#conn = null;
      },
    };
    return wd;
  }

  /**
   * #runWS reads one WebSocket: a text message per event, or with the batch
   * subprotocol several separated by "\n". A browser cannot see the
   * server's pings, so a WebSocket that brought nothing for idleTimeout is
   * checked with a short poll: events the socket has not brought within a
   * grace time, or no answer at all, end it.
   */
  async #runWS(sess) {
    let failure;
    try {
      await this.#readWS(sess);
    } catch (err) {
      failure = err;
    }
    if (failure && failure.handshake) throw await this.#probe("ws", failure);
    throw failure;
  }

  #readWS(sess) {
    return new Promise((resolve, reject) => {
      const q = this.#query();
      if (this.#c._token) q.set("token", this.#c._token);
      const url = this.#c._url(this.#path, q).replace(/^http/, "ws");
      let ws;
      try {
        ws = new WebSocket(url, [BATCH_SUBPROTOCOL]);
      } catch (err) {
        reject(new RefusedError("ws", new PushdError(0, "", `websocket: ${err.message}`)));
        return;
      }
      let opened = false;
      let settled = false;
      let probeGrace = null;
      const fail = (err) => {
        if (settled) return;
        settled = true;
        wd.stop();
        this.#clearTimer(probeGrace);
        ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
        if (ws.readyState === WebSocket.CONNECTING || ws.readyState === WebSocket.OPEN) ws.close(1000);
        reject(err);
      };
      const wd = this.#connection(() => fail(new Closed()));
      const handshakeFailed = (why) => {
        const e = new PushdError(0, "", `websocket handshake: ${why}`);
        e.handshake = true;
        fail(e);
      };
      wd.set(this.#o.connectTimeout, () => handshakeFailed(`no answer within ${this.#o.connectTimeout} ms`));
      const check = async () => {
        const before = this.#pos?.str;
        let p;
        try {
          p = await this.#poll(before ?? null, 0, "");
        } catch (err) {
          if (settled || this.#ended) return;
          if (err instanceof PushdError && err.status === 0) {
            fail(new Error(`websocket: nothing from the server for ${this.#o.idleTimeout} ms, and no answer to a poll`));
          } else {
            wd.kick();
          }
          return;
        }
        if (settled || this.#ended) return;
        if (p.events.length === 0 || this.#pos?.str !== before) {
          wd.kick();
          return;
        }
        probeGrace = this.#timer(() => {
          if (this.#pos?.str === before) fail(new Error("websocket: events are waiting that it does not bring"));
          else wd.kick();
        }, PROBE_GRACE);
      };
      ws.onopen = () => {
        opened = true;
        this.#open(sess, "ws");
        wd.set(this.#o.idleTimeout, check);
      };
      ws.onmessage = (m) => {
        if (settled) return;
        this.#clearTimer(probeGrace);
        wd.kick();
        if (typeof m.data !== "string") return; // the protocol sends text only
        try {
          for (const line of m.data.split("\n")) if (line.trim() !== "") this.#deliverJSON(line, sess);
        } catch (err) {
          fail(err);
        }
      };
      ws.onerror = () => {}; // onclose follows and says more
      ws.onclose = (e) => {
        if (!opened) handshakeFailed(`closed before it opened (${e.code})`);
        else fail(new CloseError(e.code, e.reason));
      };
    });
  }

  /**
   * #runSSE reads one Server-Sent Events stream through fetch, which, unlike
   * EventSource, shows the answer's status and lets the subscription decide
   * when to reconnect. Any bytes, heartbeat comments too, count as signs of
   * life; nothing for idleTimeout ends the connection.
   */
  async #runSSE(sess) {
    const ctrl = new AbortController();
    let quiet = null;
    const wd = this.#connection(() => ctrl.abort(new Closed()));
    try {
      wd.set(this.#o.connectTimeout, () => {
        quiet = new PushdError(0, "", `sse: no answer within ${this.#o.connectTimeout} ms`);
        ctrl.abort(quiet);
      });
      let resp;
      try {
        resp = await fetch(this.#c._url(this.#path, this.#query()), {
          headers: this.#c._headers({ Accept: "text/event-stream" }),
          signal: ctrl.signal,
          cache: "no-store",
        });
      } catch (err) {
        if (this.#ended) throw new Closed();
        if (quiet) throw new RefusedError("sse", quiet, true);
        throw await this.#probe("sse", noAnswer("sse", err));
      }
      if (resp.status !== 200) throw new RefusedError("sse", await errorFrom(resp));
      const ct = resp.headers.get("Content-Type") || "";
      if (!ct.startsWith("text/event-stream")) {
        ctrl.abort();
        throw new RefusedError("sse", new PushdError(resp.status, "", `sse: answer is "${ct}", not text/event-stream`));
      }
      this.#open(sess, "sse");
      wd.set(this.#o.idleTimeout, () => {
        quiet = new Error(`sse: nothing from the server for ${this.#o.idleTimeout} ms`);
        ctrl.abort(quiet);
      });
      const reader = resp.body.getReader();
      const parser = new SSEParser();
      const dec = new TextDecoder();
      for (;;) {
        let r;
        try {
          r = await reader.read();
        } catch (err) {
          if (this.#ended) throw new Closed();
          throw quiet ?? new Error(`sse: ${err.message}`);
        }
        if (r.done) throw new Error("sse: the server ended the stream");
        wd.kick();
        for (const f of parser.push(dec.decode(r.value, { stream: true }))) {
          if (f.event === "close") {
            let body = {};
            try {
              body = JSON.parse(f.data);
            } catch {
              // A close event without a body still closes.
            }
            ctrl.abort();
            throw new CloseError(0, String(body.reason ?? ""), String(body.message ?? ""));
          }
          this.#deliverJSON(f.data, sess);
        }
        if (parser.retry > 0) this.#hint = parser.retry;
      }
    } finally {
      wd.stop();
      ctrl.abort();
    }
  }

  /**
   * #runPoll polls until a poll fails: long polls back to back (the first
   * a short one, so that connected is reported once the server accepts,
   * not at the stream's next event), or short polls every pollInterval.
   * Each answer's cursor is where the next one continues. Two long polls
   * in a row that get no answer, or one not from pushd, while a short poll
   * works are refused by the network: auto goes on with short polls.
   */
  async #runPoll(sess, t, wait) {
    for (;;) {
      const start = Date.now();
      const w = sess.opened ? wait : 0;
      let p;
      try {
        p = await this.#poll(this.#pos?.str ?? null, w, this.#o.user);
      } catch (err) {
        if (this.#ended) throw new Closed();
        if (err instanceof PushdError && w > 0 && (err.status === 0 || err.code === "")) {
          const why = await this.#probe(t, err);
          // Twice in a row: once may be a server restarting between the
          // long poll and the check.
          if (why instanceof RefusedError && why.cause.status === 0 && ++this.#longPollRefusals >= 2) throw why;
        }
        throw err;
      }
      if (w > 0) this.#longPollRefusals = 0;
      if (!sess.opened) this.#open(sess, t);
      for (const ev of p.events ?? []) this.#deliver(ev, sess);
      // Every event up to the answer's cursor has been passed on (a
      // one-task stream's cursor may be past its last event).
      this.#setPos(p.cursor);
      if (p.final) throw new Ended("the stream has ended");
      let pause = 0;
      const n = (p.events ?? []).length;
      if (n >= MAX_POLL_EVENTS) pause = 0;
      else if (t === "poll") pause = this.#o.pollInterval;
      else if (n === 0 && Date.now() - start < w / 2) pause = this.#o.pollInterval; // the server is going away, or something does not hold requests: do not spin
      if (pause > 0) await this.#wait(pause); // rejects with Closed on close()
    }
  }
}

/**
 * SSEParser parses an event stream as the HTML standard says: lines end in
 * CRLF, LF or CR; a line starting with ":" is a comment; "field: value"
 * loses one space after the colon; data lines are joined with "\n"; a blank
 * line dispatches the frame unless it has no data; retry sets the
 * reconnection time.
 */
class SSEParser {
  #buf = "";
  #event = "";
  #data = [];
  #first = true;
  /** The reconnection time the server asked for, in ms; 0 if none. */
  retry = 0;

  /** push takes the next piece of text and returns the frames it completes. */
  push(text) {
    this.#buf += text;
    const frames = [];
    for (;;) {
      const m = /\r\n|\r|\n/.exec(this.#buf);
      if (!m) break;
      // A CR at the very end may be the first half of a CRLF: wait.
      if (m[0] === "\r" && m.index === this.#buf.length - 1) break;
      let line = this.#buf.slice(0, m.index);
      this.#buf = this.#buf.slice(m.index + m[0].length);
      if (this.#first) {
        line = line.replace(/^\uFEFF/, "");
        this.#first = false;
      }
      this.#line(line, frames);
    }
    return frames;
  }

  #line(line, frames) {
    if (line === "") {
      if (this.#data.length > 0) frames.push({ event: this.#event || "message", data: this.#data.join("\n") });
      this.#event = "";
      this.#data = [];
      return;
    }
    if (line[0] === ":") return;
    const i = line.indexOf(":");
    const field = i < 0 ? line : line.slice(0, i);
    let value = i < 0 ? "" : line.slice(i + 1);
    if (value[0] === " ") value = value.slice(1);
    if (field === "event") this.#event = value;
    else if (field === "data") this.#data.push(value);
    else if (field === "retry" && /^\d+$/.test(value)) this.retry = Number(value);
  }
}
