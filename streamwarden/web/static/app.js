// streamwarden dashboard: plain JS over the REST API and the /ws event stream, no build step.
"use strict";

const state = { token: localStorage.getItem("streamwarden-token") || "", streams: new Map(),
  urlTokens: new Map(), recStream: null, players: new Map() };
const $ = (sel, root = document) => root.querySelector(sel);

function showError(message) {
  const box = $("#error");
  box.textContent = message;
  box.hidden = !message;
}

async function api(method, path, body) {
  const headers = {};
  if (state.token) headers.Authorization = `Bearer ${state.token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { method, headers,
    body: body === undefined ? undefined : JSON.stringify(body) });
  if (response.status === 401) {
    Auth.showLogin(await (await fetch("/auth/status")).json());
    throw new Error("please sign in");
  }
  const payload = response.status === 204 ? null : await response.json();
  if (!response.ok) throw new Error(`${payload.error}: ${payload.detail}`);
  return payload;
}

// <img>, <video> and WebSocket URLs cannot carry a header: ask for a signed URL token.
async function signed(path) {
  if (!state.token) return path;
  const cached = state.urlTokens.get(path);
  if (cached && cached.until > Date.now()) return cached.url;
  const issued = await api("POST", "/auth/url-token", { path, ttl: 300 });
  state.urlTokens.set(path, { url: issued.url, until: Date.now() + 240000 });
  return issued.url;
}

function withQuery(url, query) {
  return url + (url.includes("?") ? "&" : "?") + query;
}

function renderCard(stream) {
  let card = document.getElementById(`card-${stream.id}`);
  if (!card) {
    card = $("#card").content.firstElementChild.cloneNode(true);
    card.id = `card-${stream.id}`;
    card.dataset.id = stream.id;
    $(".name", card).textContent = stream.id;
    $(".toggle-rec", card).onclick = () => toggleRecording(stream.id);
    $(".toggle-det", card).onclick = () => toggleDetection(stream.id);
    $(".show-rec", card).onclick = () => showRecordings(stream.id);
    $(".remove", card).onclick = () => removeStream(stream.id);
    $("#grid").append(card);
    if (typeof Timeline !== "undefined") Timeline.attach(card, stream.id);  // timeline.js
    if (typeof Zones !== "undefined") Zones.attach(card, stream.id);  // zones.js
  }
  if (typeof Cluster !== "undefined") Cluster.show(card, stream);  // cluster.js
  const health = stream.health || stream;
  const badge = $(".state", card);
  badge.textContent = health.state;
  badge.className = `badge state state-${health.state}`;
  const inference = health.inference
    ? ` · detecting ${health.inference.detection_fps} fps (${health.inference_state})` : "";
  $(".stats", card).textContent = `${health.fps.toFixed(1)} fps · ` +
    `${Math.round(health.bitrate_kbps)} kbit/s · ${health.retry_count} retries · ` +
    `${health.live_viewers || 0} watching live${inference}`;
  if ("enable_inference" in stream) card.dataset.detecting = stream.enable_inference ? "1" : "0";
  $(".toggle-det", card).textContent =
    card.dataset.detecting === "1" ? "Stop detecting" : "Detect objects";
  $(".last-error", card).textContent = health.is_healthy ? "" : (health.last_error || "");
  const recording = health.recording;
  $(".rec-badge", card).hidden = !recording;
  $(".toggle-rec", card).textContent = recording ? "Stop recording" : "Record";
  card.dataset.recording = recording ? "1" : "0";
}

// Live video where the browser can play it (H.264, and H.265 where MSE says it can); MJPEG
// from the server's decoder otherwise; snapshots whenever either fails (retried later).
function startLive(stream) {
  const card = document.getElementById(`card-${stream.id}`);
  const codec = stream.statistics && stream.statistics.video_codec;
  if (!card || state.players.has(stream.id)) return;
  if (!LivePlayer.supported()) {
    if (codec) startMjpeg(card, stream.id);
    return;
  }
  const player = new LivePlayer($(".live", card), `/streams/${stream.id}/live.mp4`,
    (playing, reason) => {
      card.classList.toggle("is-live", playing);
      if (reason === "unsupported_codec") startMjpeg(card, stream.id);
    });
  state.players.set(stream.id, player);
  player.start(signed).catch(() => player.fail("no url token"));
}

async function startMjpeg(card, id) {
  if (card.classList.contains("is-mjpeg")) return;
  card.classList.add("is-mjpeg");
  const img = $(".snap", card);
  img.onerror = () => {  // back to snapshots; try MJPEG again in 10 s
    card.classList.remove("is-mjpeg");
    img.onerror = null;
    setTimeout(() => { if (card.isConnected) startMjpeg(card, id); }, 10000);
  };
  try {
    img.src = withQuery(await signed(`/streams/${id}/mjpeg`), "width=640&fps=5");
  } catch (err) { img.onerror(); }
}

function stopLive(id) {
  const player = state.players.get(id);
  if (player) player.stop();
  state.players.delete(id);
  const card = document.getElementById(`card-${id}`);
  if (card && card.classList.contains("is-mjpeg")) {
    card.classList.remove("is-mjpeg");
    $(".snap", card).onerror = null;
    $(".snap", card).removeAttribute("src");  // closes the MJPEG connection
  }
}

async function refreshSnapshots() {
  for (const card of document.querySelectorAll(".card:not(.is-live):not(.is-mjpeg)")) {
    const path = `/streams/${card.dataset.id}/snapshot.jpg`;
    try {
      const url = withQuery(await signed(path), `width=640&t=${Date.now()}`);
      const probe = new Image();
      probe.onload = () => { $(".snap", card).src = probe.src; };
      probe.src = url;  // a 503 (no picture yet) just keeps the previous frame
    } catch (err) { /* the next round retries */ }
  }
}

async function loadStreams() {
  const streams = await api("GET", "/streams");
  const ids = new Set(streams.map((s) => s.id));
  for (const card of document.querySelectorAll(".card")) {
    if (!ids.has(card.dataset.id)) { stopLive(card.dataset.id); card.remove(); }
  }
  streams.forEach(renderCard);
  streams.forEach(startLive);
}

async function toggleRecording(id) {
  const card = document.getElementById(`card-${id}`);
  try {
    const result = await api(card.dataset.recording === "1" ? "DELETE" : "POST",
      `/streams/${id}/record`);
    renderCard({ ...(await api("GET", `/streams/${id}`)).health, recording: result.recording,
      id });
    showError("");
  } catch (err) { showError(err.message); }
}

async function toggleDetection(id) {
  const card = document.getElementById(`card-${id}`);
  const on = card.dataset.detecting !== "1";
  try {
    renderCard(await api("PATCH", `/streams/${id}`, { enable_inference: on }));
    showError("");
  } catch (err) { showError(err.message); }
}

// The newest detection events with their pictures; refreshed on `detection` messages (at
// most every 2 s) and every 10 s.
let detectionsDue = 0;
async function loadDetections() {
  detectionsDue = Date.now() + 2000;
  const events = await api("GET", "/events?limit=12");
  const list = $("#det-list");
  if (!events.length) return;
  const figures = [];
  for (const event of events) {
    const figure = document.createElement("figure");
    figure.className = "detection";
    figure.dataset.eventId = event.id;  // events.js opens the events view at it
    if (event.snapshot_url) {
      const img = document.createElement("img");
      img.alt = event.label;
      img.src = await signed(event.snapshot_url);
      figure.append(img);
    }
    const caption = document.createElement("figcaption");
    const when = new Date(event.end).toLocaleTimeString();
    caption.textContent = `${event.stream_id} · ${event.label} ` +
      `${Math.round(event.confidence * 100)}% · ${event.detections}× · ${when}`;
    figure.append(caption);
    figures.push(figure);
  }
  list.replaceChildren(...figures);
}

function detectionSeen() {
  if (Date.now() >= detectionsDue) loadDetections().catch((err) => showError(err.message));
}

async function removeStream(id) {
  try { await api("DELETE", `/streams/${id}`); await loadStreams(); showError(""); }
  catch (err) { showError(err.message); }
}

function fmtBytes(n) { return n == null ? "" : `${(n / 1e6).toFixed(1)} MB`; }

async function showRecordings(id) {
  state.recStream = id;
  $("#recordings").hidden = false;
  $("#rec-stream").textContent = id;
  const rows = await api("GET", `/recordings?stream_id=${encodeURIComponent(id)}`);
  const body = $("#rec-rows");
  body.replaceChildren();
  for (const row of rows.reverse()) {
    const tr = document.createElement("tr");
    tr.className = "rec-row";
    for (const text of [row.start.replace("T", " ").slice(0, 19), row.duration == null ? "…" :
      `${row.duration.toFixed(1)} s`, fmtBytes(row.bytes), row.reason, row.status]) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.append(td);
    }
    const play = document.createElement("button");
    play.textContent = "Play";
    play.className = "play";
    play.onclick = async () => {
      const player = $("#player");
      player.src = await signed(row.url);
      player.play().catch((err) => showError(`cannot play: ${err.message}`));
    };
    const td = document.createElement("td");
    td.append(play);
    tr.append(td);
    body.append(tr);
  }
}

async function downloadClip(event) {
  event.preventDefault();
  const form = event.target;
  const start = `${form.start.value}Z`, end = `${form.end.value}Z`;
  const path = `/streams/${state.recStream}/clip`;
  try {
    window.location = withQuery(await signed(path), `start=${encodeURIComponent(start)}` +
      `&end=${encodeURIComponent(end)}`);
  } catch (err) { showError(err.message); }
}

async function addStream(event) {
  event.preventDefault();
  const form = event.target;
  try {
    await api("POST", "/streams", { id: form.id.value, uri: form.uri.value,
      enable_recording: form.record.checked });
    form.reset();
    showError("");
    await loadStreams();
  } catch (err) { showError(err.message); }
}

async function connectEvents() {
  const base = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}`;
  let socket;
  try { socket = new WebSocket(base + await signed("/ws")); }
  catch (err) { setTimeout(connectEvents, 3000); return; }
  socket.onopen = () => { $("#conn").textContent = "live"; };
  socket.onclose = () => { $("#conn").textContent = "reconnecting…"; setTimeout(connectEvents, 3000); };
  socket.onmessage = (message) => {
    const event = JSON.parse(message.data);
    if (event.type === "snapshot" || event.type === "stats") event.streams.forEach(renderCard);
    else if (event.type === "detection") detectionSeen();
    else if (event.type === "event" && typeof EventsView !== "undefined") EventsView.seen();
    else if (["stream_added", "stream_removed", "state", "recording"].includes(event.type)) {
      loadStreams().catch((err) => showError(err.message));
    }
  };
}

