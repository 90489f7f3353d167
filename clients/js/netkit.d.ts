// TypeScript declarations of netkit.js, the netkit hub client (protocol v1).

/** An error the hub answered with (bad_request, forbidden, not_found, too_large,
 * too_many_requests, unavailable, internal), or a local one: not_connected,
 * connection_lost, closed. */
export class NetkitError extends Error {
  readonly code: string;
  readonly reason: string;
}

export type State = "idle" | "connecting" | "connected" | "reconnecting" | "closed";

export interface ClientOptions {
  /** A JWT sent as ?token= at every upgrade. */
  token?: string;
  /** Called before every connection (first and reconnects) for a fresh token. */
  getToken?: () => string | Promise<string>;
  /** Reconnect after a lost connection (default true). */
  reconnect?: boolean;
  /** First reconnect delay in ms (default 100); it doubles per failed attempt. */
  minDelay?: number;
  /** Largest reconnect delay in ms (default 10000); each wait is drawn between half and all of it. */
  maxDelay?: number;
  /** Time for the upgrade and the welcome, in ms (default 10000). */
  handshakeTimeout?: number;
  /** A WebSocket constructor; default globalThis.WebSocket. */
  WebSocket?: unknown;
}

export interface Welcome {
  push: "welcome";
  client: string;
  user: string;
  node: string;
  version: string;
}

export interface MessagePush {
  push: "message";
  channel: string;
  offset: number;
  from?: string;
  data: unknown;
}

export interface ClientInfo {
  client: string;
  user: string;
}

export interface JoinLeavePush extends ClientInfo {
  push: "join" | "leave";
  channel: string;
}

export interface DirectPush {
  push: "direct";
  from?: string;
  data: unknown;
}

export interface Subscribed {
  channel: string;
  offset: number;
  epoch: string;
  /** After a reconnect: whether every missed message follows. undefined on a first subscribe. */
  recovered?: boolean;
  resubscribe: boolean;
}

export interface Handlers {
  onMessage?: (m: MessagePush) => void;
  onJoin?: (p: JoinLeavePush) => void;
  onLeave?: (p: JoinLeavePush) => void;
  onSubscribed?: (s: Subscribed) => void;
}

export interface SubscribeResult {
  channel: string;
  offset: number;
  epoch: string;
  recovered?: boolean;
}

export interface HistoryResult {
  epoch: string;
  offset: number;
  recovered?: boolean;
  messages: MessagePush[];
}

export interface Disconnected {
  /** The hub's disconnect code (shutdown, slow_consumer, policy, ...) or connection_lost. */
  code: string;
  reason: string;
  /** The WebSocket close status (1006 when the connection just dropped). */
  closeStatus: number;
  willReconnect: boolean;
}

export interface Events {
  state: State;
  connected: { user: string; client: string; node: string; reconnect: boolean };
  disconnected: Disconnected;
  recovered: { channel: string; recovered: boolean };
  direct: DirectPush;
  error: Error;
}

export class Client {
  constructor(url: string, options?: ClientOptions);
  readonly state: State;
  /** The user id of the current connection; an anonymous client gets a new one per connection. */
  readonly user: string;
  readonly clientId: string;
  on<K extends keyof Events>(event: K, fn: (v: Events[K]) => void): () => void;
  connect(): Promise<Welcome>;
  subscribe(channel: string, handlers?: Handlers, options?: { last?: number }): Promise<SubscribeResult>;
  unsubscribe(channel: string): Promise<void>;
  publish(channel: string, data: unknown): Promise<number>;
  send(user: string, data: unknown): Promise<number>;
  presence(channel: string): Promise<ClientInfo[]>;
  history(channel: string, options?: { limit?: number; since?: { offset: number; epoch: string } }): Promise<HistoryResult>;
  ping(): Promise<{}>;
  close(): void;
}
