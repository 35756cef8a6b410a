// Slack's mrkdwn turned into DOM nodes. Nothing here ever assigns innerHTML: every piece of
// message text ends up in a text node, so message content cannot inject markup or script.

export const EMOJI = {
  alarm_clock: "⏰", arrows_counterclockwise: "🔄", bell: "🔔", bulb: "💡", calendar: "📅",
  check: "✔️", clipboard: "📋", construction: "🚧", eyes: "👀", fire: "🔥", gear: "⚙️",
  grey_question: "❔", hammer_and_wrench: "🛠️", heavy_check_mark: "✔️", hourglass: "⌛",
  hourglass_flowing_sand: "⏳", information_source: "ℹ️", large_blue_circle: "🔵",
  large_green_circle: "🟢", large_orange_circle: "🟠", large_red_circle: "🔴",
  large_yellow_circle: "🟡", lock: "🔒", mag: "🔍", memo: "📝", no_entry: "⛔",
  no_entry_sign: "🚫", ok: "🆗", page_facing_up: "📄", pencil: "📝", point_right: "👉",
  raising_hand: "🙋", red_circle: "🔴", robot_face: "🤖", rocket: "🚀", rotating_light: "🚨",
  shield: "🛡️", stopwatch: "⏱️", tada: "🎉", thinking_face: "🤔", thumbsup: "👍",
  "+1": "👍", thumbsdown: "👎", "-1": "👎", timer_clock: "⏲️", wastebasket: "🗑️",
  warning: "⚠️", wave: "👋", white_check_mark: "✅", white_circle: "⚪", x: "❌",
  zap: "⚡", key: "🔑", package: "📦", scroll: "📜", link: "🔗", sparkles: "✨",
};

const SAFE_SCHEMES = /^(https?:|mailto:)/i;
// Placeholders for tokens taken out before styling: private-use characters cannot come from
// Slack text that matters, and they count as punctuation for the style boundaries below.
const PH_OPEN = "\uE000";
const PH_CLOSE = "\uE001";
const PH_RE = /\uE000(\d+)\uE001/g;

export function decodeEntities(text) {
  return text.replace(/&(amp|lt|gt);/g, (_, name) => ({ amp: "&", lt: "<", gt: ">" })[name]);
}

export function isSafeUrl(url) {
  return typeof url === "string" && SAFE_SCHEMES.test(url.trim());
}

function el(tag, className, children) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  for (const child of children || []) {
    node.append(child);
  }
  return node;
}

