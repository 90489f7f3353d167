// Tests of netkit.js against a real hub, with Node's built-in WebSocket:
//
//   node --experimental-websocket --test clients/js/
//
// With NETKIT_URL set (as the Go test TestNodeClient in internal/web does) they
// use that hub; without it they start one with `go run ./cmd/netkit hub`
// on 127.0.0.1 and a free port (built with go build, then run).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { fileURLToPath } from "node:url";
import path from "node:path";
import { Client, NetkitError } from "./netkit.js";

let url = process.env.NETKIT_URL || "";
let apiURL = "";
let apiKey = process.env.NETKIT_API_KEY || "";
let child = null;

before(async () => {
  if (url) {
    apiURL = url.replace(/^ws/, "http").replace(/\/ws$/, "");
    return;
  }
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
  apiKey = "node-test-key";
  const bin = path.join(mkdtempSync(path.join(tmpdir(), "netkit-js-")), "netkit");
  execFileSync("go", ["build", "-o", bin, "./cmd/netkit"], { cwd: root, stdio: "inherit" });
  child = spawn(bin, ["hub", "--listen", "127.0.0.1:0", "--api-key", apiKey], { stdio: ["ignore", "ignore", "pipe"] });
  url = await new Promise((resolve, reject) => {
    let buf = "";
    child.stderr.on("data", (d) => {
      buf += d;
      const m = buf.match(/url=(ws:\/\/\S+)/);
      if (m) resolve(m[1]);
    });
    child.on("exit", (code) => reject(new Error(`hub exited (${code}): ${buf}`)));
  });
  child.stderr.resume();
  apiURL = url.replace(/^ws/, "http").replace(/\/ws$/, "");
});

after(() => {
  if (child) child.kill("SIGTERM");
});

// next resolves with the next value fn is called with; on() registers fn.
function nextEvent(client, event, pred = () => true) {
  return new Promise((resolve) => {
    const off = client.on(event, (v) => {
      if (pred(v)) {
        off();
        resolve(v);
      }
    });
  });
}

// collector gathers values and resolves waits for a count of them.
function collector() {
  const items = [];
  let waiters = [];
  return {
    items,
    push(v) {
      items.push(v);
      waiters = waiters.filter((w) => (items.length >= w.n ? (w.resolve(items.slice()), false) : true));
    },
    wait(n) {
      if (items.length >= n) return Promise.resolve(items.slice());
      return new Promise((resolve) => waiters.push({ n, resolve }));
    },
  };
}

async function connected(options = {}) {
  const c = new Client(url, { minDelay: 10, maxDelay: 50, ...options });
  await c.connect();
  return c;
}

let seq = 0;
const channel = (name) => `${name}-${process.pid}-${++seq}`;

test("publish, subscribe, presence, history", async (t) => {
  const a = await connected();
  const b = await connected();
  t.after(() => (a.close(), b.close()));
  const ch = channel("room");
  const got = collector();
  const joins = collector();
  await a.subscribe(ch, { onMessage: (m) => got.push(m), onJoin: (p) => joins.push(p) });
  await b.subscribe(ch);
  const [join] = await joins.wait(1);
  assert.equal(join.user, b.user);
  const off = await b.publish(ch, { text: "<b>hi</b>" });
  const [m] = await got.wait(1);
  assert.equal(m.offset, off);
  assert.deepEqual(m.data, { text: "<b>hi</b>" });
  assert.equal(m.from, b.user);
  const who = await a.presence(ch);
  assert.deepEqual(who.map((c) => c.user).sort(), [a.user, b.user].sort());
  const h = await a.history(ch, { limit: 10 });
  assert.equal(h.messages.length, 1);
  assert.equal(h.messages[0].offset, off);
  await a.unsubscribe(ch);
  await assert.rejects(a.publish("bad channel", 1), (err) => err instanceof NetkitError && err.code === "bad_request");
});

test("direct messages", async (t) => {
  const a = await connected();
  const b = await connected();
  t.after(() => (a.close(), b.close()));
  const d = nextEvent(b, "direct");
  assert.equal(await a.send(b.user, "psst"), 1);
  const push = await d;
  assert.equal(push.from, a.user);
  assert.equal(push.data, "psst");
  assert.equal(await a.send("nobody-here", 1), 0);
});

