// The hub's chat page. Everything a peer sends (names, messages, user ids)
// goes into the page with textContent, never as HTML.
import { Client } from "/netkit.js";

const $ = (id) => document.getElementById(id);
const HISTORY = 50; // messages loaded on joining and after a failed recovery
const KEEP = 500; // messages kept per channel
const DIRECT = "direct messages"; // a pseudo-channel: no channel name has a space

let hub = null;
let name = "";
let current = "";
const channels = new Map(); // name -> {entries: [], offsets: Set, presence: Map(client -> user), unread}
const names = new Map(); // user id -> display name seen in their messages

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = String(text);
  return e;
}

function who(user) {
  const n = names.get(user);
  return n ? `${n} (${user})` : user || "the API";
}

function setState(text, cls) {
  const s = $("state");
  s.textContent = text;
  s.className = `state state-${cls}`;
}

// ---- channels and messages ----

function chan(name) {
  let c = channels.get(name);
  if (!c) {
    c = { entries: [], offsets: new Set(), presence: new Map(), unread: false };
    channels.set(name, c);
  }
  return c;
}

function addEntry(channel, entry) {
  if (channel !== DIRECT && !channels.has(channel)) return; // left meanwhile
  const c = chan(channel);
  if (entry.offset !== undefined) {
    if (c.offsets.has(entry.offset)) return;
    c.offsets.add(entry.offset);
  }
  c.entries.push(entry);
  if (c.entries.length > KEEP) {
    const gone = c.entries.splice(0, c.entries.length - KEEP);
    for (const g of gone) if (g.offset !== undefined) c.offsets.delete(g.offset);
  }
  if (channel === current) renderEntry(entry, true);
  else markUnread(channel);
}

function messageEntry(m) {
  const data = m.data;
  let text;
  let display;
  if (data && typeof data === "object" && !Array.isArray(data)) {
    text = data.text !== undefined ? data.text : JSON.stringify(data);
    if (typeof data.name === "string" && data.name) display = data.name;
  } else {
    text = typeof data === "string" ? data : JSON.stringify(data);
  }
  if (display && m.from && names.get(m.from) !== display) {
    names.set(m.from, display);
    queueMicrotask(renderPresence); // show the name they go by
  }
  return { kind: "message", offset: m.offset, from: m.from || "", name: display || "", text: String(text) };
}

function renderEntry(entry, scroll) {
  const list = $("messages");
  const li = el("li", entry.kind);
  if (entry.kind === "notice") {
    li.textContent = entry.text;
  } else {
    const from = el("span", "from", entry.name || entry.from || "the API");
    if (entry.from) from.title = entry.from;
    if (entry.from && entry.from === hub.user) li.classList.add("mine");
    li.append(from, el("span", "text", entry.text));
  }
  list.append(li);
  if (scroll) list.scrollTop = list.scrollHeight;
}

function renderChannel() {
  if (current) chan(current).unread = false;
  $("channel-title").textContent = current || "–";
  $("leave").hidden = !current || current === DIRECT;
  $("send-form").hidden = !current || current === DIRECT;
  const list = $("messages");
  list.replaceChildren();
  if (current) for (const e of chan(current).entries) renderEntry(e, false);
  list.scrollTop = list.scrollHeight;
  renderChannels();
  renderPresence();
}

function renderChannels() {
  const ul = $("channels");
  ul.replaceChildren();
  for (const [n, c] of channels) {
    const li = el("li");
    const b = el("button", n === current ? "chan active" : c.unread ? "chan unread" : "chan", n);
    b.type = "button";
    b.dataset.channel = n;
    b.addEventListener("click", () => {
      current = n;
      renderChannel();
    });
    li.append(b);
    ul.append(li);
  }
}

// markUnread marks a channel other than the current one as having news; the
// list is drawn again, since the first direct message adds an entry to it.
function markUnread(channel) {
  const c = chan(channel);
  if (c.unread) return;
  c.unread = true;
  renderChannels();
}

