// edgeproxy inspector: the list of recent exchanges (live, over server-sent events) and one exchange's path
// through the pipeline. No framework, no build step: this file is served as it is.
"use strict";

const state = { size: 0, exchanges: [], selected: null };
const $ = (selector, root = document) => root.querySelector(selector);

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// -- the list ---------------------------------------------------------------------------------------------------

function connect() {
  const source = new EventSource("/api/stream");
  const live = $("#live");
  source.addEventListener("open", () => { live.className = "on"; live.textContent = "live"; });
  source.addEventListener("error", () => { live.className = "off"; live.textContent = "reconnecting…"; });
  source.addEventListener("list", (event) => {
    const data = JSON.parse(event.data);
    state.size = data.size;
    state.exchanges = data.exchanges;
    renderList();
  });
  source.addEventListener("exchanges", (event) => {
    state.exchanges = JSON.parse(event.data).concat(state.exchanges).slice(0, state.size || undefined);
    renderList();
  });
}

function passes(row) {
  const path = $("#filter-path").value.trim();
  const status = $("#filter-status").value;
  const trigger = $("#filter-trigger").value;
  if (path && !row.path.includes(path)) return false;
  if (status && String(row.status ?? "").charAt(0) !== status) return false;
  if (trigger && !row.triggers.includes(trigger)) return false;
  if ($("#filter-errors").checked && !row.error) return false;
  return true;
}

function clock(seconds) {
  const date = new Date(seconds * 1000);
  return date.toLocaleTimeString([], { hour12: false }) + "." + String(date.getMilliseconds()).padStart(3, "0");
}

function renderList() {
  const body = $("#list tbody");
  const rows = document.createDocumentFragment();
  const shown = state.exchanges.filter(passes);
  for (const row of shown) {
    const status = row.status ?? "—";
    const tr = element("tr", { "data-id": row.id, class: [row.error ? "failed" : "", row.id === state.selected ? "selected" : ""].join(" ").trim() || null },
      element("td", { text: clock(row.started) }),
      element("td", { text: row.method }),
      element("td", { class: "path", title: row.path, text: row.path }),
      element("td", { class: `status status-${String(status).charAt(0)}`, text: status }),
      element("td", { class: "x-cache", title: row.x_cache, text: row.x_cache ?? (row.mode === "alb" ? "(ALB)" : "") }),
      element("td", { class: "num", text: row.ms.toFixed(1) }),
      element("td", { class: "behavior", title: row.behavior, text: row.behavior ?? "" }));
    if (row.error) tr.title = row.error;
    rows.append(tr);
  }
  body.replaceChildren(rows);
  markEvicted();
  $("#empty").hidden = state.exchanges.length > 0;
  $("#count").textContent = `${shown.length} of ${state.exchanges.length} (ring of ${state.size})`;
}

// The open exchange fell out of the ring: say so, and take its download away (the server has it no more).
function markEvicted() {
  const pane = $("#detail-pane");
  const open = $(".detail", pane);
  if (!state.selected || !open || open.classList.contains("evicted")) return;
  if (state.exchanges.some((row) => row.id === state.selected)) return;
  open.classList.add("evicted");
  const har = $(".actions a.har", open);
  if (har) { har.removeAttribute("href"); har.setAttribute("aria-disabled", "true"); }
  open.prepend(element("p", { class: "evicted-note", text: "This exchange has left the ring: what is shown stays, but its HAR download is gone." }));
}

$("#list tbody").addEventListener("click", (event) => {
  const row = event.target.closest("tr");
  if (row) select(row.dataset.id);
});
for (const control of ["#filter-path", "#filter-status", "#filter-trigger", "#filter-errors"]) {
  $(control).addEventListener("input", renderList);
}
$("#filters").addEventListener("submit", (event) => event.preventDefault());

// -- one exchange -----------------------------------------------------------------------------------------------

async function select(id) {
  state.selected = id;
  if (location.hash.slice(1) !== id) history.replaceState(null, "", "#" + id);
  for (const row of document.querySelectorAll("#list tbody tr")) row.classList.toggle("selected", row.dataset.id === id);
  const pane = $("#detail-pane");
  const answer = await fetch(`/api/exchanges/${encodeURIComponent(id)}`);
  if (state.selected !== id) return;
  if (!answer.ok) {
    pane.replaceChildren(element("p", { class: "hint", text: "That exchange is no longer in the ring." }));
    return;
  }
  pane.replaceChildren(renderDetail(await answer.json()));
}

