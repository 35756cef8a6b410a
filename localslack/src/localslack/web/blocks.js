// Block Kit as DOM: the blocks of messages and modals, drawn the way Slack's client draws
// them. A block or element this renderer does not know becomes a visible placeholder, and a
// block that fails to render becomes one too: never a blank, never a broken page.

import { emojiText, isSafeUrl, link, plainText, renderInline, renderMrkdwn, renderTextObject }
  from "./mrkdwn.js";

export function el(tag, className, children, attrs) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  for (const child of children || []) {
    if (child !== null && child !== undefined) node.append(child);
  }
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value !== undefined && value !== null) node.setAttribute(key, String(value));
  }
  return node;
}

export function placeholder(what, detail) {
  const node = el("div", "bk-unsupported", [
    document.createTextNode(`⚠ ${what}`),
    detail ? el("span", "bk-unsupported-detail", [document.createTextNode(` ${detail}`)]) : null,
  ]);
  node.title = "LocalSlack does not draw this yet; Slack would.";
  return node;
}

function image(url, alt, className) {
  if (!isSafeUrl(url) || url.startsWith("mailto:")) {
    return placeholder("image", alt || "");
  }
  const img = el("img", className, [], { alt: alt || "", loading: "lazy" });
  img.src = url;
  return img;
}

function button(element, block, ctx) {
  const style = element.style === "primary" || element.style === "danger" ? element.style : "";
  const node = el("button", `bk-button ${style}`.trim(), [plainText(element.text)], {
    type: "button",
    "data-action-id": element.action_id,
    "data-block-id": block.block_id,
  });
  if (element.accessibility_label) node.setAttribute("aria-label", element.accessibility_label);
  node.addEventListener("click", async () => {
    if (element.confirm && !(await ctx.confirm(element.confirm))) return;
    if (element.url && isSafeUrl(element.url)) {
      // As in Slack: a link button opens its URL and still tells the app it was clicked.
      window.open(element.url, "_blank", "noopener,noreferrer");
    }
    node.disabled = true;
    node.classList.add("busy");
    try {
      await ctx.onButton(element, block);
    } finally {
      node.disabled = false;
      node.classList.remove("busy");
    }
  });
  return node;
}

function element(elementObject, block, ctx) {
  if (!elementObject || typeof elementObject !== "object") return placeholder("element", "");
  switch (elementObject.type) {
    case "button":
      return button(elementObject, block, ctx);
    case "image":
      return image(elementObject.image_url, elementObject.alt_text, "bk-accessory-image");
    default:
      return placeholder(`unsupported element: ${elementObject.type}`);
  }
}

function section(block, ctx) {
  const main = el("div", "bk-section-main", []);
  if (block.text) main.append(renderTextObject(block.text, ctx));
  if (Array.isArray(block.fields) && block.fields.length) {
    main.append(el("div", "bk-fields", block.fields.map((f) => el("div", "bk-field",
      [renderTextObject(f, ctx)]))));
  }
  const node = el("div", "bk-section", [main]);
  if (block.accessory) node.append(el("div", "bk-accessory", [element(block.accessory, block, ctx)]));
  return node;
}

function context(block, ctx) {
  return el("div", "bk-context", (block.elements || []).map((item) => {
    if (item && item.type === "image") return image(item.image_url, item.alt_text, "bk-context-image");
    if (item && (item.type === "mrkdwn" || item.type === "plain_text")) {
      return el("span", "bk-context-text", [renderTextObject(item, ctx)]);
    }
    return placeholder(`unsupported context element: ${item && item.type}`);
  }));
}

function actions(block, ctx) {
  return el("div", "bk-actions", (block.elements || []).map((e) => element(e, block, ctx)));
}

function imageBlock(block) {
  return el("figure", "bk-image", [
    block.title ? el("figcaption", null, [plainText(block.title)]) : null,
    image(block.image_url, block.alt_text, "bk-image-img"),
  ]);
}