function renderPresence() {
  const ul = $("presence");
  ul.replaceChildren();
  if (!current || current === DIRECT) return;
  const users = new Set(chan(current).presence.values());
  for (const u of [...users].sort()) {
    const li = el("li");
    const b = el("button", u === hub.user ? "person me" : "person", who(u));
    b.type = "button";
    b.title = `message ${u} directly`;
    b.addEventListener("click", () => {
      $("dm-to").value = u;
      $("dm-text").focus();
    });
    li.append(b);
    ul.append(li);
  }
}

function notice(text) {
  const n = $("notice");
  n.textContent = text;
  n.hidden = !text;
}

// ---- hub ----

async function refreshPresence(channel) {
  try {
    const clients = await hub.presence(channel);
    if (!channels.has(channel)) return; // left meanwhile
    const p = chan(channel).presence;
    p.clear();
    for (const c of clients) p.set(c.client, c.user);
    if (channel === current) renderPresence();
  } catch (err) {
    if (err.code !== "forbidden") console.warn("presence", channel, err);
  }
}

// reloadHistory replaces what a channel shows with its latest history, after
// the hub answered a recovery with recovered:false (too much missed, or a new
// epoch). Messages that arrived since the resubscribe and are newer than the
// history stay.
async function reloadHistory(channel) {
  const c = chan(channel);
  const mark = c.entries.length;
  try {
    const res = await hub.history(channel, { limit: HISTORY });
    if (!channels.has(channel)) return; // left meanwhile
    const live = c.entries.slice(mark).filter((e) => e.offset !== undefined && e.offset > res.offset);
    c.entries = [];
    c.offsets.clear();
    addEntry(channel, { kind: "notice", text: "Messages may have been missed while you were away; history reloaded." });
    for (const m of res.messages) addEntry(channel, messageEntry(m));
    for (const e of live) addEntry(channel, e);
    if (channel === current) renderChannel();
  } catch (err) {
    addEntry(channel, { kind: "notice", text: `Could not reload history: ${err.message}` });
  }
}

async function join(channel) {
  channel = channel.trim();
  if (!channel) return;
  if (channels.has(channel)) {
    current = channel;
    renderChannel();
    return;
  }
  chan(channel);
  current = channel;
  renderChannel();
  try {
    await hub.subscribe(
      channel,
      {
        onMessage: (m) => addEntry(channel, messageEntry(m)),
        onJoin: (p) => {
          chan(channel).presence.set(p.client, p.user);
          addEntry(channel, { kind: "notice", text: `${who(p.user)} joined` });
          if (channel === current) renderPresence();
        },
        onLeave: (p) => {
          chan(channel).presence.delete(p.client);
          addEntry(channel, { kind: "notice", text: `${who(p.user)} left` });
          if (channel === current) renderPresence();
        },
        onSubscribed: (s) => {
          refreshPresence(channel);
          if (s.resubscribe && s.recovered === false) reloadHistory(channel);
        },
      },
      { last: HISTORY },
    );
  } catch (err) {
    channels.delete(channel);
    current = channels.keys().next().value || "";
    renderChannel();
    notice(`Cannot join ${channel}: ${err.reason || err.message}`);
  }
}

async function leave(channel) {
  channels.delete(channel);
  current = [...channels.keys()].find((c) => c !== DIRECT) || (channels.has(DIRECT) ? DIRECT : "");
  renderChannel();
  try {
    await hub.unsubscribe(channel);
  } catch (err) {
    console.warn("unsubscribe", err);
  }
}

async function start(displayName, token) {
  name = displayName;
  const url = new URL("/ws", location.href);
  hub = new Client(url.toString(), { token, minDelay: 250, maxDelay: 8000 });
  hub.on("state", (s) => {
    if (s === "connected") setState(`connected as ${who(hub.user)}`, "connected");
    else if (s === "reconnecting") setState("reconnecting…", "reconnecting");
    else if (s === "connecting") setState("connecting…", "reconnecting");
    else setState("disconnected", "closed");
  });
  hub.on("connected", (c) => {
    names.set(c.user, name);
    $("me").textContent = who(c.user);
    setState(`connected as ${who(c.user)}`, "connected");
    if (c.reconnect) notice("");
  });
  hub.on("disconnected", (d) => {
    notice(d.willReconnect ? `Connection lost (${d.code}); reconnecting…` : `Disconnected: ${d.reason} (${d.code}). Reload the page to connect again.`);
  });
  hub.on("recovered", (r) => {
    if (!r.recovered) notice(`Messages in ${r.channel} may have been missed; history reloaded.`);
  });
  hub.on("direct", (d) => {
    const e = messageEntry({ from: d.from, data: d.data });
    e.text = `→ you: ${e.text}`;
    addEntry(DIRECT, e);
  });
  hub.on("error", (err) => console.warn("netkit", err));
  await hub.connect();
  if (!name) name = hub.user;
  $("login").hidden = true;
  $("chat").hidden = false;
  await join(new URLSearchParams(location.search).get("channel") || "lobby");
}

