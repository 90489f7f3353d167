// netkit.js: a client of the netkit hub (protocol v1, docs/protocol.md) for
// browsers and Node 20+. One ES module, no dependencies, no build step.
//
//   import { Client } from "./netkit.js";
//   const hub = new Client("ws://localhost:9999/ws");
//   await hub.connect();
//   await hub.subscribe("room", { onMessage: (m) => console.log(m.from, m.data) });
//   await hub.publish("room", { text: "hello" });

/** An error the hub answered a command with, or a local failure with a code of ours. */
export class NetkitError extends Error {
  constructor(code, message) {
    super(`${code}: ${message}`);
    this.name = "NetkitError";
    this.code = code;
    this.reason = message;
  }
}

// Disconnects after which reconnecting cannot help (as the Go client decides,
// docs/clients.md): an operator's kick or abuse (policy, 1008) and an expired token.
function final(code, closeStatus) {
  return (code === "policy" && closeStatus === 1008) || code === "token_expired";
}

const defaults = {
  token: "",
  getToken: null,
  reconnect: true,
  minDelay: 100,
  maxDelay: 10000,
  handshakeTimeout: 10000,
  WebSocket: null,
};

/**
 * A connection to the hub that reconnects by itself, with backoff and jitter,
 * and recovers what its subscriptions missed with since.
 */
export class Client {
  constructor(url, options = {}) {
    this.url = url;
    this.opts = { ...defaults, ...options };
    this.WS = this.opts.WebSocket || globalThis.WebSocket;
    if (!this.WS) {
      throw new NetkitError("bad_request", "no WebSocket: pass options.WebSocket (Node 20 needs --experimental-websocket)");
    }
    this.state = "idle"; // idle, connecting, connected, reconnecting, closed
    this.user = "";
    this.clientId = "";
    this.ws = null;
    this.nextId = 1;
    this.pending = new Map(); // id -> {resolve, reject}
    this.subs = new Map(); // channel -> subscription
    this.listeners = new Map(); // event -> Set of functions
    this.attempt = 0;
    this.timer = null;
    this.lastDisconnect = null;
  }

  /** Registers fn for an event: state, connected, disconnected, recovered, direct, error. Returns a function that removes it. */
  on(event, fn) {
    if (!this.listeners.has(event)) this.listeners.set(event, new Set());
    this.listeners.get(event).add(fn);
    return () => this.listeners.get(event).delete(fn);
  }

  emit(event, value) {
    for (const fn of this.listeners.get(event) || []) {
      try {
        fn(value);
      } catch (err) {
        if (event !== "error") this.emit("error", err);
      }
    }
  }

  setState(s) {
    if (this.state === s) return;
    this.state = s;
    this.emit("state", s);
  }

  /**
   * Connects and resolves with the welcome once the hub has greeted us. The
   * first connection is not retried: a wrong URL or a refused token fails here.
   */
  connect() {
    if (this.state !== "idle" && this.state !== "closed") {
      return Promise.reject(new NetkitError("bad_request", `connect: client is ${this.state}`));
    }
    this.setState("connecting");
    return this.open(true);
  }

