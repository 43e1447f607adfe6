// The playground page: a small Slack client for the local workspace. Plain JS, no build step.
"use strict";

const state = { team: null, channel: "C_GENERAL", thread: null, data: { messages: [], ephemerals: [], statuses: {} } };
const $ = (id) => document.getElementById(id);
const EMOJI = {
  mag: "🔍", page_facing_up: "📄", warning: "⚠️", eyes: "👀", hourglass_flowing_sand: "⏳",
  white_check_mark: "✅", x: "❌", thumbsup: "👍", "+1": "👍", thumbsdown: "👎", "-1": "👎",
  grey_question: "❔", books: "📚", arrows_counterclockwise: "🔄", speech_balloon: "💬",
  hourglass: "⌛", memo: "📝", lock: "🔒", bulb: "💡", wave: "👋", thinking_face: "🤔",
};

async function api(path, body) {
  const init = body === undefined ? {} : { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
  const response = await fetch(path, init);
  if (!response.ok) throw new Error(await response.text());
  return response.json();
}

function esc(text) {
  return String(text ?? "").replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
}

function emoji(html) {
  return html.replace(/:([a-z0-9_+-]+):/g, (m, name) => EMOJI[name] ?? m);
}

function userName(id) {
  return state.team.users[id]?.name ?? id;
}

// Slack mrkdwn -> HTML. Input arrives with &, <, > escaped the Slack way.
function mrkdwn(text) {
  const raw = String(text ?? "").replace(/&lt;/g, "\u0001").replace(/&gt;/g, "\u0002").replace(/&amp;/g, "&");
  let html = esc(raw);
  html = html.replace(/```([\s\S]*?)```/g, (m, code) => `<pre>${code}</pre>`);
  html = html.replace(/&lt;(@[A-Z0-9_]+)&gt;/g, (m, id) => `<span class="mention">@${esc(userName(id.slice(1)))}</span>`);
  html = html.replace(/&lt;(https?:[^|&]+?|mailto:[^|&]+?)\|(.+?)&gt;/g, (m, url, label) => `<a href="${url}" target="_blank" rel="noopener">${label}</a>`);
  html = html.replace(/&lt;(https?:[^&]+?)&gt;/g, (m, url) => `<a href="${url}" target="_blank" rel="noopener">${url}</a>`);
  const codes = [];
  html = html.replace(/`([^`\n]+)`/g, (m, code) => `\u0003${codes.push(code) - 1}\u0003`);
  html = html.replace(/(^|[\s(])\*([^*\n]+)\*/g, "$1<b>$2</b>");
  html = html.replace(/(^|[\s(])_([^_\n]+)_/g, "$1<i>$2</i>");
  html = html.replace(/(^|[\s(])~([^~\n]+)~/g, "$1<s>$2</s>");
  html = html.replace(/^&gt; ?(.*)$/gm, "<blockquote>$1</blockquote>");
  html = html.replace(/\u0001/g, "&lt;").replace(/\u0002/g, "&gt;");
  html = html.replace(/\u0003(\d+)\u0003/g, (m, i) => `<code>${codes[i]}</code>`);
  return emoji(html).replace(/\n/g, "<br>");
}

// Standard Markdown (what chat.startStream/appendStream carry) -> HTML, the common cases.
function markdown(text) {
  let html = esc(text);
  html = html.replace(/```([\s\S]*?)```/g, (m, code) => `<pre>${code}</pre>`);
  const codes = [];
  html = html.replace(/`([^`\n]+)`/g, (m, code) => `\u0003${codes.push(code) - 1}\u0003`);
  html = html.replace(/\*\*([^*]+)\*\*/g, "<b>$1</b>");
  html = html.replace(/(^|[\s(])_([^_\n]+)_/g, "$1<i>$2</i>");
  html = html.replace(/\[([^\]]+)\]\((https?:[^)\s]+)\)/g, '<a href="$2" target="_blank" rel="noopener">$1</a>');
  html = html.replace(/^#+ (.*)$/gm, "<b>$1</b>");
  html = html.replace(/^&gt; ?(.*)$/gm, "<blockquote>$1</blockquote>");
  html = html.replace(/\u0003(\d+)\u0003/g, (m, i) => `<code>${codes[i]}</code>`);
  return emoji(html).replace(/\n/g, "<br>");
}

function textObject(t) {
  if (!t) return "";
  return t.type === "plain_text" ? emoji(esc(t.text)) : mrkdwn(t.text);
}

function renderBlocks(message, blocks) {
  const out = [];
  for (const block of blocks) {
    if (block.type === "section") {
      let html = `<div class="section">${textObject(block.text)}`;
      if (block.fields) html += `<div class="fields">${block.fields.map((f) => `<div>${textObject(f)}</div>`).join("")}</div>`;
      out.push(html + "</div>");
    } else if (block.type === "context") {
      out.push(`<div class="context">${(block.elements || []).map((e) => (e.type === "image" ? "" : `<span>${textObject(e)}</span>`)).join(" ")}</div>`);
    } else if (block.type === "header") {
      out.push(`<div class="header">${textObject(block.text)}</div>`);
    } else if (block.type === "divider") {
      out.push("<hr>");
    } else if (block.type === "markdown") {
      out.push(`<div class="section">${markdown(block.text)}</div>`);
    } else if (block.type === "actions") {
      const buttons = (block.elements || []).filter((e) => e.type === "button").map((e) =>
        `<button class="action" data-channel="${esc(message.channel)}" data-ts="${esc(message.ts)}" data-action="${esc(e.action_id)}" data-value="${esc(e.value ?? "")}">${textObject(e.text)}</button>`);
      out.push(`<div class="actions">${buttons.join("")}</div>`);
    }
  }
  return out.join("");
}

function feedbackId(message) {
  for (const block of message.blocks || []) {
    for (const element of block.elements || []) {
      if (element.action_id?.startsWith("feedback_")) return element.value;
    }
  }
  return null;
}

function renderMessage(message, { inThread }) {
  const who = message.ephemeral ? "threadwise" : message.bot ? "threadwise" : userName(message.user);
  let body = "";
  if (message.markdown !== null && message.markdown !== undefined) body += `<div class="section">${markdown(message.markdown)}</div>`;
  if (message.blocks?.length) body += renderBlocks(message, message.blocks);
  else if (!message.markdown) body += `<div class="section">${mrkdwn(message.text)}</div>`;
  for (const file of message.files || []) body += `<div class="file">📎 ${esc(file.name)} <small>${file.size} bytes</small></div>`;
  const reactions = Object.entries(message.reactions || {}).map(([name, users]) =>
    `<span class="reaction" title="${esc(users.map(userName).join(", "))}">${emoji(":" + name + ":")} ${users.length}</span>`).join("");
  const replies = inThread ? [] : state.data.messages.filter((m) => m.reply && m.thread_ts === message.ts);
  const fid = message.bot ? feedbackId(message) : null;
  const div = document.createElement("div");
  div.className = "message" + (message.bot || message.ephemeral ? " bot" : "") + (message.ephemeral ? " ephemeral" : "") + (message.streaming ? " streaming" : "");
  div.dataset.ts = message.ts;
  div.innerHTML = `<div class="avatar">${message.bot || message.ephemeral ? "🧵" : esc(who[0])}</div><div class="content">
    <div class="meta"><b>${esc(who)}</b>${message.bot ? ' <span class="app">APP</span>' : ""} <time>${new Date(Number(message.ts) * 1000).toLocaleTimeString()}</time>${message.edited ? " <small>(edited)</small>" : ""}${message.ephemeral ? " <small>Only visible to you</small>" : ""}</div>
    ${body}
    ${reactions ? `<div class="reactions">${reactions}</div>` : ""}
    <div class="links">${replies.length ? `<a href="#" class="open-thread" data-ts="${esc(message.ts)}">${replies.length} ${replies.length === 1 ? "reply" : "replies"}</a>` : ""}
    ${!inThread && !message.ephemeral && !message.reply ? `<a href="#" class="open-thread reply-link" data-ts="${esc(message.ts)}">Reply in thread</a>` : ""}
    ${fid ? `<a href="#" class="show-details" data-feedback="${esc(fid)}">How was this answered?</a>` : ""}
    ${!message.ephemeral ? `<a href="#" class="react" data-channel="${esc(message.channel)}" data-ts="${esc(message.ts)}" title="React with ✅ (the asker's ✅ marks the thread resolved)">✅</a>` : ""}</div>
  </div>`;
  return div;
}

function draw() {
  const channel = state.team.channels.find((c) => c.id === state.channel);
  $("title").innerHTML = `${channel.kind === "im" ? "🧵 " : channel.kind === "private" ? "🔒 " : "# "}<b>${esc(channel.name)}</b>` +
    (channel.bot_member ? "" : ' <small>threadwise is not in this channel, so it does not see it</small>');
  const all = state.data.messages.map((m) => ({ ...m, channel: state.channel }));
  const ephemerals = state.data.ephemerals.map((m) => ({ ...m, channel: state.channel }));
  const top = [...all.filter((m) => !m.reply), ...ephemerals.filter((e) => !e.thread_ts)].sort((a, b) => Number(a.ts) - Number(b.ts));
  const timeline = $("timeline");
  const atBottom = timeline.scrollHeight - timeline.scrollTop - timeline.clientHeight < 40;
  timeline.replaceChildren(...top.map((m) => renderMessage(m, { inThread: false })));
  if (atBottom) timeline.scrollTop = timeline.scrollHeight;
  if (state.thread) {
    const parent = all.find((m) => m.ts === state.thread);
    const replies = [...all.filter((m) => m.reply && m.thread_ts === state.thread), ...ephemerals.filter((e) => e.thread_ts === state.thread)]
      .sort((a, b) => Number(a.ts) - Number(b.ts));
    const nodes = [parent, ...replies].filter(Boolean).map((m) => renderMessage(m, { inThread: true }));
    const status = state.data.statuses[state.thread];
    if (status) { const s = document.createElement("div"); s.className = "status"; s.textContent = `threadwise ${status}`; nodes.push(s); }
    $("replies").replaceChildren(...nodes);
    $("thread").hidden = false;
  } else {
    $("thread").hidden = true;
  }
  for (const li of document.querySelectorAll("#sidebar li")) li.classList.toggle("active", li.dataset.id === state.channel);
}

async function refresh() {
  state.data = await api(`/pg/messages/${state.channel}`);
  draw();
  await showModal();
}

// Modals the app opened (views.open): the last one, with its inputs; submitted as block id -> value(s).
async function showModal() {
  const { views } = await api("/pg/views");
  const view = views[views.length - 1];
  const modal = $("modal");
  if (!view) { modal.hidden = true; return; }
  if (modal.dataset.view === view.id && !modal.hidden) return;
  modal.dataset.view = view.id;
  const inputs = (view.blocks || []).map((block) => {
    if (block.type !== "input") return block.type === "section" ? `<p>${textObject(block.text)}</p>` : "";
    const e = block.element, id = esc(block.block_id);
    const chosen = new Set([...(e.initial_options || []).map((o) => o.value), e.initial_option?.value, ...(e.initial_users || [])].filter(Boolean));
    let field = "";
    if (e.type === "radio_buttons") field = e.options.map((o) => `<label><input type="radio" name="${id}" value="${esc(o.value)}" ${chosen.has(o.value) ? "checked" : ""}> ${textObject(o.text)}</label>`).join("");
    else if (e.type === "multi_static_select" || e.type === "static_select") field = `<select name="${id}" ${e.type.startsWith("multi") ? "multiple" : ""}>${e.type === "static_select" ? '<option value="">—</option>' : ""}${e.options.map((o) => `<option value="${esc(o.value)}" ${chosen.has(o.value) ? "selected" : ""}>${textObject(o.text)}</option>`).join("")}</select>`;
    else if (e.type === "multi_users_select") field = `<select name="${id}" multiple>${Object.entries(state.team.users).filter(([, u]) => !u.is_bot).map(([uid, u]) => `<option value="${esc(uid)}" ${chosen.has(uid) ? "selected" : ""}>${esc(u.name)}</option>`).join("")}</select>`;
    else if (e.type === "plain_text_input") field = e.multiline ? `<textarea name="${id}" rows="4">${esc(e.initial_value || "")}</textarea>` : `<input name="${id}" value="${esc(e.initial_value || "")}">`;
    return `<div class="field" data-block="${id}" data-type="${esc(e.type)}"><b>${textObject(block.label)}</b>${field}<small class="error"></small></div>`;
  }).join("");
  $("modal-body").innerHTML = `<h3>${textObject(view.title)}</h3>${inputs}`;
  modal.hidden = false;
}

async function submitModal(cancel) {
  const modal = $("modal"), values = {};
  for (const field of modal.querySelectorAll(".field")) {
    const name = field.dataset.block, type = field.dataset.type;
    if (type === "radio_buttons") { const c = field.querySelector("input:checked"); if (c) values[name] = c.value; }
    else if (type.startsWith("multi")) values[name] = [...field.querySelectorAll("option:checked")].map((o) => o.value);
    else { const v = field.querySelector("select, input, textarea").value; if (v) values[name] = v; }
  }
  const result = await api("/pg/submit", { view_id: modal.dataset.view, values, cancel });
  const errors = result.response?.response_action === "errors" ? result.response.errors : null;
  for (const field of modal.querySelectorAll(".field")) field.querySelector(".error").textContent = errors?.[field.dataset.block] || "";
  if (!errors) { modal.hidden = true; await refresh(); }
}

async function send(text, threadTs) {
  const command = text.match(/^(\/[a-z]+)\s*(.*)$/s);
  if (command) await api("/pg/command", { channel: state.channel, command: command[1], text: command[2] });
  else await api("/pg/say", { channel: state.channel, text, thread_ts: threadTs ?? null });
  await refresh();
  if (command) await awaitModal();
}

// The app opens a modal just after it acknowledges (a command, the Edit button): look for it briefly.
async function awaitModal() {
  for (let i = 0; i < 10 && $("modal").hidden; i++) {
    await new Promise((resolve) => setTimeout(resolve, 200));
    await showModal();
  }
}

function composer(formId, textId, threadTs) {
  const form = $(formId), text = $(textId);
  const submit = async (event) => {
    event?.preventDefault();
    const value = text.value.trim();
    if (!value) return;
    text.value = "";
    try { await send(value, threadTs()); } catch (error) { alert(error.message); }
  };
  form.addEventListener("submit", submit);
  text.addEventListener("keydown", (event) => { if (event.key === "Enter" && !event.shiftKey) submit(event); });
}

async function showDetails(feedback) {
  $("details").hidden = false;
  $("details-body").textContent = "Loading…";
  let answer;
  try { answer = await api(`/pg/answer/${encodeURIComponent(feedback)}`); } catch (error) { $("details-body").textContent = error.message; return; }
  const timings = Object.entries(answer.timings || {}).map(([k, v]) => `<tr><td>${esc(k)}</td><td>${(v * 1000).toFixed(0)} ms</td></tr>`).join("");
  const chunks = (answer.retrieved || []).map((r) => `<li class="${r.cited ? "kept" : "unused"}"><b>[${r.n}]</b> ${esc(r.title || r.doc)}${r.heading ? " — " + esc(r.heading) : ""}
      <small>score ${Number(r.score).toFixed(4)} · rank ${r.rank} for “${esc(r.query)}” (${esc(r.mode)}) · ${r.cited ? "cited" : "not cited"}</small><p>${esc(r.snippet)}</p></li>`).join("");
  const usage = Object.entries(answer.usage || {}).map(([k, v]) => `${esc(k)} ${v}`).join(" · ");
  $("details-body").innerHTML = `<p><b>Question</b><br>${esc(answer.question)}</p>
    <p><b>Outcome</b> ${esc(answer.outcome)} · <b>Citations</b> ${answer.sources.length} kept, ${answer.stripped_citations} removed</p>
    <p><b>Searched</b> ${(answer.searched || []).map((q) => `“${esc(q)}”`).join(", ") || "nothing"}</p>
    <h3>Timings</h3><table>${timings}</table>${usage ? `<p><small>tokens: ${usage}</small></p>` : ""}
    <h3>Retrieved chunks</h3><ol class="chunks">${chunks || "<li>none</li>"}</ol>`;
}

document.addEventListener("click", async (event) => {
  const target = event.target.closest("a, button");
  if (!target) return;
  if (target.classList.contains("open-thread")) { event.preventDefault(); state.thread = target.dataset.ts; draw(); $("thread-text").focus(); }
  else if (target.classList.contains("show-details")) { event.preventDefault(); showDetails(target.dataset.feedback); }
  else if (target.classList.contains("react")) {
    event.preventDefault();
    await api("/pg/react", { channel: target.dataset.channel, ts: target.dataset.ts, name: "white_check_mark" }).catch(() => {});
    await refresh();
  }
  else if (target.id === "modal-save") { event.preventDefault(); await submitModal(false); }
  else if (target.id === "modal-cancel") { event.preventDefault(); await submitModal(true); }
  else if (target.classList.contains("action")) {
    target.disabled = true;
    await api("/pg/click", { channel: target.dataset.channel, ts: target.dataset.ts, action_id: target.dataset.action, value: target.dataset.value });
    await refresh();
    if (target.dataset.action.endsWith("_edit")) await awaitModal();
  } else if (target.id === "close-thread") { state.thread = null; draw(); }
  else if (target.id === "close-details") { $("details").hidden = true; }
});

function setupDrop() {
  let depth = 0;
  document.addEventListener("dragenter", (e) => { e.preventDefault(); depth++; $("drop").hidden = false; });
  document.addEventListener("dragleave", () => { if (--depth <= 0) { depth = 0; $("drop").hidden = true; } });
  document.addEventListener("dragover", (e) => e.preventDefault());
  document.addEventListener("drop", async (e) => {
    e.preventDefault(); depth = 0; $("drop").hidden = true;
    for (const file of e.dataTransfer.files) await shareFile(file);
  });
}

async function shareFile(file) {
  const form = new FormData();
  form.append("channel", state.channel);
  form.append("file", file, file.name);
  const response = await fetch("/pg/share", { method: "POST", body: form });
  if (!response.ok) alert(await response.text());
  await refresh();
}

function connect() {
  const socket = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/pg/live`);
  let pending = false;
  socket.onmessage = (event) => {
    const change = JSON.parse(event.data);
    if (change.channel && change.channel !== state.channel) return;
    if (pending) return;
    pending = true;
    setTimeout(() => { pending = false; refresh(); }, 50); // coalesce a burst of stream appends
  };
  socket.onclose = () => setTimeout(connect, 1000);
}

async function main() {
  state.team = await api("/pg/state");
  $("team").textContent = state.team.team;
  for (const channel of state.team.channels) {
    const li = document.createElement("li");
    li.dataset.id = channel.id;
    li.textContent = (channel.kind === "im" ? "🧵 " : channel.kind === "private" ? "🔒 " : "# ") + channel.name;
    li.addEventListener("click", () => { state.channel = channel.id; state.thread = null; refresh(); });
    $(channel.kind === "im" ? "dms" : "channels").append(li);
  }
  composer("composer", "text", () => null);
  composer("thread-composer", "thread-text", () => state.thread);
  setupDrop();
  connect();
  setInterval(refresh, 3000); // in case a websocket message was missed
  await refresh();
}

main();