// rich_text: the structured text Slack's own composer produces.
function richElements(items, ctx) {
  return (items || []).map((item) => {
    let node;
    switch (item.type) {
      case "text":
        node = emojiText(item.text || "", true);
        break;
      case "link":
        node = link(item.url, item.text || item.url);
        break;
      case "emoji":
        node = emojiText(item.unicode ? String.fromCodePoint(
          ...item.unicode.split("-").map((h) => parseInt(h, 16))) : `:${item.name}:`, true);
        break;
      case "user":
        return renderInline(`<@${item.user_id}>`, ctx)[0];
      case "channel":
        return renderInline(`<#${item.channel_id}>`, ctx)[0];
      case "usergroup":
        return renderInline(`<!subteam^${item.usergroup_id}>`, ctx)[0];
      case "broadcast":
        return renderInline(`<!${item.range}>`, ctx)[0];
      case "date":
        return renderInline(`<!date^${item.timestamp}^${item.format}|${item.fallback || ""}>`, ctx)[0];
      default:
        return placeholder(`rich text: ${item.type}`);
    }
    const style = item.style || {};
    for (const [flag, tag] of [["code", "code"], ["strike", "s"], ["italic", "i"], ["bold", "b"]]) {
      if (style[flag]) node = el(tag, flag === "code" ? "inline-code" : null, [node]);
    }
    return node;
  });
}

function richText(block, ctx) {
  const node = el("div", "bk-rich-text", []);
  for (const part of block.elements || []) {
    switch (part.type) {
      case "rich_text_section":
        node.append(el("div", "line", richElements(part.elements, ctx)));
        break;
      case "rich_text_preformatted":
        node.append(el("pre", "code-block", richElements(part.elements, ctx)));
        break;
      case "rich_text_quote":
        node.append(el("blockquote", "quote", richElements(part.elements, ctx)));
        break;
      case "rich_text_list": {
        const list = el(part.style === "ordered" ? "ol" : "ul", `list indent-${part.indent || 0}`,
          (part.elements || []).map((s) => el("li", null, richElements(s.elements, ctx))));
        node.append(list);
        break;
      }
      default:
        node.append(placeholder(`rich text part: ${part.type}`));
    }
  }
  return node;
}

// -- inputs (modals) -------------------------------------------------------------------------

function textInput(elementObject, block, ctx) {
  const multiline = Boolean(elementObject.multiline);
  const draft = ctx.draft?.[block.block_id]?.[elementObject.action_id];
  const node = el(multiline ? "textarea" : "input", "bk-input", [], {
    "data-action-id": elementObject.action_id,
    "data-block-id": block.block_id,
    "data-kind": "text",
    placeholder: elementObject.placeholder ? elementObject.placeholder.text : undefined,
    maxlength: elementObject.max_length,
    type: multiline ? undefined : ({ number_input: "number", email_text_input: "email",
      url_text_input: "url" }[elementObject.type] || "text"),
    rows: multiline ? 4 : undefined,
  });
  node.value = draft ?? elementObject.initial_value ?? "";
  if (elementObject.focus_on_load) node.autofocus = true;
  return node;
}

function options(elementObject) {
  const all = [...(elementObject.options || [])];
  for (const group of elementObject.option_groups || []) all.push(...(group.options || []));
  return all;
}

function selectInput(elementObject, block, ctx) {
  const draft = ctx.draft?.[block.block_id]?.[elementObject.action_id];
  const node = el("select", "bk-input", [], {
    "data-action-id": elementObject.action_id,
    "data-block-id": block.block_id,
    "data-kind": "select",
  });
  node.append(el("option", null, [document.createTextNode(
    elementObject.placeholder ? elementObject.placeholder.text : "Select an option")], { value: "" }));
  for (const option of options(elementObject)) {
    const item = el("option", null, [plainText(option.text)], { value: option.value });
    node.append(item);
  }
  node.value = draft ?? elementObject.initial_option?.value ?? "";
  return node;
}

function choiceInput(elementObject, block, ctx) {
  const multiple = elementObject.type === "checkboxes";
  const draft = ctx.draft?.[block.block_id]?.[elementObject.action_id];
  const initial = multiple ? (elementObject.initial_options || []).map((o) => o.value)
    : [elementObject.initial_option?.value];
  const chosen = new Set(draft !== undefined ? [].concat(draft) : initial);
  const group = el("div", "bk-choices", [], {
    "data-action-id": elementObject.action_id,
    "data-block-id": block.block_id,
    "data-kind": multiple ? "checkboxes" : "radio",
  });
  for (const option of options(elementObject)) {
    const box = el("input", null, [], {
      type: multiple ? "checkbox" : "radio",
      name: `${block.block_id}/${elementObject.action_id}`,
      value: option.value,
    });
    box.checked = chosen.has(option.value);
    group.append(el("label", "bk-choice", [box, plainText(option.text)]));
  }
  return group;
}