  async open(first) {
    let token = this.opts.token;
    if (this.opts.getToken) token = await this.opts.getToken();
    if (this.state === "closed") throw new NetkitError("closed", "client closed");
    const url = new URL(this.url, globalThis.location ? globalThis.location.href : undefined);
    if (url.protocol === "http:") url.protocol = "ws:";
    if (url.protocol === "https:") url.protocol = "wss:";
    if (token) url.searchParams.set("token", token);
    return new Promise((resolve, reject) => {
      const ws = new this.WS(url.toString());
      this.ws = ws;
      let welcomed = false;
      let disconnectPush = null;
      const timeout = setTimeout(() => {
        if (!welcomed) ws.close();
      }, this.opts.handshakeTimeout);
      ws.onmessage = (ev) => {
        for (const line of String(ev.data).split("\n")) {
          if (!line) continue;
          let obj;
          try {
            obj = JSON.parse(line);
          } catch (err) {
            this.emit("error", new NetkitError("bad_request", `hub sent bad JSON: ${err.message}`));
            continue;
          }
          if (obj.push === "welcome") {
            welcomed = true;
            clearTimeout(timeout);
            this.onWelcome(obj, first);
            resolve(obj);
          } else if (obj.push === "disconnect") {
            disconnectPush = obj;
          } else {
            this.dispatch(obj);
          }
        }
      };
      let opened = false;
      let ended = false;
      const end = (ev) => {
        if (ended) return;
        ended = true;
        clearTimeout(timeout);
        if (this.ws !== ws) return;
        this.ws = null;
        const info = {
          code: disconnectPush ? disconnectPush.code : "connection_lost",
          reason: disconnectPush ? disconnectPush.reason : ev.reason || "connection closed",
          closeStatus: ev.code || 1006,
        };
        this.failPending(info);
        if (!welcomed && first) {
          this.setState("closed");
          reject(new NetkitError(info.code, `cannot connect to ${this.url}: ${info.reason}`));
          return;
        }
        this.onLost(info, welcomed);
      };
      ws.onopen = () => {
        opened = true;
      };
      ws.onclose = end;
      // Node 20's WebSocket reports a failed handshake with error and no close.
      ws.onerror = () => {
        if (!opened) end({ code: 1006, reason: "connection failed" });
      };
    });
  }

  onWelcome(w, first) {
    this.user = w.user;
    this.clientId = w.client;
    this.attempt = 0;
    this.setState("connected");
    this.emit("connected", { user: w.user, client: w.client, node: w.node, reconnect: !first });
    for (const sub of this.subs.values()) this.resubscribe(sub, !first);
  }

