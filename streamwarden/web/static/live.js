// Live video for one dashboard tile: fragmented MP4 from WS /streams/{id}/live.mp4 into Media
// Source Extensions. No plug-in, no re-encode: the server wraps the camera's H.264 or H.265
// frames. The init message's codec string is asked of MSE first: a browser that cannot
// play it (H.265 on most) ends with "unsupported_codec" and the tile shows MJPEG instead.
// Kept near the live edge (jump ahead when more than LIVE_MAX_LAG_S behind, trim old data);
// on any failure the tile goes back to snapshots and live is retried later.
"use strict";

const LIVE_MAX_LAG_S = 1.5;   // behind the newest frame by more than this: jump to the edge
const LIVE_EDGE_S = 0.2;      // where to land when jumping
const LIVE_KEEP_S = 10;       // buffered history kept behind the playhead
const LIVE_MAX_PENDING = 100; // fragments waiting for the SourceBuffer before we give up
const LIVE_RETRY_MS = 10000;

class LivePlayer {
  // onState(playing: boolean, reason: string) tells the tile which picture to show.
  constructor(video, path, onState) {
    this.video = video;
    this.path = path;
    this.onState = onState;
    this.stopped = false;
    this.retry = null;
  }

  static supported() {
    return "MediaSource" in window && typeof WebSocket !== "undefined";
  }

  async start(signedUrl) {
    this.stopped = false;
    this.signedUrl = signedUrl;
    this.pending = [];
    this.sourceBuffer = null;
    this.mime = null;
    const base = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}`;
    const socket = new WebSocket(base + await signedUrl(this.path));
    socket.binaryType = "arraybuffer";
    this.socket = socket;
    socket.onmessage = (message) => {
      if (typeof message.data !== "string") {
        if (this.mime) this.push(message.data);  // nothing before a playable init
        return;
      }
      const event = JSON.parse(message.data);
      if (event.type === "init") this.setup(event);
      else if (event.type === "error") this.fail(event.error);
    };
    socket.onclose = () => { if (socket === this.socket) this.fail("closed"); };
  }

  setup(event) {
    if (!MediaSource.isTypeSupported(event.mime)) { this.fail("unsupported_codec"); return; }
    if (this.mime === event.mime && this.sourceBuffer) return;  // same codec: append the init
    this.mime = event.mime;
    this.sourceBuffer = null;
    this.pending = [];
    const source = new MediaSource();
    if (this.video.src) URL.revokeObjectURL(this.video.src);
    this.video.src = URL.createObjectURL(source);
    source.addEventListener("sourceopen", () => {
      try {
        this.sourceBuffer = source.addSourceBuffer(event.mime);
        this.sourceBuffer.addEventListener("updateend", () => this.pump());
        this.sourceBuffer.addEventListener("error", () => this.fail("append failed"));
        this.pump();
      } catch (err) { this.fail(err.message); }
    }, { once: true });
    this.video.onplaying = () => this.onState(true, "playing");
    this.video.play().catch(() => { /* plays once data arrives (muted autoplay) */ });
  }

  push(data) {
    this.pending.push(data);
    if (this.pending.length > LIVE_MAX_PENDING) { this.fail("cannot keep up"); return; }
    this.pump();
  }

  pump() {
    const buffer = this.sourceBuffer;
    if (!buffer || buffer.updating || this.stopped) return;
    const video = this.video;
    const ranges = video.buffered;
    if (ranges.length) {
      const start = ranges.start(0), end = ranges.end(ranges.length - 1);
      if (video.currentTime < start || end - video.currentTime > LIVE_MAX_LAG_S) {
        video.currentTime = Math.max(start, end - LIVE_EDGE_S);
      }
      if (video.currentTime - start > 2 * LIVE_KEEP_S) {
        buffer.remove(start, video.currentTime - LIVE_KEEP_S);
        return;  // updateend pumps again
      }
      if (video.paused) video.play().catch(() => {});
    }
    if (this.pending.length) {
      try { buffer.appendBuffer(this.pending.shift()); }
      catch (err) { this.fail(err.name); }
    }
  }

  fail(reason) {
    if (this.stopped) return;
    this.stop();
    this.onState(false, reason);
    if (reason !== "unsupported_codec" && reason !== "not_found") {
      this.retry = setTimeout(() => this.start(this.signedUrl).catch(() => {
        this.stopped = false;
        this.fail("no url token");
      }), LIVE_RETRY_MS);
    }
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.retry);
    const socket = this.socket;
    this.socket = null;
    if (socket) socket.close();
    this.sourceBuffer = null;
    this.video.onplaying = null;
    this.video.removeAttribute("src");
    this.video.load();
  }
}
