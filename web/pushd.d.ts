// Types of pushd.js, the browser client of pushd. PROTOCOL.md is the wire
// contract; these types follow the module's exports one for one.

/** A transport a Client may use; auto tries ws, then sse, then longpoll, then poll. */
export type Transport = "auto" | "ws" | "sse" | "longpoll" | "poll";

/** The transports a Client may be told to use. */
export const TRANSPORTS: readonly Transport[];

/** The timings of ClientOptions, in milliseconds, and the default transport. */
export interface Timings {
  /** Ceiling of the first reconnect wait; each try in a row doubles it (full jitter). Default 250. */
  minBackoff: number;
  /** Cap of every reconnect wait, and of a Retry-After honoured. Default 30000. */
  maxBackoff: number;
  /** A WebSocket or SSE connection from which nothing came for this long is checked or dropped. Default 45000. */
  idleTimeout: number;
  /** Bound of each handshake. Default 10000. */
  connectTimeout: number;
  /** Wait asked of the server in each long poll (it may cap it). Default 25000. */
  longPollWait: number;
  /** Time between short polls. Default 1000. */
  pollInterval: number;
  /** Bound of each request beyond a long poll's wait. Default 30000. */
  requestTimeout: number;
  /** Tries of one publish or task start in all, the first included. Default 5. */
  publishTries: number;
}

/** Defaults of ClientOptions. */
export const DEFAULTS: Readonly<Timings & { transport: "auto" }>;

export interface ClientOptions extends Partial<Timings> {
  /** The user to act as: author of publish, present in rooms followed. Default: the token's user. */
  user?: string;
  /** A bearer token (pushd token mints one); sent as Authorization, and as ?token= on WebSockets. */
  token?: string;
  /** Default "auto". */
  transport?: Transport;
}

/** An event as every transport delivers it (PROTOCOL.md, "Streams and events"). */
export interface PushdEvent {
  seq: number;
  epoch: string;
  stream: string;
  type: "login" | "logout" | "message" | "progress" | "reset" | "stats" | string;
  time: string;
  user?: string;
  text?: string;
  /** reset: epoch_changed, history_truncated or cursor_ahead. */
  reason?: string;
  /** progress: the task after the change. */
  task?: Task;
  /** stats: a snapshot of the server (subscribeStats). */
  stats?: Stats;
}

/** The server's figures (GET /v1/admin/stats, PROTOCOL.md "Stats"): rates per second, latencies in ms. */
export interface Stats {
  time: string;
  nodes: NodeStats[];
  connections: Record<"ws" | "sse" | "longpoll", number>;
  events_in: number;
  deliveries_out: number;
  slow_drops: number;
  /** The busiest streams, at most 100 of streams_total. */
  streams: StreamStats[];
  streams_total: number;
  /** The subscribers furthest behind, at most 20. */
  lagging: SubscriberStats[];
  tasks: { by_state: Record<TaskState, number>; live: Task[] };
}

export interface NodeStats {
  node: string;
  host?: string;
  pid?: number;
  started?: string;
  /** Set when the node did not answer; its figures are then missing. */
  error?: string;
  connections?: Record<string, number>;
  events_in: number;
  deliveries_out: number;
  slow_drops: number;
  max_lag?: number;
  store: {
    appends: number;
    append_p50_ms: number;
    append_p99_ms: number;
    probe?: string;
    probe_ms?: number;
    probe_error?: string;
  };
  process: { memory_bytes: number; heap_bytes: number; goroutines: number; cpu: number; cores: number };
}

export interface StreamStats {
  stream: string;
  subscribers: number;
  present: number;
  events_in: number;
  deliveries_out: number;
  head: number;
  max_lag: number;
}

export interface SubscriberStats {
  stream: string;
  transport: string;
  addr: string;
  user?: string;
  lag: number;
  since: string;
  node?: string;
}

export interface SubscriberList {
  stream: string;
  head: number;
  total: number;
  subscribers: SubscriberStats[];
  /** The nodes of a cluster that did not answer, and why. */
  missing?: string[];
}

export type TaskState = "queued" | "running" | "succeeded" | "failed" | "cancelled";

export interface Task {
  id: string;
  kind: string;
  name?: string;
  state: TaskState;
  done: number;
  total: number;
  percent: number;
  message?: string;
  eta_seconds?: number;
  created: string;
  started?: string;
  finished?: string;
  /** Who started it. */
  owner?: string;
  /** Shown only to those who may use this room. */
  room?: string;
  /** Shown only to its owner. */
  private?: boolean;
  /** Cancelled once nobody has watched it for this long (a Go duration). */
  cancel_unwatched?: string;
}

/** Parameters of startTask: kind (default "demo") and its params. */
export interface TaskParams {
  kind?: "demo" | "external" | string;
  name?: string;
  total?: number;
  /** demo: a Go duration, "1ms" to "1h". */
  interval?: string;
  /** demo: the step at which to fail. */
  fail_at?: number;
  /** Show the task only to those who may use this room. */
  room?: string;
  /** Show the task only to its owner (and admins). */
  private?: boolean;
  /** A Go duration, "1s" to "24h": cancel the task once nobody has watched it for that long. */
  cancel_unwatched?: string;
  [param: string]: unknown;
}

