// The LocalSlack client: one channel with its threads, a composer with /command completion,
// modals, and a switcher to act as another user. Every action posts to /ui/* (LocalSlack's
// driver API); every change arrives as a Server-Sent Event, after which the page re-reads
// /ui/state. The page holds no truth of its own beyond what is being typed.

import { collectValues, el, renderAttachments, renderBlocks } from "./blocks.js";
import { emojiText, plainText, renderMrkdwn, renderTextObject } from "./mrkdwn.js";

const ui = {
  config: null,
  user: null,
  channel: "infra",
  state: null,
  threadTs: null,
  events: null,
  refreshing: false,
  again: false,
  modalKey: null,
  modalViewId: null,
  clientErrors: {},
  streamUp: false,
};

const $ = (id) => document.getElementById(id);
const SLACKBOT = "USLACKBOT";

// -- talking to the server --------------------------------------------------------------------

async function post(path, body) {
  let response;
  try {
    response = await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ user: ui.user, ...body }),
    });
  } catch (error) {
    return { ok: false, status: 0, error: "unreachable", detail: String(error) };
  }
  let data = {};
  try {
    data = await response.json();
  } catch {
    data = { ok: false, error: `http_${response.status}` };
  }
  return { status: response.status, ...data };
}

function explain(result, what) {
  if (result.ok) return;
  const messages = {
    app_did_not_respond: `The app did not respond to ${what} in time (no ack within 3 s).`,
    not_on_screen: "That is no longer on screen.",
    unreachable: "LocalSlack is not reachable.",
  };
  toast(messages[result.error] || `${what} failed: ${result.error}${result.detail ? ` (${result.detail})` : ""}`,
    "error");
}

async function refresh() {
  // Coalesce bursts of events into as few reads as possible, never two at once.
  if (ui.refreshing) {
    ui.again = true;
    return;
  }
  ui.refreshing = true;
  try {
    do {
      ui.again = false;
      const user = ui.user;
      const query = `user=${encodeURIComponent(user)}&channel=${encodeURIComponent(ui.channel)}`;
      const response = await fetch(`/ui/state?${query}`);
      if (!response.ok) continue;
      const state = await response.json();
      if (state.user !== ui.user) continue;
      ui.state = state;
      render();
    } while (ui.again);
  } catch (error) {
    console.warn("state refresh failed", error);
  } finally {
    ui.refreshing = false;
  }
}

function connectEvents() {
  if (ui.events) ui.events.close();
  const source = new EventSource(`/ui/events?user=${encodeURIComponent(ui.user)}`);
  source.addEventListener("hello", () => {
    ui.streamUp = true;
    renderBanner();
    refresh();
  });
  source.addEventListener("change", () => refresh());
  source.onerror = () => {
    // EventSource reconnects by itself; say so meanwhile.
    ui.streamUp = false;
    renderBanner();
  };
  ui.events = source;
}

// -- helpers ----------------------------------------------------------------------------------

function tsParts(ts) {
  const [seconds, micros] = String(ts).split(".");
  return [Number(seconds), Number(micros || 0)];
}

function byTs(a, b) {
  const [as, am] = tsParts(a.ts);
  const [bs, bm] = tsParts(b.ts);
  return as - bs || am - bm;
}

function clock(ts) {
  const d = new Date(tsParts(ts)[0] * 1000);
  return `${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`;
}

function usersById() {
  const map = { [SLACKBOT]: { id: SLACKBOT, name: "Slackbot", real_name: "Slackbot", is_bot: true } };
  for (const user of ui.config.users) map[user.id] = user;
  return map;
}

function channelsById() {
  return Object.fromEntries(ui.config.channels.map((c) => [c.id, c]));
}

function avatarClass(id) {
  let hash = 0;
  for (const ch of id) hash = (hash * 31 + ch.charCodeAt(0)) % 997;
  return `avatar color-${hash % 6}`;
}

