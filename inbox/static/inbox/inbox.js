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
    agentStates: {}, // conversation id -> {active_agent, owner}
    openId: null,
    messages: new Map(), // id -> message of the open thread
    session: null,
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
        li.append(el("span", "name", contactName(c.contact)), el("span", "time", shortTime(c.last_message_at)));
        li.append(el("span", "preview", c.preview || (c.contact && c.contact.name ? "+" + c.contact.wa_id : "")));
        const badges = el("span", "badges");
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

  async function loadConversations() {
    const page = await api("GET", apiUrl(`conversations?page_size=${PAGE_SIZE}`));
    const fresh = new Map();
    for (const c of page.results) fresh.set(c.id, withPreview(state.conversations.get(c.id), c));
    // Conversations beyond the first page that were loaded earlier stay.
    for (const [id, c] of state.conversations) if (!fresh.has(id)) fresh.set(id, c);
    state.conversations = fresh;
    if (!state.next || page.results.length < PAGE_SIZE) state.next = page.next;
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

  function renderMessages() {
    const list = $("messages");
    const nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
    const sorted = Array.from(state.messages.values()).sort((a, b) => a.id - b.id);
    const nodes = [];
    let day = null;
    for (const m of sorted) {
      const when = messageTime(m);
      const thisDay = when ? new Date(when).toDateString() : day;
      if (thisDay && thisDay !== day) {
        nodes.push(el("li", "day", dayFmt.format(new Date(when))));
        day = thisDay;
      }
      nodes.push(renderMessage(m));
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

  function renderThreadHead() {
    const c = state.conversations.get(state.openId);
    if (!c) return;
    $("thread-title").textContent = contactName(c.contact);
    $("thread-sub").textContent = c.contact && c.contact.name && c.contact.wa_id ? "+" + c.contact.wa_id : "";
    const agent = agentLabel(c.id);
    const chip = $("thread-agent");
    chip.className = "agent-chip" + (agent.human ? " human" : "");
    chip.textContent = agent.text ? `Answering: ${agent.text}` : "";
    const human = (state.agentStates[c.id] || {}).owner === "human";
    $("takeover").disabled = human;
    $("handback").disabled = !human;
  }

  async function loadThread(id) {
    const page = await api("GET", apiUrl(`conversations/${id}/messages?page_size=100`));
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
      $("messages").dataset.scrolled = "0";
      $("messages").replaceChildren();
    }
    $("thread-empty").hidden = true;
    $("thread-view").hidden = false;
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

  connect();
  loadSession();
  loadConversations()
    .then(() => {
      const wanted = Number(new URLSearchParams(location.search).get("conversation"));
      if (wanted && state.conversations.has(wanted)) openConversation(wanted);
    })
    .catch(showListError);
})();
