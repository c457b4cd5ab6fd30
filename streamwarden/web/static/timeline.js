// Recording timeline bar for each stream tile: GET /streams/{id}/timeline drawn as covered
// spans and gaps (a colour per reason, a tooltip with the reason and its bounds), the last
// 24 h by default (a header menu zooms in). A click plays the footage from that moment: the
// segment that holds it, seeked to the offset, in a <video> below the tiles; a click in a gap
// plays from the next footage after it. Uses app.js's api() and signed() at run time.
"use strict";

const TIMELINE_SPANS = [["24 h", 86400], ["1 h", 3600], ["10 min", 600], ["2 min", 120]];
const TIMELINE_REFRESH_MS = 30000;

const Timeline = {
  seconds: TIMELINE_SPANS[0][1],
  bars: new Map(),  // stream id -> {el, body}
  timer: null,

  // Hook from app.js: a new tile gets its bar.
  attach(card, id) {
    if ($(".timeline", card)) return;
    const el = document.createElement("div");
    el.className = "timeline";
    el.title = "recording timeline: click to play from there";
    el.onclick = (event) => Timeline.clicked(id, el, event);
    $(".picture", card).after(el);
    Timeline.bars.set(id, { el, body: null });
    Timeline.controls();
    Timeline.load(id);
    if (!Timeline.timer) Timeline.timer = setInterval(() => Timeline.refresh(), TIMELINE_REFRESH_MS);
  },

  // The header menu for the bars' length, created once.
  controls() {
    if ($("#timeline-span")) return;
    const label = document.createElement("label");
    label.className = "timeline-control";
    label.textContent = "timeline ";
    const select = document.createElement("select");
    select.id = "timeline-span";
    for (const [name, seconds] of TIMELINE_SPANS) select.add(new Option(name, seconds));
    select.onchange = () => { Timeline.seconds = Number(select.value); Timeline.refresh(); };
    label.append(select);
    $("header").append(label);
  },

  refresh() {
    for (const [id, bar] of Timeline.bars) {
      if (bar.el.isConnected) Timeline.load(id); else Timeline.bars.delete(id);
    }
  },

  async load(id) {
    const end = new Date();
    const start = new Date(end.getTime() - Timeline.seconds * 1000);
    const query = `start=${encodeURIComponent(start.toISOString())}` +
      `&end=${encodeURIComponent(end.toISOString())}`;
    try {
      const body = await api("GET", `/streams/${encodeURIComponent(id)}/timeline?${query}`);
      const bar = Timeline.bars.get(id);
      if (bar) { bar.body = body; Timeline.draw(bar.el, body); }
    } catch (err) { /* the stream went away, or the next refresh retries */ }
  },

  draw(el, body) {
    const t0 = Date.parse(body.start), width = Date.parse(body.end) - t0;
    const block = (item, kind, reason, text) => {
      const div = document.createElement("div");
      const start = Date.parse(item.start), end = Date.parse(item.end);
      div.className = `tl-${kind} tl-${reason}`;
      div.dataset.reason = reason;
      div.dataset.start = item.start;
      div.dataset.end = item.end;
      div.style.left = `${(100 * (start - t0)) / width}%`;
      div.style.width = `${(100 * (end - start)) / width}%`;
      div.title = `${text}: ${fmtTime(item.start)} – ${fmtTime(item.end)} UTC ` +
        `(${fmtSeconds((end - start) / 1000)})`;
      return div;
    };
    el.replaceChildren(
      ...body.spans.map((span) => block(span, "span", "covered", "recorded")),
      ...body.gaps.map((gap) => block(gap, "gap", gap.reason, gap.reason.replaceAll("_", " "))));
  },

  clicked(id, el, event) {
    const bar = Timeline.bars.get(id);
    if (!bar || !bar.body) return;
    const box = el.getBoundingClientRect();
    const t0 = Date.parse(bar.body.start), t1 = Date.parse(bar.body.end);
    const at = t0 + ((event.clientX - box.left) / box.width) * (t1 - t0);
    const found = footageAt(bar.body.spans, at);
    if (!found) { showError(`no recording of ${id} at or after that moment`); return; }
    Timeline.play(id, found.segment, found.offset);
  },

  async play(id, segment, offset) {
    const player = Timeline.player();
    $("h2 span", player).textContent =
      `${id} from ${fmtTime(new Date(Date.parse(segment.start) + offset * 1000).toISOString())} UTC`;
    const video = $("video", player);
    player.hidden = false;
    video.onloadedmetadata = () => {
      video.currentTime = Number.isFinite(video.duration)
        ? Math.min(offset, Math.max(0, video.duration - 0.1)) : offset;
      video.play().catch((err) => showError(`cannot play: ${err.message}`));
    };
    try {
      video.src = await signed(segment.url);
      showError("");
    } catch (err) { showError(err.message); }
  },

  // The player under the tiles, created on first use.
  player() {
    let section = $("#timeline-player");
    if (section) return section;
    section = document.createElement("section");
    section.id = "timeline-player";
    section.innerHTML = "<h2>Playing <span></span> <button>close</button></h2>" +
      "<video controls muted playsinline></video>";
    $("button", section).onclick = () => {
      section.hidden = true;
      $("video", section).pause();
    };
    $("#grid").after(section);
    return section;
  },
};

// The segment holding moment `at` (ms), or the first footage after it, and the offset (s).
function footageAt(spans, at) {
  for (const span of spans) {
    if (Date.parse(span.end) <= at) continue;
    for (const segment of span.segments) {
      const start = Date.parse(segment.start);
      const end = segment.end ? Date.parse(segment.end) : Infinity;
      if (end <= at) continue;
      const from = Math.max(at, start, Date.parse(span.start));
      return { segment, offset: (from - start) / 1000 };
    }
  }
  return null;
}

function fmtTime(iso) { return iso.replace("T", " ").slice(0, 19); }

function fmtSeconds(s) {
  if (s < 120) return `${s.toFixed(1)} s`;
  if (s < 7200) return `${(s / 60).toFixed(1)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}