function formatSize(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

function toast(text, kind = "info") {
  const node = el("div", `toast ${kind}`, [document.createTextNode(text)], { role: "status" });
  $("toasts").append(node);
  setTimeout(() => node.remove(), 8000);
}

function blockContext(extra) {
  return {
    users: usersById(),
    channels: channelsById(),
    me: ui.user,
    confirm: confirmDialog,
    ...extra,
  };
}

// -- messages ---------------------------------------------------------------------------------

function messageContext(message) {
  return blockContext({
    onButton: async (element, block) => {
      const result = await post("/ui/click", {
        channel: ui.state.channel.id,
        ts: message.ts,
        action_id: element.action_id,
        value: element.value,
        block_id: block.block_id,
      });
      explain(result, "that click");
    },
  });
}

function fileCard(file) {
  const view = el("button", "file-open", [document.createTextNode("View")], { type: "button" });
  view.addEventListener("click", () => openFile(file));
  return el("div", "file", [
    el("div", "file-icon", [document.createTextNode("📄")]),
    el("div", "file-text", [
      el("div", "file-title", [document.createTextNode(file.title || file.name)]),
      el("div", "file-meta", [document.createTextNode(
        `${file.pretty_type || file.filetype || "File"} · ${formatSize(file.size || 0)}`)]),
    ]),
    view,
  ], { "data-file-id": file.id });
}

function messageNode(message, { inThread = false } = {}) {
  const users = usersById();
  const ephemeral = Boolean(message.is_ephemeral);
  const sender = users[message.user];
  const isBot = Boolean(message.bot_id || (sender && sender.is_bot));
  const name = message.bot_profile ? message.bot_profile.name : sender ? sender.name : message.user;
  const meta = el("div", "meta", [
    el("span", "sender", [document.createTextNode(name || "unknown")]),
    isBot ? el("span", "app-badge", [document.createTextNode("APP")]) : null,
    el("span", "time", [document.createTextNode(clock(message.ts))], { title: message.ts }),
    message.edited ? el("span", "edited", [document.createTextNode("(edited)")]) : null,
  ]);
  const ctx = messageContext(message);
  const content = el("div", "content", []);
  if (Array.isArray(message.blocks) && message.blocks.length) {
    content.append(renderBlocks(message.blocks, ctx));
  } else if (message.text) {
    content.append(el("div", "mrkdwn", [renderMrkdwn(message.text, ctx)]));
  }
  if (Array.isArray(message.attachments) && message.attachments.length) {
    content.append(renderAttachments(message.attachments, ctx));
  }
  for (const file of message.files || []) content.append(fileCard(file));
  if (!inThread && message.reply_count) {
    const open = el("button", "thread-summary", [
      document.createTextNode(`${message.reply_count} ${message.reply_count === 1 ? "reply" : "replies"}`),
      el("span", "thread-last", [document.createTextNode(` · last reply ${clock(message.latest_reply)}`)]),
    ], { type: "button" });
    open.addEventListener("click", () => openThread(message.ts));
    content.append(open);
  }
  const body = el("div", "body", [meta, content]);
  if (ephemeral) {
    const dismiss = el("button", "link-button", [document.createTextNode("Dismiss")], { type: "button" });
    dismiss.addEventListener("click", async () => {
      explain(await post("/ui/ephemeral/dismiss", { channel: message.channel, ts: message.ts }), "dismiss");
    });
    body.prepend(el("div", "ephemeral-note", [
      document.createTextNode("👁 Only visible to you · "), dismiss,
    ]));
  }
  const avatar = el("div", isBot ? "avatar bot" : avatarClass(message.user || "?"),
    [document.createTextNode((name || "?").slice(0, 1).toUpperCase())]);
  return el("div", `message${ephemeral ? " ephemeral" : ""}${message.subtype === "tombstone" ? " tombstone" : ""}`,
    [avatar, body], { "data-ts": message.ts, "data-kind": ephemeral ? "ephemeral" : "message" });
}

function syncList(container, items, options) {
  // Keyed update: unchanged messages keep their nodes (and focus, selection, scroll).
  const nearBottom = container.scrollHeight - container.scrollTop - container.clientHeight < 120;
  const existing = new Map([...container.children].map((n) => [n.dataset.key, n]));
  const keep = new Set();
  let previous = null;
  for (const item of items) {
    const key = `${item.is_ephemeral ? "e" : "m"}${item.ts}`;
    const signature = `${ui.user}|${JSON.stringify(item)}`;
    let node = existing.get(key);
    if (!node || node.dataset.signature !== signature) {
      const fresh = messageNode(item, options);
      fresh.dataset.key = key;
      fresh.dataset.signature = signature;
      if (node) node.replaceWith(fresh);
      node = fresh;
    }
    keep.add(key);
    const expected = previous ? previous.nextSibling : container.firstChild;
    if (expected !== node) container.insertBefore(node, expected);
    previous = node;
  }
  for (const [key, node] of existing) if (!keep.has(key)) node.remove();
  if (nearBottom) container.scrollTop = container.scrollHeight;
}

function renderMessages() {
  const { messages, ephemerals } = ui.state;
  const items = [...messages, ...ephemerals.filter((e) => !e.thread_ts)].sort(byTs);
  const list = $("messages");
  if (!items.length) {
    if (!list.querySelector(".empty")) {
      list.replaceChildren(el("div", "empty", [
        document.createTextNode("This is the very beginning of #"),
        document.createTextNode(ui.state.channel.name),
        document.createTextNode(". Type /provision to start a run."),
      ]));
    }
    return;
  }
  list.querySelector(".empty")?.remove();
  syncList(list, items, {});
}

function renderThread() {
  const panel = $("thread");
  if (!ui.threadTs) {
    panel.hidden = true;
    return;
  }
  const parent = ui.state.messages.find((m) => m.ts === ui.threadTs);
  if (!parent) {
    ui.threadTs = null;
    panel.hidden = true;
    return;
  }
  panel.hidden = false;
  const items = [parent, ...(parent.replies || []),
    ...ui.state.ephemerals.filter((e) => e.thread_ts === ui.threadTs)].sort(byTs);
  syncList($("thread-messages"), items, { inThread: true });
}

function openThread(ts) {
  ui.threadTs = ts;
  $("thread-messages").replaceChildren();
  renderThread();
  $("thread-composer").focus();
}

// -- overlays: modals, confirm dialogs, file viewer -------------------------------------------

function overlay(className, dialog) {
  const backdrop = el("div", `backdrop ${className}`, [dialog]);
  $("modal-root").append(backdrop);
  return backdrop;
}

function confirmDialog(confirm) {
  return new Promise((resolve) => {
    const no = el("button", "button secondary", [plainText(confirm.deny || { text: "Cancel" })],
      { type: "button" });
    const style = confirm.style === "danger" ? "danger" : "primary";
    const yes = el("button", `button ${style}`, [plainText(confirm.confirm || { text: "Yes" })],
      { type: "button" });
    const dialog = el("div", "dialog confirm-dialog", [
      el("h2", "dialog-title", [plainText(confirm.title || { text: "Are you sure?" })]),
      el("div", "dialog-body", [renderTextObject(confirm.text, blockContext({}))]),
      el("div", "dialog-footer", [no, yes]),
    ], { role: "alertdialog", "aria-modal": "true" });
    const backdrop = overlay("backdrop-confirm", dialog);
    const done = (answer) => {
      backdrop.remove();
      resolve(answer);
    };
    no.addEventListener("click", () => done(false));
    yes.addEventListener("click", () => done(true));
    yes.focus();
  });
}

async function openFile(file) {
  const close = el("button", "icon-button", [document.createTextNode("✕")],
    { type: "button", "aria-label": "Close file" });
  const content = el("div", "file-viewer-body", [document.createTextNode("Loading…")]);
  const download = el("a", "link", [document.createTextNode("Download")]);
  download.href = `/ui/files/${encodeURIComponent(file.id)}`;
  download.setAttribute("download", file.name || "file");
  const dialog = el("div", "dialog file-viewer", [
    el("header", "dialog-header", [el("h2", "dialog-title", [document.createTextNode(file.title || file.name)]), close]),
    content,
    el("div", "dialog-footer", [download]),
  ], { role: "dialog", "aria-modal": "true" });
  const backdrop = overlay("backdrop-file", dialog);
  close.addEventListener("click", () => backdrop.remove());
  const response = await fetch(`/ui/files/${encodeURIComponent(file.id)}`);
  const type = response.headers.get("Content-Type") || "";
  if (type.startsWith("image/")) {
    const img = el("img", "file-image", [], { alt: file.title || "" });
    img.src = URL.createObjectURL(await response.blob());
    content.replaceChildren(img);
  } else if (type.startsWith("text/")) {
    content.replaceChildren(el("pre", "code-block file-text-content", [document.createTextNode(await response.text())]));
  } else {
    content.replaceChildren(document.createTextNode("No preview for this kind of file; download it."));
  }
}

function modalDraft() {
  const body = document.querySelector(".modal .modal-body");
  return body ? collectValues(body) : {};
}

function renderModal() {
  const views = ui.state.views;
  const top = views.length ? views[views.length - 1] : null;
  const root = $("modal-root");
  const key = top ? `${ui.user}|${top.id}|${top.hash}|${JSON.stringify(top.errors)}|${JSON.stringify(ui.clientErrors)}` : null;
  if (key === ui.modalKey) return;
  // What the user typed survives an error redraw of the same view.
  const draft = top && top.id === ui.modalViewId ? modalDraft() : {};
  root.querySelector(".backdrop-modal")?.remove();
  ui.modalKey = key;
  ui.modalViewId = top ? top.id : null;
  if (!top) {
    ui.clientErrors = {};
    return;
  }
  const errors = { ...(top.errors || {}), ...ui.clientErrors };
  const ctx = blockContext({
    draft,
    errors,
    onButton: async (element, block) => {
      const result = await post("/ui/view/click", {
        view_id: top.id, action_id: element.action_id, value: element.value, block_id: block.block_id,
      });
      explain(result, "that click");
    },
  });
  const body = el("div", "modal-body", [renderBlocks(top.blocks, ctx)]);
  const closeX = el("button", "icon-button", [document.createTextNode("✕")],
    { type: "button", "aria-label": "Close" });
  const cancel = el("button", "button secondary", [plainText(top.close || { text: "Cancel" })],
    { type: "button", "data-role": "close" });
  const footer = el("div", "dialog-footer", [cancel]);
  let submit = null;
  if (top.submit) {
    submit = el("button", "button primary", [plainText(top.submit)],
      { type: "submit", "data-role": "submit" });
    footer.append(submit);
  }
  const form = el("form", "dialog modal", [
    el("header", "dialog-header", [
      el("h2", "dialog-title", [plainText(top.title)]),
      closeX,
    ]),
    body,
    footer,
  ], { role: "dialog", "aria-modal": "true", "data-view-id": top.id, novalidate: "" });
  const close = async () => {
    explain(await post("/ui/view/close", { view_id: top.id }), "closing");
    refresh();
  };
  closeX.addEventListener("click", close);
  cancel.addEventListener("click", close);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!submit || submit.disabled) return;
    submit.disabled = true;
    submit.classList.add("busy");
    const result = await post("/ui/view/submit", { view_id: top.id, values: collectValues(body) });
    submit.disabled = false;
    submit.classList.remove("busy");
    if (result.status === 422) {
      // Slack's own client refuses this before the app hears of it (required, lengths).
      ui.clientErrors = result.errors || {};
      ui.modalKey = null;
      renderModal();
      return;
    }
    ui.clientErrors = {};
    explain(result, "submitting");
    refresh();
  });
  overlay("backdrop-modal", form);
  const first = body.querySelector("input, textarea, select");
  if (first && !Object.keys(draft).length) first.focus();
}