function renderDetail(data) {
  const node = $("#detail-template").content.firstElementChild.cloneNode(true);
  const { summary, har } = data;
  $("h2", node).append(`${summary.method} ${summary.path} `,
    element("span", { class: `status-${String(summary.status).charAt(0)}`, text: `→ ${summary.status ?? "no response"}` }));
  const meta = [summary.mode === "alb" ? "ALB mode" : `X-Cache: ${summary.x_cache ?? "—"}`,
    summary.behavior ? `behavior ${summary.behavior}` : null, `${summary.ms.toFixed(2)} ms`, `id ${summary.id}`];
  $(".meta", node).textContent = meta.filter(Boolean).join(" · ");
  $(".har", node).href = `/api/exchanges/${encodeURIComponent(summary.id)}/har`;
  $(".curl", node).addEventListener("click", () => copy(data.curl));
  if (har._error) $(".error-summary", node).append(errorBox(har._error));
  if (data.bodies_cut.length) {
    $(".error-summary", node).append(element("p", { class: "note", text: `Bodies cut at 1 MB for the inspector: ${data.bodies_cut.join(", ")}` }));
  }
  $(".waterfall", node).append(...renderWaterfall(data.waterfall, data.invocations));
  $(".triggers", node).append(...data.invocations.map(renderInvocation));
  renderOrigin($(".origin-exchange", node), har._origin, summary.mode);
  $(".viewer-response", node).append(renderMessage(statusLine(har.response), har.response.headers, har.response.content));
  return node;
}

function errorBox(error, extra) {
  return element("div", { class: "error-box" },
    element("strong", { text: `${error.status} ${error.name ?? ""}` }), " ",
    error.message ? element("span", { text: error.message }) : null,
    element("div", { class: "reason", text: error.reason }),
    extra ?? null,
    error.traceback ? element("pre", { class: "traceback", text: error.traceback }) : null);
}

function renderWaterfall(rows, invocations) {
  const failed = new Set(invocations.filter((item) => item.error).map((item) => item.trigger));
  const end = Math.max(0.001, ...rows.filter((row) => !row.skipped).map((row) => row.start_ms + row.ms));
  const cells = [];
  for (const row of rows) {
    if (row.skipped) {
      cells.push(element("div", { class: "stage skipped-name", text: row.stage }),
        element("div", { class: "skipped", "data-stage": row.stage, title: `skipped: ${row.skipped}`, text: `skipped: ${row.skipped}` }));
      continue;
    }
    const kind = row.stage === "origin" ? "kind-origin" : row.stage === "response" ? "kind-response"
      : row.stage.startsWith("cache") ? "kind-cache" : failed.has(row.stage) ? "kind-failed" : "";
    const bar = element("div", { class: `bar ${kind}`.trim(), title: `${row.start_ms.toFixed(2)} ms + ${row.ms.toFixed(2)} ms` });
    bar.style.left = `${(row.start_ms / end) * 100}%`;
    bar.style.width = `${(row.ms / end) * 100}%`;
    cells.push(element("div", { class: "stage", text: row.stage }),
      element("div", { class: "track", "data-stage": row.stage }, bar),
      element("div", { class: "ms", text: `${row.ms.toFixed(2)} ms` }));
  }
  return cells;
}

function renderInvocation(item) {
  const marks = new Map();  // JSON path -> class
  for (const change of item.changes) marks.set(change.path, change.kind);
  const rule = item.error && item.error.field !== undefined && item.error.field !== null ? item.error.field : null;
  const box = element("section", { class: "trigger", "data-trigger": item.trigger },
    element("div", { class: "head" },
      element("span", { class: "name", text: item.trigger === "alb" ? "ALB target" : item.trigger }),
      element("span", { class: "handler", title: item.handler, text: item.handler }),
      element("span", { class: "ms", text: `at ${item.start_ms.toFixed(2)} ms, took ${item.ms.toFixed(2)} ms` })));
  const body = element("div", { class: "body" });
  if (item.error) body.append(errorBox(item.error, item.error.field_path ? element("div", { class: "field", text: `the rule broken at ${item.error.field_path}` }) : null));
  if (item.generated) body.append(element("p", { class: "note", text: "generated a response: the origin is not contacted" }));
  else if (!item.changed) body.append(element("p", { class: "note", text: `returned the ${item.part} unchanged` }));
  if (item.changes.length) {
    body.append(element("ul", { class: "changes" }, ...item.changes.map((change) =>
      element("li", { class: change.kind, text: describeChange(change) }))));
  }
  const before = item.trigger === "alb" ? "event" : `event (${item.part})`;
  const given = element("div", { class: "side" }, element("h4", { text: `${before}, as the handler got it` }),
    renderJson(item.before, new Map([...marks].filter(([, kind]) => kind !== "added").map(([path, kind]) => [path, kind === "removed" ? "removed" : "changed"])), null, ""));
  if (!item.changed && !item.error) {
    body.append(element("div", { class: "sides one" }, given));  // nothing returned that differs: one side
  } else {
    const returned = item.trigger === "alb" ? "result" : item.generated ? "returned (a response)" : "returned";
    body.append(element("div", { class: "sides" }, given,
      element("div", { class: "side" }, element("h4", { text: returned }),
        renderJson(item.after, new Map([...marks].filter(([, kind]) => kind !== "removed")), rule, item.error ? item.error.reason : ""))));
  }
  box.append(body);
  return box;
}

function describeChange(change) {
  const show = (value) => JSON.stringify(value);
  const what = change.header ? `header ${change.header}` : change.path || "(the whole value)";
  if (change.kind === "added") return `+ ${what}: ${show(change.after)}`;
  if (change.kind === "removed") return `− ${what}: ${show(change.before)}`;
  return `~ ${what}: ${show(change.before)} → ${show(change.after)}`;
}