/** Text with :emoji: names shown as the emoji they name (unknown names stay as typed). */
export function emojiText(text, enabled = true) {
  if (!enabled) return document.createTextNode(text);
  return document.createTextNode(
    text.replace(/:([a-z0-9_+'-]+):/g, (whole, name) => EMOJI[name] || whole),
  );
}

/** A plain_text object's text: literal, with emoji unless the object says emoji: false. */
export function plainText(object) {
  const text = object && typeof object.text === "string" ? object.text : "";
  return emojiText(text, !object || object.emoji !== false);
}

export function link(url, label) {
  if (!isSafeUrl(url)) {
    // Not a scheme we open (javascript:, data:, …): show the words, make nothing clickable.
    return document.createTextNode(label || url);
  }
  const a = el("a", "link", [document.createTextNode(label || url)]);
  a.href = url.trim();
  a.target = "_blank";
  a.rel = "noopener noreferrer";
  return a;
}

const MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
  "September", "October", "November", "December"];
const DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];

function ordinal(n) {
  const rest = n % 100;
  if (rest >= 11 && rest <= 13) return `${n}th`;
  return n + ({ 1: "st", 2: "nd", 3: "rd" }[n % 10] || "th");
}

function pad(n) {
  return String(n).padStart(2, "0");
}

function dayOffset(date, now) {
  const start = (d) => new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime();
  return Math.round((start(date) - start(now)) / 86400000);
}

/** Slack's `<!date^seconds^format|fallback>` in the reader's own time zone. */
export function formatSlackDate(seconds, format, now = new Date()) {
  const d = new Date(seconds * 1000);
  if (Number.isNaN(d.getTime())) return null;
  const dateLong = `${DAYS[d.getDay()]}, ${MONTHS[d.getMonth()]} ${ordinal(d.getDate())}, ${d.getFullYear()}`;
  const date = `${MONTHS[d.getMonth()]} ${ordinal(d.getDate())}, ${d.getFullYear()}`;
  const dateShort = `${MONTHS[d.getMonth()].slice(0, 3)} ${d.getDate()}, ${d.getFullYear()}`;
  const relative = { "-1": "yesterday", 0: "today", 1: "tomorrow" }[dayOffset(d, now)];
  const ago = () => {
    const secs = Math.round((now.getTime() - d.getTime()) / 1000);
    const abs = Math.abs(secs);
    const [n, unit] = abs < 60 ? [abs, "second"] : abs < 3600 ? [Math.round(abs / 60), "minute"]
      : abs < 86400 ? [Math.round(abs / 3600), "hour"] : [Math.round(abs / 86400), "day"];
    const words = `${n} ${unit}${n === 1 ? "" : "s"}`;
    return secs >= 0 ? `${words} ago` : `in ${words}`;
  };
  const tokens = {
    date_num: `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`,
    date,
    date_short: dateShort,
    date_long: dateLong,
    date_pretty: relative || date,
    date_short_pretty: relative || dateShort,
    date_long_pretty: relative || dateLong,
    time: `${pad(d.getHours())}:${pad(d.getMinutes())}`,
    time_secs: `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`,
  };
  return format.replace(/\{(\w+)\}/g, (whole, name) => (name === "ago" ? ago() : tokens[name] ?? whole));
}

function angleToken(body, ctx) {
  const bar = body.indexOf("|");
  const head = bar >= 0 ? body.slice(0, bar) : body;
  const label = bar >= 0 ? decodeEntities(body.slice(bar + 1)) : null;
  if (head.startsWith("@")) {
    const id = head.slice(1);
    const user = ctx.users && ctx.users[id];
    const name = user ? user.name : label || id;
    const span = el("span", "mention" + (ctx.me === id ? " mention-me" : ""),
      [document.createTextNode(`@${name}`)]);
    span.dataset.userId = id;
    return span;
  }
  if (head.startsWith("#")) {
    const id = head.slice(1);
    const channel = ctx.channels && ctx.channels[id];
    const name = channel ? channel.name : label || id;
    return el("span", "mention channel-mention", [document.createTextNode(`#${name}`)]);
  }
  if (head.startsWith("!")) {
    const parts = head.slice(1).split("^");
    if (parts[0] === "date" && parts.length >= 3) {
      const shown = formatSlackDate(Number(parts[1]), decodeEntities(parts[2]));
      const text = shown ?? label ?? "";
      const span = el("span", "date", []);
      span.title = label || "";
      if (parts[3] && isSafeUrl(parts[3])) {
        span.append(link(parts[3], text));
      } else {
        span.append(document.createTextNode(text));
      }
      return span;
    }
    if (["here", "channel", "everyone"].includes(parts[0])) {
      return el("span", "mention mention-broadcast", [document.createTextNode(`@${parts[0]}`)]);
    }
    if (parts[0] === "subteam") {
      return el("span", "mention", [document.createTextNode(label || `@${parts[1] || "group"}`)]);
    }
    return document.createTextNode(label || head);
  }
  return link(decodeEntities(head), label);
}

// Style markers: Slack applies one only at word boundaries, e.g. snake_case_name stays plain.
const STYLES = [
  ["*", "b"],
  ["_", "i"],
  ["~", "s"],
];

function styleRegex(marker) {
  const m = marker === "*" ? "\\*" : marker;
  return new RegExp(
    `(^|[^\\p{L}\\p{N}${m}])${m}(?=\\S)([^${m}\\n]*?[^\\s${m}]|[^\\s${m}])${m}(?![\\p{L}\\p{N}${m}])`,
    "u",
  );
}
const STYLE_RES = STYLES.map(([marker, tag]) => [styleRegex(marker), tag]);

function expand(text, tokens, ctx, emoji) {
  // Plain text between tokens: entities decoded, emoji names replaced, tokens rendered.
  const nodes = [];
  let last = 0;
  for (const match of text.matchAll(PH_RE)) {
    if (match.index > last) nodes.push(emojiText(decodeEntities(text.slice(last, match.index)), emoji));
    nodes.push(renderToken(tokens[Number(match[1])], ctx));
    last = match.index + match[0].length;
  }
  if (last < text.length) nodes.push(emojiText(decodeEntities(text.slice(last)), emoji));
  return nodes;
}

function styled(text, tokens, ctx) {
  let best = null;
  for (const [re, tag] of STYLE_RES) {
    const match = re.exec(text);
    if (match && (best === null || match.index < best.match.index)) best = { match, tag };
  }
  if (best === null) return expand(text, tokens, ctx, true);
  const { match, tag } = best;
  const start = match.index + match[1].length;
  const inner = el(tag, null, styled(match[2], tokens, ctx));
  return [
    ...expand(text.slice(0, start), tokens, ctx, true),
    inner,
    ...styled(text.slice(match.index + match[0].length), tokens, ctx),
  ];
}

function renderToken(token, ctx) {
  if (token.kind === "code") {
    return el("code", "inline-code", [document.createTextNode(decodeEntities(token.body))]);
  }
  return angleToken(token.body, ctx);
}

/** One line (or any text without code blocks) of mrkdwn as inline nodes. */
export function renderInline(text, ctx = {}) {
  const tokens = [];
  const protectedText = text.replace(/<([^<>\n]+)>|`([^`\n]+)`/g, (whole, angle, code) => {
    tokens.push(angle !== undefined ? { kind: "angle", body: angle } : { kind: "code", body: code });
    return `${PH_OPEN}${tokens.length - 1}${PH_CLOSE}`;
  });
  return styled(protectedText, tokens, ctx);
}

const QUOTE = /^(?:>|&gt;) ?/;
// "* item" is left alone: in Slack a leading asterisk is far more often bold than a bullet.
const BULLET = /^\s*[•◦▪‣-]\s+/;
const NUMBERED = /^\s*(\d{1,3})[.)]\s+/;

function renderFlow(text, ctx, into) {
  // Lines grouped into paragraphs, quotes and lists; a blank line keeps its height.
  const lines = text.split("\n");
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (QUOTE.test(line)) {
      const quote = el("blockquote", "quote", []);
      while (i < lines.length && QUOTE.test(lines[i])) {
        quote.append(el("div", "line", renderInline(lines[i].replace(QUOTE, ""), ctx)));
        i += 1;
      }
      into.append(quote);
      continue;
    }
    if (BULLET.test(line)) {
      const list = el("ul", "list", []);
      while (i < lines.length && BULLET.test(lines[i])) {
        list.append(el("li", null, renderInline(lines[i].replace(BULLET, ""), ctx)));
        i += 1;
      }
      into.append(list);
      continue;
    }
    const numbered = NUMBERED.exec(line);
    if (numbered) {
      const list = el("ol", "list", []);
      list.start = Number(numbered[1]);
      while (i < lines.length && NUMBERED.test(lines[i])) {
        list.append(el("li", null, renderInline(lines[i].replace(NUMBERED, ""), ctx)));
        i += 1;
      }
      into.append(list);
      continue;
    }
    const div = el("div", "line", renderInline(line, ctx));
    if (!line) div.append(document.createElement("br"));
    into.append(div);
    i += 1;
  }
}

/**
 * Render mrkdwn into a fragment. `ctx` = { users: {id: {name}}, channels: {id: {name}}, me }.
 * Handles *bold*, _italic_, ~strike~, `code`, ```code blocks```, links <url|text>, mentions
 * <@U…>, <#C…>, <!here>, dates <!date^…>, > quotes, • / - / 1. lists, :emoji: and &entities;.
 */
export function renderMrkdwn(text, ctx = {}) {
  const fragment = document.createDocumentFragment();
  const source = typeof text === "string" ? text : "";
  const fence = /```\n?([\s\S]*?)```/g;
  let last = 0;
  for (const match of source.matchAll(fence)) {
    const before = source.slice(last, match.index).replace(/\n$/, "");
    if (before) renderFlow(before, ctx, fragment);
    const pre = el("pre", "code-block", [document.createTextNode(decodeEntities(match[1]))]);
    fragment.append(pre);
    last = match.index + match[0].length;
    if (source[last] === "\n") last += 1;
  }
  const rest = source.slice(last);
  if (rest) renderFlow(rest, ctx, fragment);
  return fragment;
}

/** A text object (mrkdwn or plain_text) as nodes. */
export function renderTextObject(object, ctx = {}) {
  if (!object || typeof object !== "object") return document.createTextNode("");
  if (object.type === "mrkdwn") {
    const span = el("div", "mrkdwn", []);
    span.append(renderMrkdwn(object.text || "", ctx));
    return span;
  }
  return el("span", "plain", [plainText(object)]);
}
