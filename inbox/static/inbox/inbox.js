/* The live inbox: REST for what exists, /ws/inbox/ for what changes.
 *
 * The socket only ever adds to what REST returned; after a dropped socket the
 * page reconnects with backoff and reloads the list, the open thread and the
 * session through REST, so nothing that happened while it was away is missed.
 * User text is always set with textContent, never parsed as HTML.
 */
(function () {
  "use strict";

  const cfg = JSON.parse(document.getElementById("inbox-config").textContent);
  const csrfToken = document.querySelector('meta[name="csrf-token"]').content;
  const $ = (id) => document.getElementById(id);

  // Statuses only move up (they can arrive out of order from several workers).
  const RANK = { queued: 0, sending: 1, received: 2, sent: 2, delivered: 3, read: 4, played: 5, failed: 9 };
  const PAGE_SIZE = 100;

  const state = {
    conversations: new Map(), // id -> conversation (REST shape, plus preview)
    next: null, // cursor URL of older conversations
    agents: {}, // id -> {name, kind}
    agentStates: {}, // conversation id -> {active_agent, owner, automation_paused_until}
    openId: null,
    messages: new Map(), // id -> message of the open thread
    notes: new Map(), // id -> private note of the open thread
    session: null,
    members: new Map(), // user id -> {id, username, name, presence}
    labels: [], // the tenant's labels
    canned: [], // the tenant's canned replies
    filters: { view: "all", status: "open", label: "", search: "" },
    mode: "reply", // or "note"
    myPresence: "online",
  };

  // --- REST -------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, body) {
      super((body && (body.detail || body.message)) || `The server answered ${status}.`);
      this.status = status;
      this.body = body;
    }
  }

  async function api(method, url, body, headers) {
    const options = {
      method,
      credentials: "same-origin",
      headers: Object.assign({ Accept: "application/json", "X-Tenant": cfg.tenant.slug }, headers || {}),
    };
    if (method !== "GET") {
      options.headers["X-CSRFToken"] = csrfToken;
      if (body !== undefined) {
        options.headers["Content-Type"] = "application/json";
        options.body = JSON.stringify(body);
      }
    }
    const response = await fetch(url, options);
    if (response.status === 204) return null;
    const data = await response.json().catch(() => null);
    if (!response.ok) throw new ApiError(response.status, data);
    return data;
  }

  const apiUrl = (path) => cfg.api + path;

  function uuid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  // --- formatting ----------------------------------------------------------------------

  const timeFmt = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
  const dayFmt = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short", year: "numeric" });

  function shortTime(iso) {
    if (!iso) return "";
    const d = new Date(iso);
    const today = new Date();
    return d.toDateString() === today.toDateString() ? timeFmt.format(d) : dayFmt.format(d);
  }

  function contactName(contact) {
    return (contact && (contact.name || (contact.wa_id && "+" + contact.wa_id))) || "Unknown";
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function messageTime(m) {
    return m.accepted_at || m.sent_at || m.delivered_at || m.read_at || null;
  }

  function messageText(m) {
    if (m.text) return m.text;
    if (m.type === "location") return "📍 Location";
    if (m.type && m.type !== "text") return `[${m.type}]`;
    return "";
  }

  // --- connection indicator ---------------------------------------------------------------

  function setConnection(stateName, text) {
    const node = $("connection");
    node.dataset.state = stateName;
    node.textContent = text;
    document.body.dataset.socket = stateName;
  }

  // --- conversations -------------------------------------------------------------------

  function sortedConversations() {
    return Array.from(state.conversations.values()).sort((a, b) => {
      const ta = a.last_message_at ? Date.parse(a.last_message_at) : 0;
      const tb = b.last_message_at ? Date.parse(b.last_message_at) : 0;
      return tb - ta || b.id - a.id;
    });
  }

  function agentLabel(conversationId) {
    const s = state.agentStates[conversationId];
    if (!s) return { text: "", human: false };
    const agent = s.active_agent != null ? state.agents[s.active_agent] : null;
    const human = s.owner === "human";
    if (agent) return { text: agent.name, human: human || agent.kind === "human" };
    return { text: human ? "Human" : "", human };
  }

  function renderConversations() {
    const list = $("conversations");
    const items = sortedConversations();
    list.replaceChildren(
      ...items.map((c) => {
        const li = el("li", "conversation");
        li.dataset.conversationId = c.id;
        li.setAttribute("role", "option");
        li.setAttribute("aria-selected", String(c.id === state.openId));
        li.tabIndex = 0;
        if (c.unread_count > 0) li.classList.add("has-unread");
        const name = el("span", "name", contactName(c.contact));
        if (c.contact && c.contact.sandbox) name.append(" ", sandboxBadge());
        li.append(name, el("span", "time", shortTime(c.last_message_at)));
        li.append(el("span", "preview", c.preview || (c.contact && c.contact.name ? "+" + c.contact.wa_id : "")));
        const badges = el("span", "badges");
        for (const label of c.labels || []) badges.append(el("span", "label-chip", label));
        if (c.status && c.status !== "open") badges.append(el("span", "status-chip " + c.status, c.status));
        if (c.assignee) {
          const who = el("span", "assignee-chip" + (c.assignee.id === cfg.userId ? " me" : ""), initials(c.assignee));
          who.title = `Assigned to ${c.assignee.name}`;
          badges.append(who);
        }
        const agent = agentLabel(c.id);
        if (agent.text) badges.append(el("span", "agent-chip" + (agent.human ? " human" : ""), agent.text));
        if (c.unread_count > 0) {
          const badge = el("span", "unread", String(c.unread_count));
          badge.setAttribute("aria-label", `${c.unread_count} unread`);
          badges.append(badge);
        }
        li.append(badges);
        li.addEventListener("click", () => openConversation(c.id));
        li.addEventListener("keydown", (e) => {
          if (e.key === "Enter") openConversation(c.id);
        });
        return li;
      })
    );
    $("conversations-empty").hidden = items.length > 0;
    $("conversations-more").hidden = !state.next;
  }

  function withPreview(known, c) {
    const merged = Object.assign({}, known || {}, c);
    if (c.last_message) {
      merged.preview = (c.last_message.direction === "out" ? "You: " : "") + messageText(c.last_message);
    }
    return merged;
  }

  function mergeConversation(c) {
    state.conversations.set(c.id, withPreview(state.conversations.get(c.id), c));
  }

  function listQuery() {
    const f = state.filters;
    const q = new URLSearchParams({ page_size: PAGE_SIZE, view: f.view, status: f.status });
    if (f.label) q.set("label", f.label);
    if (f.search.trim().length >= 2) q.set("search", f.search.trim());
    return q.toString();
  }

  // Whether a conversation belongs in the list as filtered (search aside: the server decides that).
  function matchesFilters(c) {
    const f = state.filters;
    if (f.view === "mine" && !(c.assignee && c.assignee.id === cfg.userId)) return false;
    if (f.view === "unassigned" && c.assignee) return false;
    if (f.status !== "all" && c.status && c.status !== f.status) return false;
    if (f.label && !(c.labels || []).includes(f.label)) return false;
    return true;
  }

  let listGeneration = 0;
  async function loadConversations() {
    const generation = ++listGeneration;
    const page = await api("GET", apiUrl(`conversations?${listQuery()}`));
    if (generation !== listGeneration) return; // the filters changed meanwhile
    const fresh = new Map();
    for (const c of page.results) fresh.set(c.id, withPreview(state.conversations.get(c.id), c));
    // Conversations beyond the first page that were loaded earlier stay (unless they no longer match).
    if (page.next) for (const [id, c] of state.conversations) if (!fresh.has(id) && matchesFilters(c)) fresh.set(id, c);
    state.conversations = fresh;
    state.next = page.next;
    await loadAgentStates(page.results.map((c) => c.id));
    renderConversations();
  }

  async function loadOlderConversations() {
    if (!state.next) return;
    const page = await api("GET", state.next);
    page.results.forEach(mergeConversation);
    state.next = page.next;
    await loadAgentStates(page.results.map((c) => c.id));
    renderConversations();
  }

  async function loadAgentStates(ids) {
    if (!ids.length) return;
    try {
      const data = await api("GET", `${cfg.agentStates}?ids=${ids.join(",")}`);
      Object.assign(state.agents, data.agents);
      Object.assign(state.agentStates, data.states);
    } catch (err) {
      console.warn("agent states unavailable", err);
    }
  }

  let listReload = null;
  function reloadConversationsSoon() {
    if (listReload) return;
    listReload = setTimeout(() => {
      listReload = null;
      loadConversations().catch(showListError);
    }, 300);
  }

  function showListError(err) {
    console.error(err);
    const empty = $("conversations-empty");
    empty.hidden = false;
    empty.textContent = `Could not load conversations: ${err.message}`;
  }

  // --- the open thread --------------------------------------------------------------------

  function ticks(m) {
    if (m.direction !== "out") return null;
    const span = el("span", "ticks");
    span.dataset.status = m.status;
    if (m.status === "failed") {
      span.className = "ticks failed";
      span.textContent = "!";
      span.title = "Not delivered";
    } else if (m.status === "queued" || m.status === "sending") {
      span.className = "ticks pending";
      span.textContent = "○";
      span.title = "Sending";
    } else if (m.status === "sent") {
      span.textContent = "✓";
      span.title = "Sent";
    } else if (m.status === "delivered") {
      span.textContent = "✓✓";
      span.title = "Delivered";
    } else {
      span.className = "ticks read";
      span.textContent = "✓✓";
      span.title = m.status === "played" ? "Played" : "Read";
    }
    return span;
  }

  function renderMessage(m) {
    const li = el("li", "message " + (m.direction === "out" ? "out" : "in"));
    li.dataset.messageId = m.id;
    li.dataset.status = m.status;
    const text = messageText(m);
    const media = m.media ? renderMedia(m.media) : null;
    if (media) li.append(media);
    if (!media || m.text) li.append(el("span", m.text ? "text" : "text kind", text));
    if (m.status === "failed") {
      const reason = (m.error && (m.error.reason || m.error.code)) || m.error_reason || m.error_code || "";
      if (reason) li.append(el("div", "failure", `Not delivered: ${reason}`));
    }
    const meta = el("div", "meta");
    meta.append(el("time", null, shortTime(messageTime(m))));
    const t = ticks(m);
    if (t) meta.append(t);
    li.append(meta);
    return li;
  }

  // --- media in messages (docs/media.md) ------------------------------------------------------

  function humanSize(bytes) {
    if (bytes == null) return "";
    if (bytes < 1024) return `${bytes} B`;
    if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
    return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
  }

  // Images and stickers inline (the stored thumbnail, linked to the file), audio and video
  // with the browser's players, documents as a download with name and size. The links are
  // the signed media.url / thumbnail_url of the one message shape: no API key in the page.
  function renderMedia(media) {
    const box = el("div", "media media-" + media.kind);
    box.dataset.mediaStatus = media.status;
    if (media.status === "pending") {
      box.append(el("span", "media-note", `Receiving ${media.kind}…`));
      return box;
    }
    if (media.status !== "stored" || !media.url) {
      box.append(el("span", "media-note media-failed", `${media.kind} unavailable: ${media.reason || media.status}`));
      return box;
    }
    if (media.kind === "image" || media.kind === "sticker") {
      const link = el("a", "media-image");
      link.href = media.url;
      link.target = "_blank";
      link.rel = "noopener";
      const img = el("img");
      img.src = media.thumbnail_url || media.url;
      img.alt = media.filename || media.kind;
      img.loading = "lazy";
      link.append(img);
      box.append(link);
    } else if (media.kind === "audio" || media.kind === "video") {
      const player = el(media.kind);
      player.controls = true;
      player.preload = "metadata";
      player.src = media.url;
      box.append(player);
    } else {
      const link = el("a", "media-file");
      link.href = media.url;
      link.download = media.filename || "";
      link.append(el("span", "media-name", media.filename || "Document"), el("span", "media-size", humanSize(media.size)));
      box.append(link);
    }
    return box;
  }

  function renderNote(n) {
    const li = el("li", "note");
    li.dataset.noteId = n.id;
    li.append(el("div", "note-head", `Private note · ${n.author ? n.author.name : "someone"}`));
    li.append(el("span", "text", n.body));
    const meta = el("div", "meta");
    meta.append(el("time", null, shortTime(n.created_at)));
    li.append(meta);
    return li;
  }

  function renderMessages() {
    const list = $("messages");
    const nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
    const items = [
      ...Array.from(state.messages.values(), (m) => ({ when: messageTime(m), order: 0, id: m.id, m })),
      ...Array.from(state.notes.values(), (n) => ({ when: n.created_at, order: 1, id: n.id, n })),
    ].sort((a, b) => (Date.parse(a.when) || 0) - (Date.parse(b.when) || 0) || a.order - b.order || a.id - b.id);
    const nodes = [];
    let day = null;
    for (const item of items) {
      const when = item.when;
      const thisDay = when ? new Date(when).toDateString() : day;
      if (thisDay && thisDay !== day) {
        nodes.push(el("li", "day", dayFmt.format(new Date(when))));
        day = thisDay;
      }
      nodes.push(item.m ? renderMessage(item.m) : renderNote(item.n));
    }
    list.replaceChildren(...nodes);
    if (nearBottom || list.dataset.scrolled !== "1") {
      list.scrollTop = list.scrollHeight;
      list.dataset.scrolled = "1";
    }
  }

  function upsertMessage(m) {
    const known = state.messages.get(m.id);
    if (known && (RANK[known.status] ?? 0) > (RANK[m.status] ?? 0)) return false;
    state.messages.set(m.id, Object.assign({}, known || {}, m));
    return true;
  }

  function botState(c) {
    const s = state.agentStates[c.id] || {};
    if (s.owner === "human") return { paused: true, text: "Bot off: a person holds this conversation" };
    const until = s.automation_paused_until ? Date.parse(s.automation_paused_until) : 0;
    if (until > Date.now()) {
      return { paused: true, text: `Bot paused until ${shortTime(s.automation_paused_until)} (after a manual reply)` };
    }
    return { paused: false, text: "" };
  }

  function renderThreadHead() {
    const c = state.conversations.get(state.openId);
    if (!c) return;
    $("thread-title").textContent = contactName(c.contact);
    $("thread-sandbox").hidden = !(c.contact && c.contact.sandbox);
    $("thread-sub").textContent = c.contact && c.contact.name && c.contact.wa_id ? "+" + c.contact.wa_id : "";
    const agent = agentLabel(c.id);
    const chip = $("thread-agent");
    chip.className = "agent-chip" + (agent.human ? " human" : "");
    chip.textContent = agent.text ? `Answering: ${agent.text}` : "";
    const human = (state.agentStates[c.id] || {}).owner === "human";
    const bot = botState(c);
    $("bot-state").textContent = bot.text;
    $("bot-state").dataset.paused = String(bot.paused);
    $("takeover").disabled = human;
    $("handback").disabled = !bot.paused;
    renderAssignee(c);
    const status = c.status || "open";
    $("resolve").hidden = status === "resolved";
    $("reopen").hidden = status === "open";
    const banner = $("status-banner");
    banner.hidden = status === "open";
    banner.dataset.status = status;
    banner.textContent = status === "resolved" ? "Resolved: it opens again when the contact writes."
      : status === "snoozed" ? `Snoozed until ${shortTime(c.snoozed_until)} ${dayFmt.format(new Date(c.snoozed_until))}, or until the contact writes.` : "";
    if (!$("contact-panel").hidden) renderContactPanel();
  }

  async function loadNotes(id) {
    const notes = await api("GET", apiUrl(`conversations/${id}/notes`));
    if (state.openId !== id) return;
    state.notes = new Map(notes.map((n) => [n.id, n]));
    renderMessages();
  }

  async function loadThread(id) {
    const [page] = await Promise.all([
      api("GET", apiUrl(`conversations/${id}/messages?page_size=100`)),
      loadNotes(id).catch((err) => console.warn("notes unavailable", err)),
    ]);
    if (state.openId !== id) return;
    // Events that came in while the page was loading may be newer than it: keep the higher status.
    const live = state.messages;
    state.messages = new Map();
    page.results.forEach(upsertMessage);
    live.forEach(upsertMessage);
    renderMessages();
  }

  async function openConversation(id) {
    if (state.openId !== id) {
      state.openId = id;
      state.messages = new Map();
      state.notes = new Map();
      $("messages").dataset.scrolled = "0";
      $("messages").replaceChildren();
    }
    $("thread-empty").hidden = true;
    $("thread-view").hidden = false;
    document.body.classList.add("thread-open");
    $("reply-error").hidden = true;
    renderThreadHead();
    renderConversations();
    history.replaceState(null, "", `?tenant=${encodeURIComponent(cfg.tenant.slug)}&conversation=${id}`);
    try {
      await loadThread(id);
    } catch (err) {
      showReplyError(`Could not load the conversation: ${err.message}`);
    }
    markReadSoon();
    $("reply-text").focus();
  }

  let readTimer = null;
  function markReadSoon() {
    const c = state.conversations.get(state.openId);
    if (!c || !c.unread_count || document.hidden || readTimer) return;
    readTimer = setTimeout(async () => {
      readTimer = null;
      const current = state.conversations.get(state.openId);
      if (!current || !current.unread_count) return;
      try {
        await api("POST", cfg.markRead.replace("{id}", current.id));
      } catch (err) {
        console.warn("could not mark read", err);
      }
    }, 400);
  }

  // --- replying, take-over ---------------------------------------------------------------

  function showReplyError(text) {
    const node = $("reply-error");
    node.textContent = text;
    node.hidden = !text;
  }

  async function sendReply(event) {
    event.preventDefault();
    const c = state.conversations.get(state.openId);
    const box = $("reply-text");
    const body = box.value;
    if (!c || !body.trim()) return;
    const button = $("reply-send");
    button.disabled = true;
    showReplyError("");
    if (state.mode === "note") {
      try {
        const note = await api("POST", apiUrl(`conversations/${c.id}/notes`), { body });
        box.value = "";
        if (note.conversation_id === state.openId) {
          state.notes.set(note.id, note);
          renderMessages();
        }
      } catch (err) {
        showReplyError(`Note not saved: ${err.message}`);
      } finally {
        button.disabled = false;
        box.focus();
      }
      return;
    }
    try {
      const message = await api(
        "POST",
        apiUrl("messages"),
        { to: c.contact.wa_id, type: "text", text: { body } },
        { "Idempotency-Key": uuid() }
      );
      box.value = "";
      if (message && message.conversation_id === state.openId && upsertMessage(message)) renderMessages();
    } catch (err) {
      const wait = err.status === 429 ? " Too many requests for now; try again in a minute." : "";
      showReplyError(`Not sent: ${err.message}${wait}`);
    } finally {
      button.disabled = false;
      box.focus();
    }
  }

  // --- attachments from the composer (docs/media.md) -----------------------------------------

  async function uploadMedia(file) {
    const form = new FormData();
    form.append("file", file, file.name);
    const response = await fetch(apiUrl("media"), {
      method: "POST",
      credentials: "same-origin",
      headers: { Accept: "application/json", "X-Tenant": cfg.tenant.slug, "X-CSRFToken": csrfToken },
      body: form,
    });
    const data = await response.json().catch(() => null);
    if (!response.ok) throw new ApiError(response.status, data);
    return data;
  }

  async function sendAttachment(event) {
    const input = event.target;
    const file = input.files && input.files[0];
    const c = state.conversations.get(state.openId);
    if (!file || !c) return;
    const button = $("reply-attach");
    button.disabled = true;
    showReplyError("");
    try {
      const media = await uploadMedia(file);
      const caption = $("reply-text").value.trim();
      const content = { media_id: media.id, filename: file.name };
      if (caption && media.kind !== "audio") content.caption = caption;
      const message = await api(
        "POST",
        apiUrl("messages"),
        { to: c.contact.wa_id, type: media.kind, [media.kind]: content },
        { "Idempotency-Key": uuid() }
      );
      if (caption && media.kind !== "audio") $("reply-text").value = "";
      if (message && message.conversation_id === state.openId && upsertMessage(message)) renderMessages();
    } catch (err) {
      showReplyError(`Not sent: ${err.message}`);
    } finally {
      input.value = "";
      button.disabled = false;
    }
  }

  async function changeOwner(action) {
    const id = state.openId;
    if (!id) return;
    const buttons = [$("takeover"), $("handback")];
    buttons.forEach((b) => (b.disabled = true));
    showReplyError("");
    try {
      const answer = await api("POST", apiUrl(`conversations/${id}/${action}`), action === "handoff" ? { note: "taken over in the inbox" } : undefined);
      applyAgentState(answer);
    } catch (err) {
      showReplyError(err.status === 404 ? "Take-over is not available on this platform yet." : `Could not change who answers: ${err.message}`);
    } finally {
      renderThreadHead();
    }
  }

  function applyAgentState(data) {
    if (!data || data.conversation_id == null) return;
    const known = state.agentStates[data.conversation_id] || {};
    state.agentStates[data.conversation_id] = Object.assign({}, known, {
      active_agent: data.active_agent !== undefined ? data.active_agent : known.active_agent,
      owner: data.owner || known.owner,
      automation_paused_until: data.automation_paused_until !== undefined ? data.automation_paused_until : known.automation_paused_until,
    });
    if (data.active_agent != null && !state.agents[data.active_agent]) {
      loadAgentStates([data.conversation_id]).then(renderAll);
    }
    renderAll();
  }

  function renderAll() {
    renderConversations();
    if (state.openId) renderThreadHead();
  }

  // --- the WhatsApp session ---------------------------------------------------------------

  const SESSION_PILL = { WORKING: "pill-ok", SCAN_QR_CODE: "pill-warn", STARTING: "pill-warn", FAILED: "pill-bad" };
  let sessionPoll = null;

  function renderSession() {
    const s = state.session;
    if (!s) return;
    const card = $("session");
    card.dataset.status = s.status;
    const pill = $("session-status");
    pill.className = "pill " + (SESSION_PILL[s.status] || "");
    pill.textContent = s.status.replaceAll("_", " ").toLowerCase();
    $("session-me").textContent = s.me && (s.me.pushName || s.me.id) ? ` ${s.me.pushName || ""} ${s.me.id ? "(" + s.me.id.split("@")[0] + ")" : ""}` : "";
    const showQr = s.status === "SCAN_QR_CODE" && s.qr && s.qr.png_data_url;
    $("session-qr").hidden = !showQr;
    if (showQr && $("session-qr-img").src !== s.qr.png_data_url) $("session-qr-img").src = s.qr.png_data_url;
    const toggle = $("session-toggle");
    const running = s.wanted && s.status !== "STOPPED" && s.status !== "FAILED";
    toggle.hidden = false;
    toggle.disabled = !cfg.tenant.active;
    toggle.textContent = running ? "Stop" : "Start";
    toggle.dataset.action = running ? "stop" : "start";
    const error = $("session-error");
    error.textContent = s.error || "";
    error.hidden = !s.error;
    // A waiting QR changes every few seconds on the phone side; keep it fresh while it shows.
    clearTimeout(sessionPoll);
    if (s.status === "SCAN_QR_CODE" || s.status === "STARTING") sessionPoll = setTimeout(loadSession, 5000);
  }

  async function loadSession() {
    try {
      state.session = await api("GET", apiUrl("session"));
      renderSession();
    } catch (err) {
      $("session-status").textContent = "unknown";
      const error = $("session-error");
      error.textContent = `Could not read the session: ${err.message}`;
      error.hidden = false;
    }
  }

  async function toggleSession() {
    const toggle = $("session-toggle");
    const action = toggle.dataset.action;
    if (action === "stop" && !confirm("Stop the WhatsApp session? Messages will wait until it runs again.")) return;
    toggle.disabled = true;
    try {
      state.session = await api("POST", apiUrl(`session/${action}`), {});
      renderSession();
    } catch (err) {
      const error = $("session-error");
      error.textContent = err.message;
      error.hidden = false;
      toggle.disabled = false;
    }
  }

  // --- events from the socket -------------------------------------------------------------

  function onMessageEvent(m) {
    const c = state.conversations.get(m.conversation_id);
    if (!c) {
      reloadConversationsSoon();
    } else {
      const when = messageTime(m);
      if (when && (!c.last_message_at || Date.parse(when) > Date.parse(c.last_message_at))) c.last_message_at = when;
      if (m.text || m.type) c.preview = (m.direction === "out" ? "You: " : "") + messageText(m);
      renderConversations();
    }
    if (m.conversation_id === state.openId) {
      if (upsertMessage(m)) renderMessages();
      if (m.direction === "in") markReadSoon();
    }
    if (m.direction === "in" && isNewInbound(m)) maybeNotify(m);
  }

  function onEvent(event) {
    const data = event.data || {};
    switch (event.type) {
      case "inbox.ready":
        return;
      case "message.queued":
      case "message.sent":
      case "message.status":
      case "message.failed":
      case "message.received":
      case "message.media_stored":
      case "message.media_failed":
      case "message.media_deleted":
        return onMessageEvent(data);
      case "conversation.updated": {
        const known = state.conversations.get(data.conversation_id);
        if (!known) return reloadConversationsSoon();
        Object.assign(known, {
          contact: data.contact || known.contact,
          last_message_at: data.last_message_at,
          last_inbound_at: data.last_inbound_at,
          unread_count: data.unread_count,
        });
        renderConversations();
        if (data.conversation_id === state.openId) {
          renderThreadHead();
          markReadSoon();
        }
        return;
      }
      case "conversation.handoff":
      case "conversation.resumed":
      case "conversation.agent_switched":
      case "conversation.automation_paused":
        return applyAgentState(data);
      case "conversation.assigned":
      case "conversation.resolved":
      case "conversation.reopened":
      case "conversation.snoozed":
      case "conversation.labels_changed":
        return onTeamChange(event.type, data);
      case "note.created":
      case "note.deleted":
        if (data.conversation_id === state.openId) loadNotes(state.openId).catch(console.warn);
        return;
      case "contact.updated":
        return onContactUpdated(data);
      case "label.created":
      case "label.deleted":
        return loadLabels();
      case "canned_reply.created":
      case "canned_reply.updated":
      case "canned_reply.deleted":
        return loadCanned();
      case "member.presence":
        return onPresence(data);
      case "session.status":
        return loadSession();
      case "alert.opened":
      case "alert.resolved":
        return showAlert(event);
      default:
        return;
    }
  }

  function showAlert(event) {
    const data = event.data || {};
    const box = $("alerts");
    const id = `alert-${data.id}`;
    const old = document.getElementById(id);
    if (old) old.remove();
    const row = el("div", "alert" + (event.type === "alert.resolved" ? " resolved" : ""));
    row.id = id;
    row.append(el("strong", null, event.type === "alert.resolved" ? "Resolved" : "Alert"), el("span", null, data.message || data.kind || ""));
    const close = el("button", "btn btn-small btn-ghost", "Dismiss");
    close.type = "button";
    close.addEventListener("click", () => row.remove());
    row.append(close);
    box.prepend(row);
  }

  // --- the support team: assignment, status, labels, notes, canned replies, presence -----------------

  function initials(p) {
    const words = (p.name || p.username || "?").split(/[\s._-]+/).filter(Boolean);
    return words.slice(0, 2).map((w) => w[0].toUpperCase()).join("") || "?";
  }

  function sandboxBadge() {
    const badge = el("span", "sandbox-badge", "sandbox");
    badge.title = "A sandbox echo number, not a real phone";
    return badge;
  }

  const PRESENCE_TEXT = { online: "online", away: "away", offline: "offline" };

  function renderAssignee(c) {
    const select = $("assignee");
    const options = [el("option", null, "Unassigned")];
    options[0].value = "";
    const members = Array.from(state.members.values());
    if (c.assignee && !state.members.has(c.assignee.id)) members.push(Object.assign({ presence: "offline" }, c.assignee));
    for (const m of members) {
      const option = el("option", null, `${m.id === cfg.userId ? "Me" : m.name} (${PRESENCE_TEXT[m.presence] || "offline"})`);
      option.value = String(m.id);
      options.push(option);
    }
    select.replaceChildren(...options);
    select.value = c.assignee ? String(c.assignee.id) : "";
  }

  function renderTeam() {
    const list = $("team");
    list.replaceChildren(
      ...Array.from(state.members.values()).map((m) => {
        const li = el("li", "member");
        li.dataset.userId = m.id;
        li.dataset.presence = m.presence;
        li.append(el("span", "dot"), el("span", "member-name", m.id === cfg.userId ? `${m.name} (you)` : m.name),
          el("span", "member-presence", PRESENCE_TEXT[m.presence] || "offline"));
        return li;
      })
    );
  }

  async function loadMembers() {
    try {
      const members = await api("GET", apiUrl("members"));
      state.members = new Map(members.map((m) => [m.id, m]));
      const me = state.members.get(cfg.userId);
      if (me && me.presence !== "offline") setMyPresence(me.presence, false);
      if (me) me.presence = state.myPresence;
      renderTeam();
      if (state.openId) renderThreadHead();
    } catch (err) {
      console.warn("members unavailable", err);
    }
  }

  function onPresence(data) {
    const m = state.members.get(data.user_id);
    if (!m) return loadMembers();
    m.presence = data.status;
    renderTeam();
    if (state.openId) renderThreadHead();
  }

  function setMyPresence(status, tell) {
    state.myPresence = status;
    const button = $("my-presence");
    button.dataset.presence = status;
    button.textContent = status === "away" ? "Away" : "Online";
    const me = state.members.get(cfg.userId);
    if (me) me.presence = status;
    renderTeam();
    if (tell && socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "presence", status }));
  }

  async function loadLabels() {
    try {
      state.labels = await api("GET", apiUrl("labels"));
    } catch (err) {
      return console.warn("labels unavailable", err);
    }
    const select = $("label-filter");
    const all = el("option", null, "All labels");
    all.value = "";
    select.replaceChildren(all, ...state.labels.map((l) => Object.assign(el("option", null, l.name), { value: l.name })));
    select.value = state.filters.label;
    $("label-options").replaceChildren(...state.labels.map((l) => Object.assign(el("option"), { value: l.name })));
  }

  async function loadCanned() {
    try {
      state.canned = await api("GET", apiUrl("canned-replies"));
    } catch (err) {
      return console.warn("canned replies unavailable", err);
    }
    renderCannedList();
  }

  function onTeamChange(type, data) {
    const c = state.conversations.get(data.conversation_id);
    const team = data.conversation || {};
    if (!c) {
      // New to this view (e.g. just assigned to me): the server knows what else it matches.
      if (matchesFilters(Object.assign({ labels: [] }, team))) reloadConversationsSoon();
      return;
    }
    Object.assign(c, team);
    if (!matchesFilters(c) && c.id !== state.openId) state.conversations.delete(c.id);
    renderConversations();
    if (c.id === state.openId) {
      renderThreadHead();
      if (!$("contact-panel").hidden) loadHistory(c.id);
    }
  }

  async function teamAction(path, body) {
    const id = state.openId;
    if (!id) return;
    showReplyError("");
    try {
      const c = await api(body === undefined ? "POST" : body.method || "POST", apiUrl(`conversations/${id}/${path}`), body && body.data);
      mergeConversation(c);
      renderAll();
    } catch (err) {
      showReplyError(`Could not change the conversation: ${err.message}`);
    }
  }

  function snoozeUntil(choice) {
    const d = new Date();
    if (choice === "1h") return new Date(d.getTime() + 3600 * 1000);
    d.setHours(9, 0, 0, 0);
    if (choice === "tomorrow") d.setDate(d.getDate() + 1);
    if (choice === "week") d.setDate(d.getDate() + ((8 - d.getDay()) % 7 || 7));
    return d;
  }

  // --- notifications and sound, for new messages in my own conversations ---

  let audio = null;
  const seenInbound = new Set();

  function isNewInbound(m) {
    if (seenInbound.has(m.id)) return false;
    seenInbound.add(m.id);
    return true;
  }

  function beep() {
    if (!audio) return;
    const osc = audio.createOscillator();
    const gain = audio.createGain();
    osc.frequency.value = 880;
    gain.gain.setValueAtTime(0.12, audio.currentTime);
    gain.gain.exponentialRampToValueAtTime(0.0001, audio.currentTime + 0.25);
    osc.connect(gain).connect(audio.destination);
    osc.start();
    osc.stop(audio.currentTime + 0.25);
  }

  function maybeNotify(m) {
    const c = state.conversations.get(m.conversation_id);
    if (!c || !c.assignee || c.assignee.id !== cfg.userId) return;
    if (!document.hidden && m.conversation_id === state.openId) return;
    beep();
    if (!("Notification" in window) || Notification.permission !== "granted") return;
    const n = new Notification(contactName(c.contact), { body: messageText(m), tag: `conversation-${c.id}` });
    n.onclick = () => {
      window.focus();
      openConversation(c.id);
    };
  }

  async function enableNotifications() {
    // Both need a click: browsers refuse the permission prompt and audio without one.
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (Ctx && !audio) audio = new Ctx();
    if (audio && audio.state === "suspended") audio.resume();
    let permission = "unsupported";
    if ("Notification" in window) permission = await Notification.requestPermission();
    const button = $("notify");
    button.dataset.permission = permission;
    button.textContent = permission === "granted" ? "Notifications on" : permission === "denied" ? "Notifications blocked" : "Notify me";
    beep();
  }

  // --- canned replies: "/" in the reply box ---

  let cannedChoice = 0;
  function cannedMatches() {
    const text = $("reply-text").value;
    const match = /^\/([\w-]*)$/.exec(text);
    if (!match) return null;
    const code = match[1].toLowerCase();
    return state.canned.filter((r) => r.short_code.startsWith(code));
  }

  function renderCannedMenu() {
    const menu = $("canned-menu");
    const matches = cannedMatches();
    if (!matches) {
      menu.hidden = true;
      return;
    }
    cannedChoice = Math.min(cannedChoice, Math.max(matches.length - 1, 0));
    menu.replaceChildren(
      ...(matches.length ? matches.map((r, i) => {
        const li = el("li", "canned-item");
        li.setAttribute("role", "option");
        li.setAttribute("aria-selected", String(i === cannedChoice));
        li.dataset.code = r.short_code;
        li.append(el("strong", null, "/" + r.short_code), el("span", "muted", " " + r.content));
        li.addEventListener("mousedown", (e) => {
          e.preventDefault();
          insertCanned(r);
        });
        return li;
      }) : [el("li", "canned-empty muted", state.canned.length ? "No canned reply starts so." : "No canned replies yet: add some with “Canned replies…”.")])
    );
    menu.hidden = false;
  }

  function insertCanned(reply) {
    const box = $("reply-text");
    box.value = reply.content;
    $("canned-menu").hidden = true;
    box.focus();
    box.setSelectionRange(box.value.length, box.value.length);
  }

  function cannedKeys(e) {
    const menu = $("canned-menu");
    if (menu.hidden) return false;
    const matches = cannedMatches() || [];
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      cannedChoice = (cannedChoice + (e.key === "ArrowDown" ? 1 : -1) + matches.length) % Math.max(matches.length, 1);
      renderCannedMenu();
      e.preventDefault();
      return true;
    }
    if ((e.key === "Enter" || e.key === "Tab") && matches.length) {
      insertCanned(matches[cannedChoice]);
      e.preventDefault();
      return true;
    }
    if (e.key === "Escape") {
      menu.hidden = true;
      return true;
    }
    return false;
  }

  function renderCannedList() {
    $("canned-list").replaceChildren(
      ...state.canned.map((r) => {
        const li = el("li", "canned-row");
        li.append(el("strong", null, "/" + r.short_code), el("span", null, r.content));
        const del = el("button", "btn btn-small btn-ghost", "Delete");
        del.type = "button";
        del.addEventListener("click", async () => {
          await api("DELETE", apiUrl(`canned-replies/${r.id}`)).catch((err) => showError("canned-error", err.message));
          loadCanned();
        });
        li.append(del);
        return li;
      })
    );
  }

  function showError(id, text) {
    const node = $(id);
    node.textContent = text;
    node.hidden = !text;
  }

  // --- the contact panel ---

  function attributeRow(key, value) {
    const row = el("div", "attribute");
    const k = Object.assign(el("input"), { value: key, placeholder: "name", maxLength: 64 });
    k.className = "attribute-key";
    k.setAttribute("aria-label", "Attribute name");
    const v = Object.assign(el("input"), { value: value == null ? "" : String(value), placeholder: "value" });
    v.className = "attribute-value";
    v.setAttribute("aria-label", "Attribute value");
    const del = el("button", "btn btn-small btn-ghost", "✕");
    del.type = "button";
    del.setAttribute("aria-label", "Remove the attribute");
    del.addEventListener("click", () => row.remove());
    row.append(k, v, del);
    return row;
  }

  let panelContactId = null;
  async function renderContactPanel() {
    const c = state.conversations.get(state.openId);
    if (!c) return;
    const labels = $("contact-labels");
    labels.replaceChildren(
      ...(c.labels || []).map((name) => {
        const chip = el("span", "label-chip", name);
        const x = el("button", "chip-x", "✕");
        x.type = "button";
        x.setAttribute("aria-label", `Remove the label ${name}`);
        x.addEventListener("click", () => setLabels((c.labels || []).filter((l) => l !== name)));
        chip.append(x);
        return chip;
      })
    );
    if (panelContactId === c.contact.id) return;
    panelContactId = c.contact.id;
    $("contact-number").textContent = "+" + c.contact.wa_id;
    $("contact-sandbox").hidden = !c.contact.sandbox;
    $("contact-saved").hidden = true;
    showError("contact-error", "");
    // Until the contact is loaded, what an agent types would be overwritten by the answer (and then saved).
    setContactFormEnabled(false);
    const contactId = c.contact.id;
    try {
      const contact = await api("GET", apiUrl(`contacts/${contactId}`));
      if (panelContactId !== contactId) return;
      $("contact-name").value = contact.name;
      $("contact-attributes").replaceChildren(...Object.entries(contact.attributes || {}).map(([k, v]) => attributeRow(k, v)));
      setContactFormEnabled(true);
    } catch (err) {
      showError("contact-error", `Could not load the contact: ${err.message}`);
      panelContactId = null; // the next render tries again
    }
    loadHistory(c.id);
  }

  function setContactFormEnabled(enabled) {
    for (const control of $("contact-form").querySelectorAll("input, button")) control.disabled = !enabled;
  }

  const HISTORY_TEXT = {
    assigned: (h) => (h.data.auto ? "Auto-assigned" : h.actor ? `Assigned by ${h.actor.name}` : "Assigned"),
    resolved: (h) => `Resolved${h.actor ? " by " + h.actor.name : ""}`,
    reopened: (h) => (h.data.reason === "inbound" ? "Reopened: the contact wrote" : h.data.reason === "snooze_ended" ? "Reopened: snooze ended" : `Reopened${h.actor ? " by " + h.actor.name : ""}`),
    snoozed: (h) => `Snoozed${h.actor ? " by " + h.actor.name : ""} until ${shortTime(h.data.until)}`,
    labels_changed: (h) => [...(h.data.added || []).map((l) => "+" + l), ...(h.data.removed || []).map((l) => "−" + l)].join(" ") + " (labels)",
  };

  async function loadHistory(id) {
    try {
      const rows = await api("GET", apiUrl(`conversations/${id}/activity`));
      if (state.openId !== id) return;
      $("contact-history").replaceChildren(
        ...rows.map((h) => {
          const li = el("li", null, (HISTORY_TEXT[h.kind] || (() => h.kind))(h));
          li.append(" ", el("time", "muted", `${shortTime(h.created_at)}`));
          return li;
        })
      );
    } catch (err) {
      console.warn("history unavailable", err);
    }
  }

  async function saveContact(e) {
    e.preventDefault();
    const c = state.conversations.get(state.openId);
    if (!c) return;
    const attributes = {};
    for (const row of $("contact-attributes").querySelectorAll(".attribute")) {
      const key = row.querySelector(".attribute-key").value.trim();
      if (key) attributes[key] = row.querySelector(".attribute-value").value;
    }
    showError("contact-error", "");
    try {
      const contact = await api("PATCH", apiUrl(`contacts/${c.contact.id}`), { name: $("contact-name").value, attributes });
      onContactUpdated(contact);
      $("contact-saved").hidden = false;
    } catch (err) {
      showError("contact-error", `Not saved: ${err.message}`);
    }
  }

  function onContactUpdated(contact) {
    for (const c of state.conversations.values()) {
      if (c.contact && c.contact.id === contact.id) c.contact = Object.assign({}, c.contact, { name: contact.name });
    }
    renderAll();
  }

  async function setLabels(names) {
    await teamAction("labels", { method: "PUT", data: { labels: names } });
    if (!$("contact-panel").hidden) renderContactPanel();
  }

  function toggleContactPanel(show) {
    const panel = $("contact-panel");
    panel.hidden = show === undefined ? !panel.hidden : !show;
    document.body.classList.toggle("panel-open", !panel.hidden);
    panelContactId = null;
    if (!panel.hidden) renderContactPanel();
  }

  function setMode(mode) {
    state.mode = mode;
    $("mode-reply").setAttribute("aria-selected", String(mode === "reply"));
    $("mode-note").setAttribute("aria-selected", String(mode === "note"));
    document.querySelector(".composer").dataset.mode = mode;
    $("reply-send").textContent = mode === "note" ? "Add note" : "Send";
    $("reply-text").placeholder = mode === "note"
      ? "A private note: only your team sees it, the contact never does."
      : "Write a reply… (/ for canned replies)";
    $("reply-text").focus();
  }

  function setupTeam() {
    for (const tab of document.querySelectorAll(".view-tab")) {
      tab.addEventListener("click", () => {
        state.filters.view = tab.dataset.view;
        document.querySelectorAll(".view-tab").forEach((t) => t.setAttribute("aria-selected", String(t === tab)));
        loadConversations().catch(showListError);
      });
    }
    $("status-filter").addEventListener("change", (e) => {
      state.filters.status = e.target.value;
      loadConversations().catch(showListError);
    });
    $("label-filter").addEventListener("change", (e) => {
      state.filters.label = e.target.value;
      loadConversations().catch(showListError);
    });
    let searchTimer = null;
    $("search").addEventListener("input", (e) => {
      state.filters.search = e.target.value;
      clearTimeout(searchTimer);
      searchTimer = setTimeout(() => loadConversations().catch(showListError), 250);
    });
    $("assignee").addEventListener("change", (e) =>
      teamAction("assign", { data: { assignee: e.target.value ? Number(e.target.value) : null } }));
    $("resolve").addEventListener("click", () => teamAction("resolve"));
    $("reopen").addEventListener("click", () => teamAction("reopen"));
    $("snooze").addEventListener("change", (e) => {
      const choice = e.target.value;
      e.target.value = "";
      if (choice) teamAction("snooze", { data: { until: snoozeUntil(choice).toISOString() } });
    });
    $("contact-toggle").addEventListener("click", () => toggleContactPanel());
    $("contact-close").addEventListener("click", () => toggleContactPanel(false));
    $("contact-form").addEventListener("submit", saveContact);
    $("attribute-add").addEventListener("click", () => $("contact-attributes").append(attributeRow("", "")));
    $("label-form").addEventListener("submit", (e) => {
      e.preventDefault();
      const c = state.conversations.get(state.openId);
      const name = $("label-input").value.trim().toLowerCase();
      if (!c || !name) return;
      $("label-input").value = "";
      setLabels([...(c.labels || []), name]);
    });
    $("mode-reply").addEventListener("click", () => setMode("reply"));
    $("mode-note").addEventListener("click", () => setMode("note"));
    $("reply-text").addEventListener("input", renderCannedMenu);
    $("reply-text").addEventListener("blur", () => setTimeout(() => ($("canned-menu").hidden = true), 150));
    $("canned-manage").addEventListener("click", () => {
      renderCannedList();
      $("canned-dialog").showModal();
    });
    $("canned-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      showError("canned-error", "");
      try {
        await api("POST", apiUrl("canned-replies"), { short_code: $("canned-code").value, content: $("canned-content").value });
        $("canned-code").value = "";
        $("canned-content").value = "";
        loadCanned();
      } catch (err) {
        showError("canned-error", err.message);
      }
    });
    $("my-presence").addEventListener("click", () => setMyPresence(state.myPresence === "away" ? "online" : "away", true));
    $("notify").addEventListener("click", enableNotifications);
    $("back").addEventListener("click", () => {
      document.body.classList.remove("thread-open");
      toggleContactPanel(false);
    });
  }

  // --- the socket, with reconnects ------------------------------------------------------------

  const FINAL_CODES = { 4401: "Signed out: reload the page to sign in again.", 4403: "This account may not watch this tenant." };
  let socket = null;
  let attempts = 0;
  let everConnected = false;
  let reconnectTimer = null;
  let pingTimer = null;
  let refusal = null;

  function connect() {
    clearTimeout(reconnectTimer);
    reconnectTimer = null;
    if (socket && socket.readyState <= WebSocket.OPEN) return;
    setConnection("connecting", everConnected ? "Reconnecting…" : "Connecting…");
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}${cfg.socketPath}`);
    socket = ws;
    refusal = null;
    ws.onmessage = (frame) => {
      let event;
      try {
        event = JSON.parse(frame.data);
      } catch (err) {
        return;
      }
      if (event.type === "inbox.refused") {
        refusal = event;
        return;
      }
      if (event.type === "pong") return;
      if (event.type === "inbox.ready") {
        const resync = everConnected;
        everConnected = true;
        attempts = 0;
        setConnection("live", "Live");
        clearInterval(pingTimer);
        pingTimer = setInterval(() => ws.readyState === WebSocket.OPEN && ws.send('{"type":"ping"}'), 25000);
        // Subscribed first, then reloaded: whatever happened while away is in REST, later changes come here.
        if (resync) resyncAll();
        return;
      }
      onEvent(event);
    };
    ws.onclose = (close) => {
      clearInterval(pingTimer);
      if (socket !== ws) return;
      socket = null;
      const code = close.code;
      const reason = (refusal && refusal.reason) || close.reason || "";
      if (FINAL_CODES[code]) {
        setConnection("offline", reason || FINAL_CODES[code]);
        return;
      }
      attempts += 1;
      const base = code === 4429 ? 15000 : 1000;
      const delay = Math.min(30000, base * 2 ** Math.min(attempts - 1, 5)) * (0.5 + Math.random() / 2);
      setConnection("offline", `${reason || "Disconnected"}. Retrying in ${Math.ceil(delay / 1000)} s…`);
      reconnectTimer = setTimeout(connect, delay);
    };
  }

  function reconnectNow() {
    if (!socket && reconnectTimer) connect();
  }

  async function resyncAll() {
    loadMembers();
    loadLabels();
    loadCanned();
    try {
      await loadConversations();
      if (state.openId) {
        renderThreadHead();
        await loadThread(state.openId);
      }
    } catch (err) {
      showListError(err);
    }
    loadSession();
  }

  // --- start --------------------------------------------------------------------------------

  $("reply").addEventListener("submit", sendReply);
  $("reply-attach").addEventListener("click", () => $("reply-file").click());
  $("reply-file").addEventListener("change", sendAttachment);
  $("reply-text").addEventListener("keydown", (e) => {
    if (cannedKeys(e)) return;
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      $("reply").requestSubmit();
    }
  });
  $("takeover").addEventListener("click", () => changeOwner("handoff"));
  $("handback").addEventListener("click", () => changeOwner("resume"));
  $("session-toggle").addEventListener("click", toggleSession);
  $("conversations-more").addEventListener("click", () => loadOlderConversations().catch(showListError));
  window.addEventListener("online", reconnectNow);
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) {
      reconnectNow();
      markReadSoon();
    }
  });

  setupTeam();
  connect();
  loadSession();
  loadMembers();
  loadLabels();
  loadCanned();
  loadConversations()
    .then(() => {
      const wanted = Number(new URLSearchParams(location.search).get("conversation"));
      if (wanted && state.conversations.has(wanted)) openConversation(wanted);
    })
    .catch(showListError);
})();
