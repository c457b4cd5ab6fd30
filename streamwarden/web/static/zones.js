// Zone editor: a stream's zones (named polygons events report) and masks (areas detection
// ignores) drawn on its snapshot, saved with PUT /streams/{id}/zones. Points are fractions of
// the frame, as the API takes them, so the drawing fits the picture at any size. Click on the
// picture to add a point to the selected polygon, drag a point to move it; the API checks the
// polygons (3+ points, inside the frame, no crossing edges) and its 422 detail is shown as is.
// Only for roles with `configure` (zones.css hides the button otherwise). Uses app.js's api()
// and signed() at run time; app.js calls Zones.attach(card, id) for each new tile.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";

const Zones = {
  stream: null,
  polygons: [],  // {kind: "zone" | "mask", name, points: [[x, y], ...]}
  selected: -1,
  dragging: null,  // {polygon, point}

  attach(card, id) {
    if ($(".edit-zones", card)) return;
    const button = document.createElement("button");
    button.className = "edit-zones";
    button.textContent = "Zones";
    button.onclick = () => Zones.open(id);
    $(".remove", card).before(button);
  },

  async open(id) {
    const panel = Zones.panel();
    Zones.stream = id;
    Zones.message("");
    $("h2 span", panel).textContent = id;
    panel.hidden = false;
    try {
      const body = await api("GET", `/streams/${encodeURIComponent(id)}/zones`);
      Zones.polygons = [
        ...body.zones.map((z) => ({ kind: "zone", name: z.name, points: z.points })),
        ...body.masks.map((points) => ({ kind: "mask", name: "", points }))];
      Zones.selected = Zones.polygons.length ? 0 : -1;
      Zones.render();
      const img = $(".zone-picture img", panel);
      img.src = withQuery(await signed(`/streams/${encodeURIComponent(id)}/snapshot.jpg`),
        `width=960&t=${Date.now()}`);
    } catch (err) { Zones.message(err.message); }
  },

  // The editor, created on first use, under the tiles.
  panel() {
    let panel = $("#zone-editor");
    if (panel) return panel;
    panel = document.createElement("section");
    panel.id = "zone-editor";
    panel.hidden = true;
    panel.innerHTML = `<h2>Zones and masks of <span></span> <button class="close">close</button></h2>
      <div class="zone-picture"><img alt="snapshot"><svg viewBox="0 0 1 1"
        preserveAspectRatio="none"></svg></div>
      <div class="zone-tools">
        <button class="add-zone">New zone</button> <button class="add-mask">New mask</button>
        <button class="undo-point">Remove last point</button>
        <button class="delete-polygon">Delete</button>
        <button class="save-zones">Save</button>
        <ul class="zone-list"></ul>
        <div class="zone-message"></div>
      </div>`;
    $(".close", panel).onclick = () => { panel.hidden = true; };
    $(".add-zone", panel).onclick = () => Zones.add("zone");
    $(".add-mask", panel).onclick = () => Zones.add("mask");
    $(".undo-point", panel).onclick = () => Zones.edit((p) => p.points.pop());
    $(".delete-polygon", panel).onclick = () => Zones.edit((p, i) => {
      Zones.polygons.splice(i, 1);
      Zones.selected = Math.min(i, Zones.polygons.length - 1);
    });
    $(".save-zones", panel).onclick = () => Zones.save();
    const svg = $("svg", panel);
    svg.addEventListener("mousedown", (event) => Zones.pressed(event));
    svg.addEventListener("mousemove", (event) => Zones.moved(event));
    window.addEventListener("mouseup", () => { Zones.dragging = null; });
    $("#grid").after(panel);
    return panel;
  },

  add(kind) {
    const taken = new Set(Zones.polygons.map((p) => p.name));
    let n = 1;
    while (taken.has(`zone${n}`)) n += 1;
    Zones.polygons.push({ kind, name: kind === "zone" ? `zone${n}` : "", points: [] });
    Zones.selected = Zones.polygons.length - 1;
    Zones.render();
  },

  edit(change) {
    const polygon = Zones.polygons[Zones.selected];
    if (polygon) change(polygon, Zones.selected);
    Zones.render();
  },

  // Where the mouse is, in fractions of the picture (0-1, four decimals).
  at(event) {
    const box = $("#zone-editor svg").getBoundingClientRect();
    const clamp = (v) => Math.round(Math.min(1, Math.max(0, v)) * 10000) / 10000;
    return [clamp((event.clientX - box.left) / box.width),
      clamp((event.clientY - box.top) / box.height)];
  },

  pressed(event) {
    event.preventDefault();
    const handle = event.target.closest("circle");
    if (handle) {
      Zones.selected = Number(handle.dataset.polygon);
      Zones.dragging = { polygon: Zones.selected, point: Number(handle.dataset.point) };
      Zones.render();
      return;
    }
    if (Zones.selected < 0) Zones.add("zone");
    Zones.polygons[Zones.selected].points.push(Zones.at(event));
    Zones.render();
  },

  moved(event) {
    if (!Zones.dragging) return;
    Zones.polygons[Zones.dragging.polygon].points[Zones.dragging.point] = Zones.at(event);
    Zones.render();
  },

  render() {
    const svg = $("#zone-editor svg");
    svg.replaceChildren();
    Zones.polygons.forEach((polygon, i) => {
      const shape = document.createElementNS(SVG_NS, "polygon");
      shape.setAttribute("points", polygon.points.map((p) => p.join(",")).join(" "));
      shape.setAttribute("class", `${polygon.kind}${i === Zones.selected ? " selected" : ""}`);
      svg.append(shape);
      polygon.points.forEach((point, j) => {
        const handle = document.createElementNS(SVG_NS, "circle");
        handle.setAttribute("cx", point[0]);
        handle.setAttribute("cy", point[1]);
        handle.setAttribute("r", i === Zones.selected ? 0.012 : 0.007);
        handle.dataset.polygon = i;
        handle.dataset.point = j;
        svg.append(handle);
      });
    });
    Zones.list();
  },

  // One line per polygon: select it, rename a zone.
  list() {
    const items = Zones.polygons.map((polygon, i) => {
      const li = document.createElement("li");
      li.className = i === Zones.selected ? "selected" : "";
      li.onclick = () => { Zones.selected = i; Zones.render(); };
      if (polygon.kind === "zone") {
        const name = document.createElement("input");
        name.value = polygon.name;
        name.className = "zone-name";
        name.oninput = () => { polygon.name = name.value; };
        name.onclick = (event) => event.stopPropagation();  // typing, not re-selecting
        li.append("zone ", name);
      } else li.append("mask");
      li.append(` · ${polygon.points.length} points`);
      return li;
    });
    $("#zone-editor .zone-list").replaceChildren(...items);
  },

  async save() {
    const body = {
      zones: Zones.polygons.filter((p) => p.kind === "zone")
        .map((p) => ({ name: p.name, points: p.points })),
      masks: Zones.polygons.filter((p) => p.kind === "mask").map((p) => p.points) };
    try {
      await api("PUT", `/streams/${encodeURIComponent(Zones.stream)}/zones`, body);
      Zones.message("saved", "ok");
    } catch (err) { Zones.message(err.message); }
  },

  message(text, kind = "error") {
    const box = $("#zone-editor .zone-message");
    if (!box) return;
    box.textContent = text;
    box.className = `zone-message ${kind}`;
  },
};