// JSON with one line per value, each line carrying the path rules and changes name it by:
// uri, headers['x-a'], headers['x-a'][0].value, origin.custom.domainName...
function renderJson(value, marks, rule, ruleReason) {
  const lines = [];
  const within = (path, mark) => path === mark || path.startsWith(mark + "[") || path.startsWith(mark + ".");
  // A line holding a whole small object holds the fields below its path too.
  const covers = (path, mark, whole) => within(path, mark) || (whole && within(mark, path));
  const markOf = (path, whole) => {
    for (const [mark, kind] of marks) if (covers(path, mark, whole)) return kind;
    return null;
  };
  const isRule = (path, whole) => rule !== null && covers(path, rule, whole);
  function line(text, path, depth, whole = false) {
    const classes = [markOf(path, whole), isRule(path, whole) ? "rule" : null].filter(Boolean).join(" ");
    lines.push(element("div", { class: classes || null, "data-path": path, text: "  ".repeat(depth) + text }));
  }
  function walk(node, path, depth, prefix, comma, inHeaders) {
    const tail = comma ? "," : "";
    const small = node !== null && typeof node === "object" && !inHeaders && JSON.stringify(node);
    if (small && small.length <= 72 && Object.values(node).every((item) => item === null || typeof item !== "object")) {
      line(`${prefix}${small.replace(/,"/g, ', "').replace(/":/g, '": ')}${tail}`, path, depth, true);
      return;
    }
    if (Array.isArray(node)) {
      if (!node.length) { line(`${prefix}[]${tail}`, path, depth); return; }
      line(`${prefix}[`, path, depth);
      node.forEach((item, index) => walk(item, `${path}[${index}]`, depth + 1, "", index < node.length - 1, false));
      line(`]${tail}`, path, depth);
    } else if (node !== null && typeof node === "object") {
      const keys = Object.keys(node);
      if (!keys.length) { line(`${prefix}{}${tail}`, path, depth); return; }
      line(`${prefix}{`, path, depth);
      keys.forEach((key, index) => {
        const child = inHeaders ? `${path}[${pyRepr(key)}]` : path ? `${path}.${key}` : key;
        walk(node[key], child, depth + 1, `${JSON.stringify(key)}: `, index < keys.length - 1, key === "headers" && !inHeaders);
      });
      line(`}${tail}`, path, depth);
    } else {
      line(`${prefix}${JSON.stringify(node)}${tail}`, path, depth);
    }
  }
  walk(value, "", 0, "", false, false);
  if (rule !== null) {
    const at = lines.findIndex((node) => node.classList.contains("rule"));
    const note = element("div", { class: "rule-note", text: `↑ ${ruleReason}` });
    if (at >= 0) {
      let last = at;
      while (last + 1 < lines.length && lines[last + 1].classList.contains("rule")) last += 1;
      lines.splice(last + 1, 0, note);
    } else {
      lines.push(note);
    }
  }
  return element("pre", { class: "json" }, ...lines);
}

// Python's repr of a string, as rules.py writes header names in field paths: 'x-a' (or "it's").
function pyRepr(text) {
  return text.includes("'") && !text.includes('"') ? `"${text}"` : `'${text.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
}

function renderOrigin(root, origin, mode) {
  if (mode === "alb") { root.append(element("p", { class: "note", text: "An ALB target group has no origin." })); return; }
  if (!origin) { root.append(element("p", { class: "note", text: "The origin was not contacted." })); return; }
  root.append(renderMessage(`${origin.request.method} ${origin.request.url}`, origin.request.headers, origin.request.postData),
    renderMessage(`${statusLine(origin.response)} (headers after ${origin.time.toFixed(2)} ms)`,
      origin.response.headers, origin.response.content));
}

function statusLine(response) {
  return response.statusText ? `${response.status} ${response.statusText}` : `${response.status}`;
}

function renderMessage(line, headers, content) {
  const table = element("table", { class: "headers" },
    ...(headers || []).map((header) => element("tr", {}, element("td", { text: header.name }), element("td", { text: header.value }))));
  return element("div", { class: "message" }, element("div", { class: "line", text: line }), table, bodyPreview(content));
}

function bodyPreview(content) {
  if (!content || content.text === undefined || content.text === "") return null;
  const base64 = content.encoding === "base64" || content._encoding === "base64";
  const size = content.size ?? content.text.length;
  if (base64) return element("p", { class: "note", text: `body: ${size} bytes, not text (base64 in the HAR download)` });
  const text = content.text.length > 65536 ? content.text.slice(0, 65536) + "\n… (cut here, at 64 KB; the HAR download holds up to 1 MB of each body)" : content.text;
  return element("pre", { class: "body-preview", text });
}

async function copy(text) {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    const area = element("textarea", {}, text);
    document.body.append(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
  const toast = element("div", { class: "toast shown", text: "curl command copied" });
  document.body.append(toast);
  setTimeout(() => toast.remove(), 1500);
}

connect();
if (location.hash.length > 1) select(decodeURIComponent(location.hash.slice(1)));