// -- chrome: sidebar, switcher, banner --------------------------------------------------------

function renderChrome() {
  const { config } = ui;
  $("workspace-name").textContent = config.title;
  document.title = `#${ui.channel} · ${config.title}`;
  $("channel-list").replaceChildren(...config.channels.map((c) => {
    const item = el("li", `sidebar-item${c.name === ui.channel ? " active" : ""}`,
      [document.createTextNode(`# ${c.name}`)]);
    item.addEventListener("click", () => switchChannel(c.name));
    return item;
  }));
  const humans = config.users.filter((u) => !u.is_bot);
  $("people-list").replaceChildren(...humans.map((u) => {
    const item = el("li", `sidebar-item person${u.id === ui.user ? " active" : ""}`, [
      el("span", `${avatarClass(u.id)} small`, [document.createTextNode(u.name.slice(0, 1).toUpperCase())]),
      el("span", "person-name", [document.createTextNode(u.name)]),
      u.note ? el("span", "person-note", [document.createTextNode(u.note)]) : null,
    ], { "data-user-id": u.id });
    item.addEventListener("click", () => switchUser(u.id));
    return item;
  }));
  const switcher = $("user-switcher");
  switcher.replaceChildren(...humans.map((u) => el("option", null,
    [document.createTextNode(u.note ? `${u.name} — ${u.note}` : u.name)], { value: u.id })));
  switcher.value = ui.user;
  $("channel-name").textContent = ui.channel;
  $("composer").placeholder = `Message #${ui.channel} as ${usersById()[ui.user]?.name || ui.user}`
    + " — try /provision";
}