test("last: history on joining", async (t) => {
  const a = await connected();
  t.after(() => a.close());
  const ch = channel("last");
  for (let i = 1; i <= 5; i++) await a.publish(ch, i);
  const b = await connected();
  t.after(() => b.close());
  const got = collector();
  await b.subscribe(ch, { onMessage: (m) => got.push(m.data) }, { last: 3 });
  assert.deepEqual(await got.wait(3), [3, 4, 5]);
  await a.publish(ch, 6);
  assert.deepEqual(await got.wait(4), [3, 4, 5, 6]);
});

// dropAndHold closes c's socket and keeps it from reconnecting until the
// returned release is called (its getToken waits for a gate).
function gated() {
  let open = Promise.resolve();
  let release = () => {};
  return {
    getToken: async () => {
      await open;
      return "";
    },
    hold() {
      open = new Promise((r) => (release = r));
    },
    release: () => release(),
  };
}

test("reconnect recovers missed messages", async (t) => {
  const gate = gated();
  const a = await connected({ getToken: gate.getToken });
  const b = await connected();
  t.after(() => (a.close(), b.close()));
  const ch = channel("recover");
  const got = collector();
  const subscribed = collector();
  await a.subscribe(ch, { onMessage: (m) => got.push(m.data), onSubscribed: (s) => subscribed.push(s) });
  await b.subscribe(ch);
  await b.publish(ch, "before");
  await got.wait(1);

  gate.hold();
  const lost = nextEvent(a, "disconnected");
  a.ws.close(4000, "test drops the connection");
  const d = await lost;
  assert.equal(d.willReconnect, true);
  assert.equal(a.state, "reconnecting");
  await b.publish(ch, "missed 1");
  await b.publish(ch, "missed 2");
  const recovered = nextEvent(a, "recovered");
  gate.release();
  assert.deepEqual(await recovered, { channel: ch, recovered: true });
  await b.publish(ch, "after");
  assert.deepEqual(await got.wait(4), ["before", "missed 1", "missed 2", "after"]);
  const subs = await subscribed.wait(2);
  assert.equal(subs[1].recovered, true);
  assert.equal(subs[1].resubscribe, true);
});

test("reconnect says when messages may have been missed", async (t) => {
  const gate = gated();
  const a = await connected({ getToken: gate.getToken });
  const b = await connected();
  t.after(() => (a.close(), b.close()));
  const ch = channel("gap");
  const got = collector();
  await a.subscribe(ch, { onMessage: (m) => got.push(m.data) });
  await b.publish(ch, 0);
  await got.wait(1);
  gate.hold();
  const lost = nextEvent(a, "disconnected");
  a.ws.close(4000, "test drops the connection");
  await lost;
  for (let i = 1; i <= 150; i++) await b.publish(ch, i); // more than the default history_size of 100
  const recovered = nextEvent(a, "recovered");
  gate.release();
  assert.deepEqual(await recovered, { channel: ch, recovered: false });
  await b.publish(ch, "live");
  const items = await got.wait(2);
  assert.deepEqual(items, [0, "live"]);
});

test("a kick by the API is final", async (t) => {
  if (!apiKey) t.skip("NETKIT_API_KEY not set");
  const a = await connected();
  t.after(() => a.close());
  const lost = nextEvent(a, "disconnected");
  const res = await fetch(`${apiURL}/api/disconnect`, {
    method: "POST",
    headers: { Authorization: `Bearer ${apiKey}`, "Content-Type": "application/json" },
    body: JSON.stringify({ user: a.user }),
  });
  assert.equal(res.status, 200);
  const d = await lost;
  assert.equal(d.code, "policy");
  assert.equal(d.closeStatus, 1008);
  assert.equal(d.willReconnect, false);
  assert.equal(a.state, "closed");
  await assert.rejects(a.ping(), (err) => err.code === "not_connected");
});

test("the first connection is not retried", async () => {
  const c = new Client("ws://127.0.0.1:1/ws");
  await assert.rejects(c.connect(), (err) => err instanceof NetkitError);
  assert.equal(c.state, "closed");
});
