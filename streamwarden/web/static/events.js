// Events view: detection events (one per tracked object) newest first, with their pictures,
// filtered by stream, label, zone and time (GET /events), a page at a time. Clicking one plays
// its footage from the pre-roll: the clip of [footage_start, footage_end] the events API gives
// (GET /streams/{id}/clip, remuxed from the recorded segments), with the stream's zones and
// the object's path drawn over its picture. New and updated events (WebSocket `event`
// messages) refresh the first page. "Latest detections" pictures open the view at their event.
// Uses app.js's api(), signed() and showError() at run time.
"use strict";

const EVENTS_PAGE = 20;

const EventsView = {
  page: 0,
  shown: [],
  refreshDue: 0,

  // Hook from app.js's start(): the header button and the "Latest detections" links.
  init() {
    if ($("#events-open")) return;
    const button = document.createElement("button");
    button.id = "events-open";
    button.textContent = "Events";
    button.onclick = () => EventsView.open();
    $("header h1").after(button);
    $("#detections h2").append(" ", Object.assign(document.createElement("a"),
      { href: "#events", textContent: "all events", onclick: (e) => {
        e.preventDefault(); EventsView.open(); } }));
    $("#det-list").addEventListener("click", (event) => {
      const figure = event.target.closest("[data-event-id]");
      if (figure) EventsView.open(Number(figure.dataset.eventId));
    });
  },

  async open(eventId) {
    const panel = EventsView.panel();
    panel.hidden = false;
    await EventsView.streams();
    await EventsView.load(0);
    if (eventId !== undefined) {
      const event = EventsView.shown.find((e) => e.id === eventId)
        || (await api("GET", "/events?limit=10000")).find((e) => e.id === eventId);
      if (event) EventsView.play(event);
    }
    panel.scrollIntoView();
  },

  panel() {
    let panel = $("#events-view");
    if (panel) return panel;
    panel = document.createElement("section");
    panel.id = "events-view";
    panel.hidden = true;
    panel.innerHTML = `<h2>Events <button class="close">close</button></h2>
      <form class="event-filters">
        <select name="stream"><option value="">all streams</option></select>
        <input name="label" placeholder="label" size="8">
        <input name="zone" placeholder="zone" size="8" pattern="[A-Za-z0-9_\\-]{1,64}">
        from <input name="since" type="datetime-local" step="1">
        to <input name="until" type="datetime-local" step="1">
        <button type="submit">Filter</button></form>
      <div class="event-detail" hidden><h3></h3>
        <div class="event-media"><video controls muted playsinline></video>
          <div class="event-picture"><img alt=""><svg viewBox="0 0 1 1"
            preserveAspectRatio="none"></svg></div></div>
        <div class="event-facts"></div></div>
      <div class="event-list"></div>
      <div class="event-pages"><button class="newer">newer</button>
        <span class="page"></span> <button class="older">older</button></div>`;
    $(".close", panel).onclick = () => { panel.hidden = true; $("video", panel).pause(); };
    $(".event-filters", panel).onsubmit = (e) => { e.preventDefault(); EventsView.load(0); };
    $(".newer", panel).onclick = () => EventsView.load(EventsView.page - 1);
    $(".older", panel).onclick = () => EventsView.load(EventsView.page + 1);
    $("#detections").before(panel);
    return panel;
  },

  async streams() {
    const select = $("#events-view select[name=stream]");
    const chosen = select.value;
    const streams = await api("GET", "/streams");
    select.replaceChildren(new Option("all streams", ""),
      ...streams.map((s) => new Option(s.id, s.id)));
    select.value = chosen;
  },

  // The filters as a query; datetime-local fields are the browser's local time.
  query(limit) {
    const form = $("#events-view .event-filters");
    const params = new URLSearchParams({ limit });
    for (const name of ["stream", "label", "zone"]) {
      const value = form[name].value.trim();
      if (value) params.set(name === "stream" ? "stream_id" : name, value);
    }
    for (const name of ["since", "until"]) {
      if (form[name].value) params.set(name, new Date(form[name].value).toISOString());
    }
    return params.toString();
  },

  // Page n (0: the newest): the API pages by limit only, so ask for n+1 pages and keep the
  // last; one page more than shown tells whether an older page exists.
  async load(page) {
    page = Math.max(0, page);
    const limit = Math.min(10000, (page + 1) * EVENTS_PAGE + 1);
    try {
      const events = await api("GET", `/events?${EventsView.query(limit)}`);
      EventsView.page = page;
      EventsView.shown = events.slice(page * EVENTS_PAGE, (page + 1) * EVENTS_PAGE);
      await EventsView.render(events.length > (page + 1) * EVENTS_PAGE);
      showError("");
    } catch (err) { showError(err.message); }
  },

  async render(older) {
    const panel = $("#events-view");
    const figures = [];
    for (const event of EventsView.shown) {
      const figure = document.createElement("figure");
      figure.className = `event${event.active ? " active" : ""}`;
      figure.dataset.eventId = event.id;
      const img = document.createElement("img");
      img.alt = event.label;
      if (event.snapshot_url) img.src = await signed(event.snapshot_url);
      const caption = document.createElement("figcaption");
      caption.textContent = `${event.stream_id} · ${event.label} · ` +
        `${new Date(event.start).toLocaleString()} · ${EventsView.length(event)}` +
        (event.zones.length ? ` · ${event.zones.map((z) => z.zone).join(", ")}` : "") +
        (event.active ? " · now" : "");
      figure.append(img, caption);
      figure.onclick = () => EventsView.play(event);
      figures.push(figure);
    }
    const list = $(".event-list", panel);
    list.replaceChildren(...figures);
    if (!figures.length) list.innerHTML = '<p class="empty">No events match.</p>';
    $(".newer", panel).disabled = EventsView.page === 0;
    $(".older", panel).disabled = !older;
    $(".page", panel).textContent = `page ${EventsView.page + 1}`;
  },

  length(event) {
    const s = (Date.parse(event.end) - Date.parse(event.start)) / 1000;
    return s < 60 ? `${s.toFixed(1)} s` : `${(s / 60).toFixed(1)} min`;
  },

  // Its footage from the pre-roll, its picture with the stream's zones and its path.
  async play(event) {
    const detail = $("#events-view .event-detail");
    detail.hidden = false;
    detail.dataset.eventId = event.id;
    $("h3", detail).textContent = `${event.stream_id} · ${event.label} ` +
      `${Math.round(event.confidence * 100)}% · ${new Date(event.start).toLocaleString()}`;
    const entered = event.zones.map((z) =>
      `${z.zone} at ${new Date(z.entered).toLocaleTimeString()}`).join(", ");
    $(".event-facts", detail).textContent = `${EventsView.length(event)}, ` +
      `${event.detections} detections${event.stationary ? ", stationary" : ""}` +
      `${event.active ? ", still tracked" : ""}. Zones: ${entered || "none"}.`;
    const img = $(".event-picture img", detail);
    img.src = event.snapshot_url ? await signed(event.snapshot_url) : "";
    EventsView.overlay(event).catch(() => {});
    const video = $("video", detail);
    const end = Math.min(Date.parse(event.footage_end), Date.now());
    const path = `/streams/${encodeURIComponent(event.stream_id)}/clip`;
    try {
      video.src = withQuery(await signed(path),
        `start=${encodeURIComponent(event.footage_start)}` +
        `&end=${encodeURIComponent(new Date(end).toISOString())}`);
      video.onerror = () => showError(`no footage of event ${event.id} (not recorded, or ` +
        "deleted by retention)");
      video.play().catch(() => {});
      showError("");
    } catch (err) { showError(err.message); }
  },

  async overlay(event) {
    const svg = $("#events-view .event-picture svg");
    svg.replaceChildren();
    const zones = await api("GET", `/streams/${encodeURIComponent(event.stream_id)}/zones`);
    const shape = (tag, attrs) => {
      const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
      for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, value);
      svg.append(el);
    };
    const entered = new Set(event.zones.map((z) => z.zone));
    for (const zone of zones.zones) {
      shape("polygon", { points: zone.points.map((p) => p.join(",")).join(" "),
        class: entered.has(zone.name) ? "zone entered" : "zone" });
    }
    if (event.path.length) {
      shape("polyline", { points: event.path.map((p) => `${p.x},${p.y}`).join(" "),
        class: "path" });
    }
  },

  // A WebSocket `event` message: refresh the first page while it is shown (at most every 2 s).
  seen() {
    const panel = $("#events-view");
    if (!panel || panel.hidden || EventsView.page !== 0 || Date.now() < EventsView.refreshDue) {
      return;
    }
    EventsView.refreshDue = Date.now() + 2000;
    EventsView.load(0);
  },
};