async function start() {
  $("#add-form").onsubmit = addStream;
  $("#clip-form").onsubmit = downloadClip;
  $("#rec-close").onclick = () => { $("#recordings").hidden = true; };
  Auth.bind((token) => {
    state.token = token;
    localStorage.setItem("streamwarden-token", state.token);
    $("#login").hidden = true;
    start();
  });
  try {
    const auth = await (await fetch("/auth/status")).json();
    if (auth.token_required && !state.token) {
      Auth.showLogin(auth);
      return;
    }
    await Auth.apply(api, () => { localStorage.removeItem("streamwarden-token"); location.reload(); });
    await loadStreams();
    showError("");
    connectEvents();
    if (typeof EventsView !== "undefined") EventsView.init();  // events.js
    refreshSnapshots();
    setInterval(refreshSnapshots, 2000);
    loadDetections().catch((err) => showError(err.message));
    setInterval(detectionSeen, 10000);
  } catch (err) { showError(err.message); }
}

// Leaving the page (or entering the back/forward cache) ends the live views at once, so the
// server stops muxing; coming back from that cache starts them again.
window.addEventListener("pagehide", () => {
  [...state.players.keys()].forEach(stopLive);
  document.querySelectorAll(".card.is-mjpeg").forEach((card) => stopLive(card.dataset.id));
});
window.addEventListener("pageshow", (event) => {
  if (event.persisted) loadStreams().catch((err) => showError(err.message));
});

start();