  onLost(info, welcomed) {
    if (this.state === "closed") return;
    const willReconnect = this.opts.reconnect && !final(info.code, info.closeStatus);
    if (welcomed) this.emit("disconnected", { ...info, willReconnect });
    if (!willReconnect) {
      this.setState("closed");
      return;
    }
    this.setState("reconnecting");
    // Equal jitter: between half and all of an exponential delay, so clients
    // cut off together do not come back together.
    const base = Math.min(this.opts.maxDelay, this.opts.minDelay * 2 ** this.attempt);
    const delay = base / 2 + (Math.random() * base) / 2;
    this.attempt++;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.open(false).catch(() => {}); // a failed attempt ends in onclose, which retries
    }, delay);
  }

  failPending(info) {
    const err = new NetkitError("connection_lost", `connection lost before the reply (${info.code}: ${info.reason}); it may or may not have been carried out`);
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  dispatch(obj) {
    if (obj.id !== undefined && obj.push === undefined) {
      const p = this.pending.get(obj.id);
      if (!p) return;
      this.pending.delete(obj.id);
      if (obj.error) p.reject(new NetkitError(obj.error.code, obj.error.message));
      else p.resolve(obj.result);
      return;
    }
    switch (obj.push) {
      case "message": {
        const sub = this.subs.get(obj.channel);
        if (!sub) return;
        if (obj.offset !== undefined && obj.offset <= sub.offset) return; // seen already
        if (obj.offset !== undefined) sub.offset = obj.offset;
        call(this, sub.handlers.onMessage, obj);
        return;
      }
      case "join":
      case "leave": {
        const sub = this.subs.get(obj.channel);
        if (sub) call(this, obj.push === "join" ? sub.handlers.onJoin : sub.handlers.onLeave, obj);
        return;
      }
      case "direct":
        this.emit("direct", obj);
        return;
    }
  }

  /** Sends a command and resolves with its result, or rejects with a NetkitError. */
  call(cmd) {
    if (this.state !== "connected" || !this.ws) {
      return Promise.reject(new NetkitError("not_connected", `${cmd.op}: not connected (client is ${this.state})`));
    }
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.ws.send(JSON.stringify({ ...cmd, id }));
    });
  }

  /**
   * Subscribes to channel until unsubscribe or close, across reconnects.
   * handlers: onMessage(push), onJoin(push), onLeave(push), onSubscribed({offset, epoch, recovered, resubscribe}).
   * options.last asks for the last N messages of history first.
   */
  subscribe(channel, handlers = {}, options = {}) {
    if (this.subs.has(channel)) return Promise.reject(new NetkitError("bad_request", `already subscribed to ${channel}`));
    const sub = { channel, handlers, last: options.last || 0, offset: 0, epoch: "", waiters: [] };
    this.subs.set(channel, sub);
    if (this.state === "connected") return this.resubscribe(sub, false);
    return new Promise((resolve, reject) => sub.waiters.push({ resolve, reject }));
  }

  async resubscribe(sub, again) {
    const cmd = { op: "subscribe", channel: sub.channel };
    const recovering = again && sub.epoch !== "";
    if (recovering) cmd.since = { offset: sub.offset, epoch: sub.epoch };
    else if (sub.last > 0 && sub.epoch === "") cmd.last = sub.last;
    let res;
    try {
      res = await this.call(cmd);
    } catch (err) {
      if (err.code === "connection_lost") return; // tried again after the reconnect
      this.subs.delete(sub.channel);
      for (const w of sub.waiters.splice(0)) w.reject(err);
      this.emit("error", err);
      throw err;
    }
    if (this.subs.get(sub.channel) !== sub) return res;
    const recovered = recovering ? res.recovered === true : undefined;
    if (!recovered) {
      // A fresh start: later messages have larger offsets than the reply's,
      // except the last N of history that follow a first subscribe with last.
      sub.epoch = res.epoch;
      sub.offset = !again && sub.last > 0 ? 0 : res.offset;
    } // recovered: the missed messages follow, after sub.offset
    const info = { channel: sub.channel, offset: res.offset, epoch: res.epoch, recovered, resubscribe: again };
    call(this, sub.handlers.onSubscribed, info);
    if (again) this.emit("recovered", { channel: sub.channel, recovered: recovered === true });
    for (const w of sub.waiters.splice(0)) w.resolve(res);
    return res;
  }

  /** Stops the subscription to channel. */
  async unsubscribe(channel) {
    const sub = this.subs.get(channel);
    this.subs.delete(channel);
    if (sub) for (const w of sub.waiters.splice(0)) w.reject(new NetkitError("bad_request", "unsubscribed"));
    if (this.state === "connected") await this.call({ op: "unsubscribe", channel });
  }

  /** Publishes data (any JSON value) to channel; resolves with its offset. */
  async publish(channel, data) {
    const res = await this.call({ op: "publish", channel, data });
    return res.offset;
  }

  /** Sends data to every connection of user; resolves with how many got it (0 is not an error). */
  async send(user, data) {
    const res = await this.call({ op: "send", to: user, data });
    return res.delivered;
  }

  /** Resolves with the connections subscribed to channel: [{client, user}]. */
  async presence(channel) {
    const res = await this.call({ op: "presence", channel });
    return res.clients;
  }

  /** Resolves with {epoch, offset, messages, recovered?}; options: limit, since {offset, epoch}. */
  history(channel, options = {}) {
    const cmd = { op: "history", channel };
    if (options.limit) cmd.limit = options.limit;
    if (options.since) cmd.since = options.since;
    return this.call(cmd);
  }

  /** An application round trip. */
  ping() {
    return this.call({ op: "ping" });
  }

  /** Ends the connection and stops reconnecting. */
  close() {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const ws = this.ws;
    this.ws = null;
    this.failPending({ code: "closed", reason: "client closed" });
    this.setState("closed");
    if (ws) ws.close(1000);
  }
}

function call(client, fn, value) {
  if (!fn) return;
  try {
    fn(value);
  } catch (err) {
    client.emit("error", err);
  }
}