function renderBanner() {
  const banner = $("banner");
  const parts = [];
  if (!ui.streamUp) parts.push("Reconnecting to the workspace…");
  const failures = ui.state ? ui.state.validation_failures : [];
  if (failures.length) {
    const last = failures[failures.length - 1];
    parts.push(`Slack would have rejected what the app sent (${last.source}): ${last.errors.join("; ")}`);
  }
  banner.hidden = parts.length === 0;
  banner.replaceChildren(...parts.map((p) => el("div", null, [document.createTextNode(p)])));
}

function renderAppStatus() {
  const status = $("app-status");
  const connected = ui.state && ui.state.app.connected;
  status.className = `app-status ${connected ? "online" : "offline"}`;
  status.textContent = `${ui.config.bot.name} ${connected ? "· connected" : "· not connected"}`;
}

function render() {
  renderMessages();
  renderThread();
  renderModal();
  renderBanner();
  renderAppStatus();
}

function switchUser(id) {
  if (id === ui.user) return;
  ui.user = id;
  ui.modalKey = null;
  ui.modalViewId = null;
  ui.clientErrors = {};
  const name = usersById()[id]?.name || id;
  const url = new URL(window.location.href);
  url.searchParams.set("as", name);
  window.history.replaceState(null, "", url);
  document.body.dataset.user = id;
  renderChrome();
  connectEvents();
  refresh();
}