function input(block, ctx) {
  const e = block.element || {};
  let control;
  if (["plain_text_input", "number_input", "email_text_input", "url_text_input"].includes(e.type)) {
    control = textInput(e, block, ctx);
  } else if (e.type === "static_select") {
    control = selectInput(e, block, ctx);
  } else if (e.type === "checkboxes" || e.type === "radio_buttons") {
    control = choiceInput(e, block, ctx);
  } else {
    control = placeholder(`unsupported input: ${e.type}`);
  }
  const error = ctx.errors?.[block.block_id];
  const label = el("label", "bk-input-label", [
    plainText(block.label),
    block.optional ? el("span", "bk-optional", [document.createTextNode(" (optional)")]) : null,
  ]);
  const node = el("div", "bk-input-block" + (error ? " has-error" : ""), [
    label,
    control,
    block.hint ? el("div", "bk-hint", [plainText(block.hint)]) : null,
    error ? el("div", "bk-error", [document.createTextNode(error)], { role: "alert" }) : null,
  ], { "data-block-id": block.block_id });
  if (error) {
    // The error was about what stood there before: once it changes, stop showing it.
    control.addEventListener("input", () => {
      node.classList.remove("has-error");
      node.querySelector(".bk-error")?.remove();
    }, { once: true });
  }
  return node;
}

/** The current values of a modal's inputs: {block_id: {action_id: value}}. */
export function collectValues(root) {
  const values = {};
  for (const control of root.querySelectorAll("[data-kind]")) {
    const blockId = control.dataset.blockId;
    const actionId = control.dataset.actionId;
    let value;
    if (control.dataset.kind === "checkboxes") {
      value = [...control.querySelectorAll("input:checked")].map((b) => b.value);
    } else if (control.dataset.kind === "radio") {
      const checked = control.querySelector("input:checked");
      value = checked ? checked.value : null;
    } else if (control.dataset.kind === "select") {
      value = control.value || null;
    } else {
      value = control.value;
    }
    (values[blockId] ||= {})[actionId] = value;
  }
  return values;
}

// -- blocks ------------------------------------------------------------------------------------

const RENDERERS = {
  header: (b) => el("div", "bk-header", [plainText(b.text)]),
  section,
  context,
  divider: () => el("hr", "bk-divider"),
  actions,
  image: imageBlock,
  rich_text: richText,
  input,
  markdown: (b, ctx) => el("div", "mrkdwn", [renderMrkdwn(b.text || "", ctx)]),
};

export function renderBlock(block, ctx) {
  const kind = block && typeof block === "object" ? block.type : undefined;
  const render = RENDERERS[kind];
  if (!render) return placeholder(`unsupported block: ${kind}`);
  try {
    const node = render(block, ctx);
    node.classList.add("bk-block");
    if (block.block_id) node.dataset.blockId = block.block_id;
    return node;
  } catch (error) {
    console.error("could not render block", block, error);
    return placeholder(`could not render this ${kind} block`, String(error && error.message));
  }
}

export function renderBlocks(blocks, ctx) {
  return el("div", "bk-blocks", (blocks || []).map((b) => renderBlock(b, ctx)));
}

/** Legacy attachments: a coloured bar with pretext, title, text, fields, and blocks. */
export function renderAttachments(attachments, ctx) {
  return el("div", "attachments", (attachments || []).map((a) => {
    const body = el("div", "attachment-body", [
      a.pretext ? el("div", "mrkdwn", [renderMrkdwn(a.pretext, ctx)]) : null,
      a.title ? el("div", "attachment-title", [a.title_link ? link(a.title_link, a.title)
        : document.createTextNode(a.title)]) : null,
      a.text ? el("div", "mrkdwn", [renderMrkdwn(a.text, ctx)]) : null,
      Array.isArray(a.fields) && a.fields.length ? el("div", "bk-fields", a.fields.map((f) =>
        el("div", "bk-field", [el("b", null, [document.createTextNode(f.title || "")]),
          el("div", "mrkdwn", [renderMrkdwn(String(f.value ?? ""), ctx)])]))) : null,
      Array.isArray(a.blocks) ? renderBlocks(a.blocks, ctx) : null,
      a.footer ? el("div", "bk-context", [document.createTextNode(a.footer)]) : null,
    ]);
    const node = el("div", "attachment", [el("div", "attachment-bar"), body]);
    const color = typeof a.color === "string" ? a.color : "";
    const named = { good: "#2eb67d", warning: "#ecb22e", danger: "#e01e5a" }[color];
    if (named || /^#?[0-9a-f]{6}$/i.test(color)) {
      // CSSOM, not a style attribute: allowed by the page's CSP, and only a checked colour.
      node.firstChild.style.backgroundColor = named || (color.startsWith("#") ? color : `#${color}`);
    }
    return node;
  }));
}