export interface StartTaskOptions extends RequestOptions {
  /** The start's Idempotency-Key (1 to 64 of A-Z a-z 0-9 . _ : -); default 128 random bits in hex. */
  key?: string;
}

export type ConnState = "connecting" | "connected" | "reconnecting" | "closed";

export interface StateChange {
  state: ConnState;
  /** Being tried (connecting), in use (connected), next to try (reconnecting), last used (closed). */
  transport: Exclude<Transport, "auto"> | null;
  /** Why the connection dropped (reconnecting) or the subscription ended (closed; null after close(), and when the server ended the stream: a task's after its final event). */
  error: Error | null;
  /** Milliseconds before the next try (reconnecting). */
  retryIn: number;
  /** Number of the coming try since the last connection that worked, from 1 (reconnecting). */
  attempt: number;
}

export interface SubscribeOptions extends Partial<Timings> {
  /** Start after this cursor: "0" for the start, "<epoch>:<seq>" kept from before; default the live end. */
  since?: string;
  /** Every event, once, in order; a reset means "fetch what you derive from the stream again". */
  onEvent?: (ev: PushdEvent) => void;
  /** Every change of connection state. */
  onState?: (s: StateChange) => void;
  /** This subscription's transport, instead of the client's. */
  transport?: Transport;
}

export interface RoomSubscribeOptions extends SubscribeOptions {
  /** Present in the room as this user while connected; default the client's user; "" is not present. */
  user?: string;
}

export interface Subscription {
  /** The cursor of the last event passed to onEvent, or null before the first. */
  readonly cursor: string | null;
  /** The transport of the current or last connection, null before the first worked. */
  readonly transport: Exclude<Transport, "auto"> | null;
  readonly state: ConnState;
  /** What is followed: "room lobby", "tasks", "task t1". */
  readonly stream: string;
  /** Stops the subscription; no callback runs after it returns, no timer or connection is left. */
  close(): void;
}

export interface RequestOptions {
  signal?: AbortSignal;
}

export class Client {
  constructor(baseURL: string, options?: ClientOptions);
  readonly baseURL: string;
  readonly user: string;
  subscribeRoom(room: string, options?: RoomSubscribeOptions): Subscription;
  subscribeTasks(options?: SubscribeOptions): Subscription;
  /** Follows one task; the subscription ends by itself (closed, error null) after the task's final event, which from the live end comes at once for a task that has ended. */
  subscribeTask(id: string, options?: SubscribeOptions): Subscription;
  /** Follows the server's stats: a "stats" event a second, ev.stats the snapshot; needs an admin token (or, on a server without tokens, this machine). From since "0" it starts with the last minute the server keeps. */
  subscribeStats(options?: SubscribeOptions): Subscription;
  /** A snapshot of the server's stats, every node of a cluster merged. */
  stats(options?: RequestOptions): Promise<Stats>;
  /** A stream's subscribers ("room/lobby", "tasks"), the furthest behind first, at most limit (1000 by default). */
  subscribers(stream: string, options?: RequestOptions & { limit?: number }): Promise<SubscriberList>;
  /** Ends every subscription this client made. */
  close(): void;
  /** Posts text as the client's user; retried safely with one Idempotency-Key. */
  publish(room: string, text: string, options?: RequestOptions): Promise<PushdEvent>;
  /** The room's cursor now: where a subscription from the live end would start. */
  roomCursor(room: string, options?: RequestOptions): Promise<string>;
  presence(room: string, options?: RequestOptions): Promise<string[]>;
  /** Sent with an Idempotency-Key and retried with it like publish: the task starts once. */
  startTask(params?: TaskParams, options?: StartTaskOptions): Promise<Task>;
  cancelTask(id: string, options?: RequestOptions): Promise<Task>;
  tasks(options?: RequestOptions): Promise<Task[]>;
  task(id: string, options?: RequestOptions): Promise<Task>;
}

/** A failed request: status 0 when no answer came, code "" when the answer was not pushd's. */
export class PushdError extends Error {
  constructor(status: number, code: string, message: string, retryAfter?: number);
  readonly name: "PushdError";
  status: number;
  code: string;
  /** Milliseconds the server asked to wait (Retry-After); 0 if it said nothing. */
  retryAfter: number;
  /** No answer, 408, 429 or 5xx: the same request may succeed later. */
  readonly temporary: boolean;
}

/** The server ended a connection on purpose (a WebSocket close frame, or an SSE close event: closeCode 0); reason task_finished ends a subscription without an error. */
export class CloseError extends Error {
  constructor(closeCode: number, reason: string, message?: string);
  readonly name: "CloseError";
  closeCode: number;
  reason: string;
}

/** The wait in ms before try n: full jitter, the SSE retry hint and Retry-After honoured. */
export function backoffDelay(
  n: number,
  policy: { minBackoff: number; maxBackoff: number },
  hint?: number,
  retryAfter?: number,
): number;

/** Reads "<epoch>:<seq>" or "<seq>"; null if it is neither. */
export function parseCursor(s: string): { epoch: string; seq: number } | null;

/** The user a token names (its sub), read without verifying; "" if unreadable. */
export function tokenUser(token: string): string;