function switchChannel(name) {
  ui.channel = name;
  ui.threadTs = null;
  $("messages").replaceChildren();
  renderChrome();
  refresh();
}

// -- composer and completion ------------------------------------------------------------------

const completion = { items: [], index: 0, target: null };

function suggestions(text, caret) {
  const before = text.slice(0, caret);
  if (!before.startsWith("/") || before.includes("\n")) return [];
  const hints = ui.config.commands;
  if (!before.includes(" ")) {
    return hints.filter((h) => h.command.startsWith(before))
      .map((h) => ({ value: h.command, description: h.description, kind: "command", start: 0 }));
  }
  const command = hints.find((h) => before.startsWith(`${h.command} `));
  if (!command) return [];
  const args = before.slice(command.command.length + 1);
  const words = args.split(/\s+/);
  const partial = words[words.length - 1];
  const start = caret - partial.length;
  if (words.length === 1) {
    return command.first.filter((s) => s.value.startsWith(partial)).map((s) => ({ ...s, start }));
  }
  const used = new Set(words.slice(0, -1));
  const previous = words[words.length - 2];
  if (previous && previous.startsWith("--")) return [];
  return (command.options[words[0]] || [])
    .filter((s) => s.value.startsWith(partial) && !used.has(s.value))
    .map((s) => ({ ...s, start }));
}

function renderCompletion() {
  const list = $("completion");
  if (!completion.items.length) {
    list.hidden = true;
    list.replaceChildren();
    return;
  }
  list.hidden = false;
  list.replaceChildren(...completion.items.map((item, index) => {
    const row = el("li", `completion-item${index === completion.index ? " selected" : ""}`, [
      el("span", `completion-value kind-${item.kind}`, [document.createTextNode(item.value)]),
      item.description ? el("span", "completion-description", [document.createTextNode(item.description)]) : null,
    ], { role: "option", "data-value": item.value });
    row.addEventListener("mousedown", (event) => {
      event.preventDefault();
      completion.index = index;
      acceptCompletion();
    });
    return row;
  }));
  list.children[completion.index]?.scrollIntoView({ block: "nearest" });
}

function updateCompletion() {
  const box = $("composer");
  completion.items = suggestions(box.value, box.selectionStart);
  completion.index = 0;
  renderCompletion();
}