// ---- forms ----

$("login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("login-error").textContent = "";
  const n = $("name").value.trim();
  const t = $("token").value.trim();
  localStorage.setItem("netkit.name", n);
  $("connect").disabled = true;
  try {
    await start(n, t);
  } catch (err) {
    $("login-error").textContent = `Cannot connect: ${err.reason || err.message}`;
    $("connect").disabled = false;
  }
});

$("join-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  join($("join-channel").value);
  $("join-channel").value = "";
});

$("leave").addEventListener("click", () => current && leave(current));

$("send-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const input = $("text");
  const text = input.value;
  if (!text.trim() || !current) return;
  try {
    await hub.publish(current, { text, name });
    input.value = "";
    notice("");
  } catch (err) {
    notice(`Not sent: ${err.reason || err.message}`);
  }
});

$("dm-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const to = $("dm-to").value.trim();
  const text = $("dm-text").value;
  if (!to || !text.trim()) return;
  try {
    const n = await hub.send(to, { text, name });
    const wasUnread = chan(DIRECT).unread;
    addEntry(DIRECT, { kind: "message", from: hub.user, name: name || hub.user, text: `→ ${to}: ${text}` + (n === 0 ? " (not online)" : "") });
    chan(DIRECT).unread = wasUnread; // what we sent is not news
    renderChannels();
    $("dm-text").value = "";
  } catch (err) {
    notice(`Direct message not sent: ${err.reason || err.message}`);
  }
});

// ---- status ----

let statusTimer = null;
let lastSample = null;

function parseMetrics(text) {
  const v = { connections: 0, channels: 0, subscriptions: 0, in: 0, out: 0 };
  for (const line of text.split("\n")) {
    if (!line || line[0] === "#") continue;
    const sp = line.lastIndexOf(" ");
    const key = line.slice(0, sp);
    const n = Number(line.slice(sp + 1));
    if (key === "netkit_hub_connections") v.connections = n;
    else if (key === "netkit_hub_channels") v.channels = n;
    else if (key === "netkit_hub_subscriptions") v.subscriptions = n;
    else if (key.startsWith("netkit_hub_messages_in_total{")) v.in += n;
    else if (key.startsWith("netkit_hub_messages_out_total{")) v.out += n;
  }
  return v;
}

async function pollStatus() {
  try {
    const res = await fetch("/metrics", { cache: "no-store" });
    if (res.status === 404) {
      $("st-note").textContent = "This hub runs without metrics.";
      return;
    }
    const v = parseMetrics(await res.text());
    const now = performance.now();
    $("st-connections").textContent = String(v.connections);
    $("st-channels").textContent = String(v.channels);
    $("st-subscriptions").textContent = String(v.subscriptions);
    if (lastSample) {
      const dt = (now - lastSample.t) / 1000;
      $("st-in").textContent = ((v.in - lastSample.v.in) / dt).toFixed(1);
      $("st-out").textContent = ((v.out - lastSample.v.out) / dt).toFixed(1);
    }
    lastSample = { t: now, v };
  } catch (err) {
    $("st-note").textContent = `Cannot read /metrics: ${err.message}`;
  }
}

$("status-toggle").addEventListener("click", () => {
  const panel = $("status");
  panel.hidden = !panel.hidden;
  clearInterval(statusTimer);
  lastSample = null;
  if (!panel.hidden) {
    pollStatus();
    statusTimer = setInterval(pollStatus, 2000);
  }
});

$("name").value = localStorage.getItem("netkit.name") || "";
if (location.hash === "#status") $("status-toggle").click();