function acceptCompletion() {
  const box = $("composer");
  const item = completion.items[completion.index];
  if (!item) return;
  const caret = box.selectionStart;
  const inserted = `${item.value} `;
  box.value = box.value.slice(0, item.start) + inserted + box.value.slice(caret);
  const at = item.start + inserted.length;
  box.setSelectionRange(at, at);
  updateCompletion();
  box.focus();
}

async function send(box, threadTs) {
  const text = box.value.trim();
  if (!text) return;
  box.value = "";
  completion.items = [];
  renderCompletion();
  autoGrow(box);
  const result = await post("/ui/command", { text, channel: ui.channel, thread_ts: threadTs || undefined });
  // A slash command the app did not ack already shows Slack's own ephemeral error.
  if (!(result.error === "app_did_not_respond" && text.startsWith("/"))) explain(result, text.split(" ")[0]);
}

function autoGrow(box) {
  box.style.height = "auto";
  box.style.height = `${Math.min(box.scrollHeight, 200)}px`;
}

function wireComposer() {
  const box = $("composer");
  box.addEventListener("input", () => {
    autoGrow(box);
    updateCompletion();
  });
  box.addEventListener("click", updateCompletion);
  box.addEventListener("blur", () => {
    completion.items = [];
    renderCompletion();
  });
  box.addEventListener("keydown", (event) => {
    const open = completion.items.length > 0;
    if (open && (event.key === "ArrowDown" || event.key === "ArrowUp")) {
      event.preventDefault();
      const step = event.key === "ArrowDown" ? 1 : -1;
      completion.index = (completion.index + step + completion.items.length) % completion.items.length;
      renderCompletion();
    } else if (open && event.key === "Tab") {
      event.preventDefault();
      acceptCompletion();
    } else if (open && event.key === "Escape") {
      completion.items = [];
      renderCompletion();
    } else if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      // Enter takes a suggestion only while the word is unfinished, as Slack does.
      const item = completion.items[completion.index];
      const caret = box.selectionStart;
      const partial = item ? box.value.slice(item.start, caret) : "";
      if (open && item && partial !== item.value) {
        acceptCompletion();
      } else {
        send(box, null);
      }
    }
  });
  $("composer-form").addEventListener("submit", (event) => {
    event.preventDefault();
    send(box, null);
  });
  const reply = $("thread-composer");
  reply.addEventListener("input", () => autoGrow(reply));
  reply.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      send(reply, ui.threadTs);
    }
  });
  $("thread-form").addEventListener("submit", (event) => {
    event.preventDefault();
    send(reply, ui.threadTs);
  });
  $("thread-close").addEventListener("click", () => {
    ui.threadTs = null;
    renderThread();
  });
  $("user-switcher").addEventListener("change", (event) => switchUser(event.target.value));
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape") return;
    const keep = document.querySelector(".backdrop-confirm .button.secondary");
    if (keep) {
      keep.click();
      return;
    }
    const file = document.querySelector(".backdrop-file");
    if (file) {
      file.remove();
      return;
    }
    const modal = document.querySelector(".backdrop-modal [data-role=close]");
    if (modal) modal.click();
  });
}

// -- start ------------------------------------------------------------------------------------

function initialUser() {
  const wanted = new URL(window.location.href).searchParams.get("as");
  const humans = ui.config.users.filter((u) => !u.is_bot);
  const found = humans.find((u) => u.name === wanted || u.id === wanted);
  return (found || humans.find((u) => u.id === ui.config.default_user) || humans[0]).id;
}

async function start() {
  const response = await fetch("/ui/config");
  ui.config = await response.json();
  ui.channel = new URL(window.location.href).searchParams.get("channel")
    || (ui.config.channels[0] && ui.config.channels[0].name) || "infra";
  ui.user = initialUser();
  document.body.dataset.user = ui.user;
  renderChrome();
  wireComposer();
  connectEvents();
  await refresh();
  document.body.dataset.ready = "true";
}

// Exposed for people poking at the page from devtools; nothing depends on it.
window.localSlack = { ui, refresh, emojiText };

start().catch((error) => {
  console.error(error);
  document.body.replaceChildren(el("pre", "fatal", [document.createTextNode(`LocalSlack could not start: ${error}`)]));
});
