/* VisAttn hover view: the pixel under the pointer and where it looks, drawn in the page.
 *
 * Loaded after hover_math.js (VisAttnMath: Geometry, rows, query dependence) and
 * hover_paint.js (VisAttnPaint: the row drawn on the photo); hover.script() joins the three.
 * Shows a payload of visattn/hover.py (hover.SCHEMA), refusing one newer than
 * VisAttnMath.PAYLOAD_VERSION with a sentence. One draw per animation frame, no request to
 * the server. After each drawn row:
 *   window.visattn.lastRow = {x, y, cell, grid, row, layer, head, queryDependence}
 * A clip (payload.clip) shows its frames together in a grid; the pointer over any frame
 * draws that position's row on every frame at once, on one colour scale, the frames where
 * it peaks outlined; lastRow then also has frame, key_grid and peakFrames [start, stop).
 * Arrow keys move the query in space, [ and ] in time.
 * Layers come when opened: the first payload holds the inputs of the layer shown first, the
 * others are pending until the view asks for them (options.onNeed(keys, analysis), once per
 * layer) and addLayers() gets them (hover.layer_inputs); window.visattn.pending lists the
 * layers asked for and not yet here.
 * "All layers and heads at once": a grid of small canvases, one per pairwise layer and head
 * (and each layer's mean of heads where it has several), each drawing the same query's row
 * with its own colour scale; the pointer over the photo or over any small canvas moves the
 * query, a click on one shows its layer and head large. A clip's layers are strips: one
 * picture per key time cell of the layer (drawn on that cell's first frame), one colour
 * scale per strip, the query's cell outlined in its own time cell. After each move:
 *   window.visattn.lastRows = [{key, head, cell, grid, x, y, row}] (head null: the mean of
 *   heads; row null while the layer is loading; a clip's also frame and key_grid)
 * and, once a payload is shown (its first row drawn, or its message), window.visattn.shownAt
 * (performance.now()). Mouse: pointing moves the query, a click pins it. Touch: a finger
 * down or dragging moves the query (the page does not scroll under it), a long press pins
 * it; the Pin button and Enter pin it for everyone. Pinned queries are marked on the photo.
 */
(function (global) {
  "use strict";
  if (global.VisAttnHover) return;
  const M = global.VisAttnMath, Painter = global.VisAttnPaint.Painter;

  // ----- the view -----------------------------------------------------------------------------
  const fmt = v => Number(v.toPrecision(3)).toString();
  const LONG_PRESS_MS = 550, TAP_SLOP_PX = 10;
  // Pointer moves as they arrive (pointerrawupdate, where the browser has it: Chromium in a
  // secure context), not held back to the next frame as pointermove is; request() still
  // draws at most once per frame.
  const MOVE = "onpointerrawupdate" in global ? "pointerrawupdate" : "pointermove";
  const ALL_PX = 200;  // the longer side of each small canvas of the all-layers grid
  const CLIP_LABEL = "The clip's frames: point at a position in any frame to see where it looks in every frame; arrow keys move the query one cell, [ and ] one frame; a click, Enter or the Pin button pins it";
  const MIN_COLUMNS = 4;  // one-head layers of a photo share rows of at least this many canvases
  const STRIP_PX = 160;  // the width of each picture of a clip's strip in the all-layers grid
  const LOADING = "Loading this layer's inputs from the server (once per analysis); its rows are then computed in this page.";

  function HoverView(root, options) {
    this.root = root; this.options = options || {};
    this.q = sel => root.querySelector(sel);
    this.canvas = this.q(".va-canvas"); this.ctx = this.canvas.getContext("2d", {willReadFrequently: true});
    this.model = null; this.layerKey = null; this.head = null;
    this.alpha = 0.5; this.cmap = "jet"; this.pending = null; this.frame = 0; this.last = null;
    this.latencies = []; this.pins = [];
    this.idle = this.q(".va-msg").textContent;  // hover.html's sentence for an empty view
    this.photoLabel = this.canvas.getAttribute("aria-label");  // hover.html's, for a photo
    this.bind();
    if (global.ResizeObserver) {  // the colour bar as wide as the photo is shown
      const bar = this.q(".va-bar");
      new ResizeObserver(() => { bar.style.width = this.canvas.clientWidth + "px"; this.drawPins(); }).observe(this.canvas);
    }
  }
  HoverView.prototype.bind = function () {
    const c = this.canvas;
    c.addEventListener("pointerdown", e => {
      this.pointerType = e.pointerType;
      if (e.pointerType !== "touch") return;
      e.preventDefault();  // no scrolling, no text selection, no emulated mouse
      if (c.setPointerCapture) { try { c.setPointerCapture(e.pointerId); } catch (err) { /* gone */ } }
      this.touch = {x: e.clientX, y: e.clientY, moved: false};
      this.pointer = [e.clientX, e.clientY];
      this.request({client: this.pointer, t0: e.timeStamp});
      clearTimeout(this.pressTimer);
      this.pressTimer = setTimeout(() => { if (this.touch && !this.touch.moved) this.pin(); }, LONG_PRESS_MS);
    });
    c.addEventListener(MOVE, e => {
      this.pointer = [e.clientX, e.clientY];  // fractional, unlike a click's coordinates
      const t = this.touch;
      if (e.pointerType === "touch" && t && Math.hypot(e.clientX - t.x, e.clientY - t.y) > TAP_SLOP_PX) {
        t.moved = true; clearTimeout(this.pressTimer);
      }
      this.request({client: this.pointer, t0: e.timeStamp});
    });
    const lift = () => { clearTimeout(this.pressTimer); this.touch = null; };
    c.addEventListener("pointerup", lift);
    c.addEventListener("pointercancel", lift);
    c.addEventListener("contextmenu", e => { if (this.pointerType === "touch") e.preventDefault(); });
    this.q(".va-pin").addEventListener("click", () => this.pin());
    c.addEventListener("click", e => {
      if (this.pointerType === "touch") return;  // a tap moved the query; pinning is explicit
      const p = this.pointer, near = p && Math.abs(p[0] - e.clientX) <= 1 && Math.abs(p[1] - e.clientY) <= 1;
      this.request({client: near ? p : [e.clientX, e.clientY], t0: e.timeStamp});
      this.flush(); this.pin();
    });
    c.addEventListener("keydown", e => this.key(e));
    this.q(".va-layer").addEventListener("change", e => this.setLayer(e.target.value));
    this.q(".va-head").addEventListener("change", e => { this.head = e.target.value === "mean" ? null : Number(e.target.value); this.redraw(); });
    this.q(".va-cmap").addEventListener("change", e => this.setColormap(e.target.value));
    this.q(".va-alpha").addEventListener("input", e => this.setAlpha(Number(e.target.value)));
    this.q(".va-zero").addEventListener("change", e => { this.fromZero = e.target.checked; this.redraw(); });
    this.q(".va-all-on").addEventListener("change", e => this.setAll(e.target.checked));
    const grid = this.q(".va-all");
    const over = (e, client) => {  // a small canvas shows the whole photo (a clip's strip,
      const t = e.target.closest && e.target.closest("canvas");  // one picture per time cell)
      const fig = t && t.closest("figure");
      if (!t || !this.model || !this.all || !fig) return null;
      const r = t.getBoundingClientRect(), [w0, h0] = this.model.geometry.size0;
      const [px, py] = client || [e.clientX, e.clientY];
      let fx = (px - r.left) / r.width, frame = 0;
      const fy = (py - r.top) / r.height;
      if (!(fx >= 0 && fx < 1 && fy >= 0 && fy < 1)) return null;
      if (this.clip) {  // which picture of the strip, then the pixel in it
        const n = this.model.layers[this.all.entries[Number(fig.dataset.index)].key].key_grid[0];
        const k = Math.floor(fx * n);
        fx = fx * n - k; frame = M.frameSpan(k, this.clip.F, n)[0];
      }
      const xy = [Math.min(w0 - 1, Math.floor(fx * w0)), Math.min(h0 - 1, Math.floor(fy * h0))];
      return this.clip ? [xy[0], xy[1], frame] : xy;
    };
    const move = e => { this.gridPointer = [e.clientX, e.clientY]; const xy = over(e); if (xy) this.request({photo: xy, t0: e.timeStamp}); };
    grid.addEventListener(MOVE, move);
    grid.addEventListener("pointerdown", e => { if (e.pointerType === "touch") { e.preventDefault(); move(e); } });
    grid.addEventListener("click", e => {  // that layer and head, large, at the same query
      const p = this.gridPointer, near = p && Math.abs(p[0] - e.clientX) <= 1 && Math.abs(p[1] - e.clientY) <= 1;
      const fig = e.target.closest && e.target.closest("figure"), xy = over(e, near ? p : null);
      if (!fig || !xy || !this.all) return;
      const entry = this.all.entries[Number(fig.dataset.index)];
      if (entry.key !== this.layerKey) this.setLayer(entry.key);
      this.head = this.model.layers[entry.key].heads > 1 ? entry.head : null;
      this.q(".va-head").value = this.head === null ? "mean" : String(this.head);
      this.last = null;
      this.request({photo: xy, t0: e.timeStamp});
    });
  };
  HoverView.prototype.message = function (text) { this.q(".va-msg").textContent = text || ""; };

  /** A new analysis: decode it, load the photo, draw the centre query. */
  HoverView.prototype.setPayload = function (payload) {
    const refused = payload && (payload.layers || payload.version !== undefined) ? M.versionProblem(payload) : null;
    const api = global.visattn || (global.visattn = {});
    this.pins = [];
    if (!payload || !payload.layers || refused) {
      this.model = null; api.pending = []; this.canvas.width = 0; this.canvas.height = 0;
      this.q(".va-numbers").textContent = ""; this.q(".va-layer").innerHTML = ""; this.q(".va-head").innerHTML = "";
      this.q(".va-beside").hidden = true; this.q(".va-pinned").textContent = "";
      this.buildAll();
      this.root.classList.add("va-empty");
      this.drawPins();
      this.message(refused || (payload && payload.message) || this.idle);
      if (payload) api.shownAt = performance.now();
      return Promise.resolve();
    }
    const model = M.loadPayload(payload);
    this.alpha = payload.alpha; this.cmap = payload.cmap;
    const clip = payload.clip;
    const photos = clip ? Promise.all(clip.frames.map(src => decodePhoto({src, width: clip.width, height: clip.height})))
      : decodePhoto(payload.photo).then(p => [p]);
    return photos.then(decoded => {
      const photo = decoded[0];
      this.model = model; this.painter = new Painter(model, photo); this.photoPixels = photo;
      this.asked = new Set(); this.at = null; this.rampOf = null; this.sayPending();
      this.clip = clip ? {F: clip.frames.length, cols: clip.columns, tw: clip.width, th: clip.height,
                          rows: Math.ceil(clip.frames.length / clip.columns), indices: clip.indices,
                          painters: decoded.map(p => new Painter(model, p))} : null;
      this.root.classList.toggle("va-clip", !!clip);
      this.canvas.setAttribute("aria-label", clip ? CLIP_LABEL : this.photoLabel);
      this.canvas.width = clip ? clip.width * clip.columns : payload.photo.width;
      this.canvas.height = clip ? clip.height * this.clip.rows : payload.photo.height;
      this.image = this.ctx.createImageData(payload.photo.width, payload.photo.height);
      this.root.classList.remove("va-empty");
      this.fillControls();
      this.buildAll();
      this.pins = (payload.pins || []).map(q => Object.assign({layer: q.layer, head: q.head === undefined ? null : q.head, x: q.x, y: q.y},
                                                              q.frame !== undefined && q.frame !== null ? {frame: q.frame} : {}));
      if (this.allOn) this.ask(model.order);  // the grid is open: every layer, in one request
      this.setLayer(model.order[0]);
      this.showPinned();
      api.shownAt = performance.now();
    });
  };
  HoverView.prototype.fillControls = function () {
    const m = this.model, layerSel = this.q(".va-layer"), cmapSel = this.q(".va-cmap");
    layerSel.innerHTML = "";
    for (const key of m.order) {
      const L = m.layers[key];
      const size = L.grid.join("×") + (L.key_grid ? `, keys ${L.key_grid.join("×")}` : "");
      layerSel.add(new Option(`${L.title || key} (${size}${L.heads > 1 ? `, ${L.heads} heads` : ""})`, key));
    }
    cmapSel.innerHTML = "";
    for (const name of Object.keys(m.luts)) cmapSel.add(new Option(name, name));
    cmapSel.value = this.cmap; this.q(".va-alpha").value = String(this.alpha);
    this.q(".va-style").style.display = this.options.standalone ? "" : "none";
  };
  HoverView.prototype.setLayer = function (key) {
    const L = this.model.layers[key];
    this.layerKey = key; this.head = null; this.q(".va-layer").value = key;
    const headSel = this.q(".va-head");
    headSel.innerHTML = "";
    headSel.add(new Option(L.heads > 1 ? "mean of heads" : "the only head", "mean"));
    for (let h = 0; L.heads > 1 && h < L.heads; h++) headSel.add(new Option(`head ${h}`, String(h)));
    headSel.disabled = L.heads === 1;
    if (!this.ready(key)) this.ask([key]);
    this.sayLayer();
    this.last = null;
    this.drawBeside();
    this.drawPins();
    if (this.clip) {  // the centre query of the middle time cell, on its first frame
      const [T, h, w] = L.grid, hw = h * w, t = Math.floor(L.centre_cell / hw);
      const xy = this.model.geometry.cellCentre(L.centre_cell % hw, [h, w]);
      this.request({photo: [xy[0], xy[1], M.frameSpan(t, this.clip.F, T)[0]], t0: null});
      return;
    }
    this.request({photo: this.model.geometry.cellCentre(L.centre_cell, L.grid), t0: null});
  };
  /** What the view says of the shown layer: why the server draws it, that it is loading,
   * or that its rows are computed here. */
  HoverView.prototype.sayLayer = function () {
    const L = this.model.layers[this.layerKey];
    this.message(L.kind === "server" ? L.reason : !this.ready(this.layerKey) ? LOADING
      : `Rows computed in this page from the layer's ${L.precision} inputs; nothing is sent to the server while you point.`);
  };
  /** Are the inputs of this layer's rows (and of its hops) in the page? */
  HoverView.prototype.ready = function (key) { return M.needs(this.model, key).length === 0; };
  /** Ask the server, once per layer, for the inputs the rows of `keys` still need. */
  HoverView.prototype.ask = function (keys) {
    const m = this.model, want = [];
    for (const key of keys) for (const k of M.needs(m, key)) if (!this.asked.has(k) && !want.includes(k)) want.push(k);
    if (want.length && this.options.onNeed) { want.forEach(k => this.asked.add(k)); this.options.onNeed(want, m.analysis); }
    this.sayPending();
  };
  HoverView.prototype.sayPending = function () {
    const api = global.visattn || (global.visattn = {}), m = this.model;
    api.pending = m ? Array.from(this.asked).filter(k => m.layers[k] && m.layers[k].pending) : [];
  };
  /** A layers message (hover.layer_inputs): the pending layers it holds are computed from now
   * on; the last query is drawn again with them. */
  HoverView.prototype.addLayers = function (message) {
    if (!this.model || !M.addLayers(this.model, message).length) return;
    this.sayPending(); this.sayLayer(); this.drawBeside();
    if (this.all) this.all.entries.forEach(e => { e.stamp = null; });
    this.last = null;
    if (this.at) this.request({photo: this.at, t0: null});
  };
  /** The all-layers grid on or off (the checkbox); every layer's inputs asked for. */
  HoverView.prototype.setAll = function (on) {
    this.allOn = !!on; this.q(".va-all-on").checked = this.allOn;
    if (this.allOn && this.model) this.ask(this.model.order);
    this.buildAll();
    if (this.all && this.at) this.request({photo: this.at, t0: null});
  };
  /** One small canvas per (pairwise layer, head), and per layer's mean of heads where it
   * has several, in layer rows; each paints with a Painter of the photo at its small size
   * (a clip's: a strip, one picture per key time cell, a Painter per frame shown). */
  HoverView.prototype.buildAll = function () {
    const box = this.q(".va-all"), note = this.q(".va-all-msg"), m = this.model, C = this.clip;
    box.innerHTML = ""; this.all = null; note.textContent = "";
    const api = global.visattn || (global.visattn = {});
    api.lastRows = null;
    if (!this.allOn || !m) { box.hidden = true; return; }
    const P = C ? {width: C.tw, height: C.th} : m.payload.photo;
    const k = Math.min(1, (C ? STRIP_PX : ALL_PX) / (C ? P.width : Math.max(P.width, P.height)));
    const sw = Math.max(1, Math.round(P.width * k)), sh = Math.max(1, Math.round(P.height * k));
    const smallModel = {payload: Object.assign({}, m.payload, {photo: {width: sw, height: sh}}), geometry: m.geometry};
    const painters = {};  // frame (0 for a photo) -> Painter of it at the small size
    const painterOf = f => painters[f] || (painters[f] = new Painter(smallModel, shrink(C ? C.painters[f].photo : this.photoPixels, P.width, P.height, sw, sh)));
    const entries = [];
    let columns = C ? 1 : MIN_COLUMNS, skipped = 0;
    for (const key of m.order) {
      const L = m.layers[key];
      if (L.kind === "server" || (L.kind === "spacetime") !== !!C) { skipped++; continue; }
      const heads = [];
      for (let h = 0; h < L.heads; h++) heads.push(h);
      if (L.heads > 1) heads.push(null);
      columns = Math.max(columns, C ? 1 : heads.length);
      const pictures = C ? L.key_grid[0] : 1;
      heads.forEach((head, col) => {
        const fig = document.createElement("figure"), c = document.createElement("canvas"), cap = document.createElement("figcaption");
        c.width = sw * pictures; c.height = sh;
        const label = `${this.titleOf(key)} · ${head === null ? "mean of heads" : `head ${head}`}`;
        const spans = C ? Array.from({length: pictures}, (_, t) => M.frameSpan(t, C.F, pictures)) : [];
        cap.textContent = label;
        cap.title = C ? `${label}: pictures of frames ${spans.map(([a, b]) => b - a > 1 ? `${a}–${b - 1}` : `${a}`).join(", ")}` : label;
        c.setAttribute("role", "img"); c.setAttribute("aria-label", cap.title);
        if (C) c.style.width = `min(100%, ${c.width}px)`;
        fig.dataset.index = String(entries.length); fig.dataset.key = key; fig.dataset.head = head === null ? "mean" : String(head);
        if (col === 0 && heads.length > 1) fig.style.gridColumnStart = "1";  // a layer's heads: a row
        fig.append(c, cap); box.appendChild(fig);
        entries.push({key, head, fig, ctx: c.getContext("2d"), painters: C ? spans.map(([a]) => painterOf(a)) : [painterOf(0)]});
      });
    }
    box.style.gridTemplateColumns = `repeat(${columns}, minmax(0, 1fr))`;
    box.hidden = !entries.length;
    if (!entries.length) note.textContent = "No layer of this analysis has rows the page computes.";
    else {
      const left = skipped ? ` ${skipped} layer${skipped > 1 ? "s" : ""} the page cannot compute ${skipped > 1 ? "are" : "is"} left out of the grid.` : "";
      note.textContent = (C ? "Each strip is one layer's row of the query across time: one picture per time cell of the layer's keys (drawn on its first frame; hover a strip for its frames), one colour scale per strip, the query's cell outlined in its own time cell. Point at any picture to move the query there." : "") + left;
    }
    this.all = {entries, image: new ImageData(sw, sh), sw, sh};
  };
  /** Every small canvas: the row of photo pixel (x, y) (of frame f of a clip) in its layer
   * and head, its own colour scale (min to max, or from 0), the query cell outlined; then
   * window.visattn.lastRows. A layer still loading shows its picture(s) alone. */
  HoverView.prototype.drawAll = function (x, y, f) {
    const A = this.all, m = this.model, C = this.clip, lut = m.luts[this.cmap];
    const style = JSON.stringify([C ? f : 0, this.alpha, this.cmap, !!this.fromZero, this.layerKey, this.head]);
    const heads = {};  // this move's rows per layer and head: a mean of heads is made of them
    const shown = this.last;  // the large view's row, just computed
    const rowOf = (L, cell, head) => {
      const mine = heads[L.key] || (heads[L.key] = []);
      const same = shown && !shown.stale && shown.rowValues && shown.key === L.key && shown.cell === cell &&
        (L.heads === 1 || head === shown.head);
      if (head !== null || L.heads === 1) return (mine[head || 0] = same ? shown.rowValues : M.rowOf(m, L, cell, head));
      if (same) return shown.rowValues;
      if (mine.length < L.heads) return M.rowOf(m, L, cell, null);
      const out = new Float64Array(mine[0].length);  // as M.rowOf: the sum in head order, / heads
      for (const r of mine) for (let j = 0; j < out.length; j++) out[j] += r[j];
      for (let j = 0; j < out.length; j++) out[j] /= L.heads;
      return out;
    };
    for (const e of A.entries) {  // a canvas whose cell and style did not change is left as it is
      const L = m.layers[e.key], ready = this.ready(e.key);
      const cell = C ? M.spacetimeCell(m.geometry, L, f, C.F, x, y, true) : m.geometry.toGrid(x, y, L.grid, true);
      const stamp = ready ? `${cell} ${style}` : null;
      if (stamp !== null && stamp === e.stamp) continue;
      const row = ready ? rowOf(L, cell, e.head) : null;
      if (C) this.paintStrip(e, L, row, cell, f);
      else {
        if (row) {
          e.painters[0].paint(row, L.grid, this.alpha, lut, A.image, this.fromZero);
          e.painters[0].box(m.geometry.cellBox(cell, L.grid), A.image, m.payload.marker);
        } else A.image.data.set(e.painters[0].photo);
        e.ctx.putImageData(A.image, 0, 0);
      }
      e.fig.classList.toggle("va-all-shown", e.key === this.layerKey && (L.heads === 1 || e.head === this.head));
      e.fig.classList.toggle("va-all-loading", !ready);
      Object.assign(e, {stamp, cell, row});
    }
    const api = global.visattn || (global.visattn = {});
    api.lastRows = A.entries.map(e => Object.assign({key: e.key, head: e.head, cell: e.cell, grid: m.layers[e.key].grid.slice(),
                                                     x, y, row: e.row ? Array.from(e.row) : null},
                                                    C ? {frame: f, key_grid: m.layers[e.key].key_grid.slice()} : {}));
    api.drawnAll = (api.drawnAll || 0) + 1;
  };
  /** A clip's strip: the row's share of each key time cell on that cell's picture, on the
   * row's one colour scale; the query cell outlined in the time cell of its frame f. */
  HoverView.prototype.paintStrip = function (e, L, row, cell, f) {
    const A = this.all, m = this.model, C = this.clip, kg = L.key_grid, per = kg[1] * kg[2];
    const [, h, w] = L.grid, mine = M.timeCell(f, C.F, kg[0]);
    let range = null;
    if (row) { const {hi, lo} = M.peak(row); range = [this.fromZero ? Math.min(lo, 0) : lo, hi]; }
    for (let t = 0; t < kg[0]; t++) {
      const painter = e.painters[t];
      if (!row) A.image.data.set(painter.photo);
      else {
        painter.paint(row.subarray(t * per, (t + 1) * per), [kg[1], kg[2]], this.alpha, m.luts[this.cmap], A.image, false, range);
        if (t === mine) painter.box(m.geometry.cellBox(cell % (h * w), [h, w]), A.image, m.payload.marker);
      }
      e.ctx.putImageData(A.image, t * A.sw, 0);
    }
    const ctx = e.ctx;  // each picture's frames, and a line between pictures
    ctx.save(); ctx.font = "bold 11px sans-serif"; ctx.textBaseline = "top";
    for (let t = 0; t < kg[0]; t++) {
      const [a, b] = M.frameSpan(t, C.F, kg[0]), label = b - a > 1 ? `frames ${a}–${b - 1}` : `frame ${a}`;
      ctx.fillStyle = "rgba(0,0,0,0.6)"; ctx.fillRect(t * A.sw, 0, ctx.measureText(label).width + 6, 14);
      ctx.fillStyle = t === mine ? `rgb(${m.payload.marker.join(",")})` : "#fff"; ctx.fillText(label, t * A.sw + 3, 1);
      if (t) { ctx.fillStyle = "#fff"; ctx.fillRect(t * A.sw - 1, 0, 2, A.sh); }
    }
    ctx.restore();
  };
  HoverView.prototype.setAlpha = function (a) { this.alpha = Number(a); this.redraw(); };
  HoverView.prototype.setColormap = function (c) { this.cmap = c; this.q(".va-cmap").value = c; this.redraw(); };
  HoverView.prototype.redraw = function () {
    this.drawBeside();
    if (this.last) { this.last = Object.assign({}, this.last, {stale: true}); this.request({photo: [this.last.x, this.last.y, this.last.frame], t0: null}); }
  };
  /** A map the layer made beside its rows (DNL's unary map), on the photo like a row. */
  HoverView.prototype.drawBeside = function () {
    const fig = this.q(".va-beside"), L = this.model && this.model.layers[this.layerKey];
    fig.hidden = !(L && L.besideValues);
    if (fig.hidden) return;
    const p = this.model.payload.photo, out = new ImageData(p.width, p.height);
    this.painter.paint(L.besideValues, L.grid, this.alpha, this.model.luts[this.cmap], out);
    const c = document.createElement("canvas");
    c.width = p.width; c.height = p.height;
    c.getContext("2d").putImageData(out, 0, 0);
    fig.querySelector("img").src = c.toDataURL();
    fig.querySelector("figcaption").textContent = L.beside.title;
  };

  /** Coalesce pointer events to one draw per animation frame, the newest winning: the
   * first event of a frame draws at once (browsers deliver pointer moves aligned with
   * frames), later ones wait for the next frame. */
  HoverView.prototype.request = function (where) {
    if (!this.model) return;
    this.pending = where;
    if (!this.busy) { this.flush(); return; }
    this.nextFrame();
  };
  /** At the next frame: drawing is allowed again, and the newest waiting event draws. */
  HoverView.prototype.nextFrame = function () {
    if (!this.frame) this.frame = requestAnimationFrame(() => { this.frame = 0; this.busy = false; if (this.pending) this.request(this.pending); });
  };
  HoverView.prototype.flush = function () {
    const where = this.pending; this.pending = null;
    if (!where || !this.model) return;
    const xy = where.photo || this.photoPixel(where.client);
    if (!xy) return;
    const f = xy[2] || 0;
    this.at = this.clip ? [xy[0], xy[1], f] : [xy[0], xy[1]];
    if (!this.ready(this.layerKey)) this.drawPlain();  // its inputs are on their way
    else if (this.clip) this.drawClip(xy[0], xy[1], f);
    else this.draw(xy[0], xy[1]);
    if (this.all) this.drawAll(xy[0], xy[1], f);
    // pointer event -> every row of the view computed and put on its canvas
    if (where.t0 !== null && where.t0 !== undefined) this.latencies.push(performance.now() - where.t0);
    this.busy = true;  // until the next frame
    this.nextFrame();
  };
  /** The photo (every frame of a clip) without a row, while the layer's inputs load. */
  HoverView.prototype.drawPlain = function () {
    const C = this.clip;
    for (const [g, painter] of (C ? C.painters : [this.painter]).entries()) {
      this.image.data.set(painter.photo);
      this.ctx.putImageData(this.image, C ? (g % C.cols) * C.tw : 0, C ? Math.floor(g / C.cols) * C.th : 0);
    }
    this.q(".va-numbers").textContent = "";
  };
  /** Client coordinates -> photo pixel, through the canvas's on-screen box. */
  HoverView.prototype.photoPixel = function (client) {
    const rect = this.canvas.getBoundingClientRect();
    const cx = (client[0] - rect.left) * this.canvas.width / rect.width;
    const cy = (client[1] - rect.top) * this.canvas.height / rect.height;
    const [w0, h0] = this.model.geometry.size0;
    if (cx < 0 || cy < 0 || cx >= this.canvas.width || cy >= this.canvas.height) return null;
    const C = this.clip;
    if (C) {  // which frame of the grid, then the pixel in that frame
      const col = Math.floor(cx / C.tw), line = Math.floor(cy / C.th), f = line * C.cols + col;
      if (f >= C.F) return null;
      return [Math.min(w0 - 1, Math.floor((cx - col * C.tw) * w0 / C.tw)),
              Math.min(h0 - 1, Math.floor((cy - line * C.th) * h0 / C.th)), f];
    }
    return [Math.min(w0 - 1, Math.floor(cx * w0 / this.canvas.width)),
            Math.min(h0 - 1, Math.floor(cy * h0 / this.canvas.height))];
  };
  HoverView.prototype.draw = function (x, y) {
    const m = this.model, L = m.layers[this.layerKey];
    if (L.kind === "server") {  // the photo alone; a click asks the server for the row
      this.image.data.set(this.painter.photo);
      this.ctx.putImageData(this.image, 0, 0);
      this.last = {x, y, cell: null, key: this.layerKey, head: this.head};
      this.numbers(L, null, null);
      return;
    }
    let cell = m.geometry.toGrid(x, y, L.grid, false);
    const outside = cell === null;
    if (outside) cell = m.geometry.toGrid(x, y, L.grid, true);
    const same = this.last && !this.last.stale && this.last.cell === cell && this.last.key === this.layerKey && this.last.head === this.head;
    const row = same ? this.last.rowValues : M.rowOf(m, L, cell, this.head);
    if (!same) {
      this.painter.paint(row, L.grid, this.alpha, m.luts[this.cmap], this.image, this.fromZero);
      this.painter.box(m.geometry.cellBox(cell, L.grid), this.image, m.payload.marker);
      this.ctx.putImageData(this.image, 0, 0);
    }
    const score = same ? this.last.score : M.queryDependence(m, L, cell, this.head, row);
    this.last = {x, y, cell, key: this.layerKey, head: this.head, rowValues: row, score, outside};
    this.numbers(L, row, score);
    const api = global.visattn || (global.visattn = {});
    api.lastRow = {x, y, cell, grid: L.grid.slice(), row: Array.from(row), layer: this.layerKey,
                   head: this.head, queryDependence: score};
    api.drawn = (api.drawn || 0) + 1;
  };
  /** A clip: the row of pixel (x, y) of frame f, drawn on every frame at once on one colour
   * scale (the row's own minimum and maximum over all its keys); the query cell outlined on
   * its frame, the frames the row peaks in outlined in white. */
  HoverView.prototype.drawClip = function (x, y, f) {
    const m = this.model, L = m.layers[this.layerKey], C = this.clip;
    if (L.kind !== "spacetime") { this.message("This layer is not a space-time layer; its rows cannot be drawn on a clip."); return; }
    const [T, h, w] = L.grid, kg = L.key_grid, per = kg[1] * kg[2];
    let cell = M.spacetimeCell(m.geometry, L, f, C.F, x, y, false);
    const outside = cell === null;
    if (outside) cell = M.spacetimeCell(m.geometry, L, f, C.F, x, y, true);
    const same = this.last && !this.last.stale && this.last.cell === cell && this.last.frame === f &&
      this.last.key === this.layerKey && this.last.head === this.head;
    const row = same ? this.last.rowValues : M.rowOf(m, L, cell, this.head);
    const {best, hi, lo} = M.peak(row), peakFrames = M.frameSpan(Math.floor(best / per), C.F, kg[0]);
    if (!same) {
      const lut = m.luts[this.cmap], range = [this.fromZero ? Math.min(lo, 0) : lo, hi];
      const ctx = this.ctx;
      let levels = null, levelsOf = -1;  // the frames of one key time cell share its colour levels
      for (let g = 0; g < C.F; g++) {
        const kt = M.timeCell(g, C.F, kg[0]), painter = C.painters[g];
        if (kt !== levelsOf) {
          levels = painter.levels(painter.resample(row.subarray(kt * per, (kt + 1) * per), [kg[1], kg[2]]), range[0], range[1]);
          levelsOf = kt;
        }
        painter.blendLevels(levels, this.alpha, lut, this.image);
        if (g === f) painter.box(m.geometry.cellBox(cell % (h * w), [h, w]), this.image, m.payload.marker);
        ctx.putImageData(this.image, (g % C.cols) * C.tw, Math.floor(g / C.cols) * C.th);
      }
      ctx.save();
      ctx.font = "bold 12px sans-serif"; ctx.textBaseline = "top";
      for (let g = 0; g < C.F; g++) {
        const gx = (g % C.cols) * C.tw, gy = Math.floor(g / C.cols) * C.th, label = `frame ${g}`;
        ctx.fillStyle = "rgba(0,0,0,0.6)"; ctx.fillRect(gx, gy, ctx.measureText(label).width + 8, 16);
        ctx.fillStyle = g === f ? `rgb(${m.payload.marker.join(",")})` : "#fff"; ctx.fillText(label, gx + 4, gy + 2);
        if (g >= peakFrames[0] && g < peakFrames[1]) {
          ctx.strokeStyle = "#fff"; ctx.lineWidth = 3; ctx.setLineDash([6, 4]);
          ctx.strokeRect(gx + 1.5, gy + 1.5, C.tw - 3, C.th - 3); ctx.setLineDash([]);
        }
      }
      ctx.restore();
    }
    const score = same ? this.last.score : M.queryDependence(m, L, cell, this.head, row);
    this.last = {x, y, frame: f, cell, key: this.layerKey, head: this.head, rowValues: row, score, outside};
    this.clipNumbers(L, row, score, best, hi, lo, peakFrames);
    const api = global.visattn || (global.visattn = {});
    api.lastRow = {x, y, frame: f, cell, grid: L.grid.slice(), key_grid: kg.slice(), row: Array.from(row),
                   layer: this.layerKey, head: this.head, queryDependence: score, peakFrames};
    api.drawn = (api.drawn || 0) + 1;
  };
  /** A clip's info text: frame, pixel and cell, the frames the row peaks in, the row's share
   * per frame (where it looks across time), query dependence. */
  HoverView.prototype.clipNumbers = function (L, row, score, best, hi, lo, peakFrames) {
    const m = this.model, C = this.clip, {x, y, frame, cell, outside} = this.last;
    const [T, h, w] = L.grid, kg = L.key_grid, per = kg[1] * kg[2], hw = h * w;
    const t = Math.floor(cell / hw), s = cell % hw, kb = best % per;
    const shares = [];
    for (let kt = 0; kt < kg[0]; kt++) {
      let sum = 0;
      for (let j = kt * per; j < (kt + 1) * per; j++) sum += row[j];
      const [a, b] = M.frameSpan(kt, C.F, kg[0]);
      shares.push(`${b - a > 1 ? `frames ${a}–${b - 1}` : `frame ${a}`} ${(100 * sum).toFixed(0)} %`);
    }
    const frames = peakFrames[1] - peakFrames[0] > 1 ? `frames ${peakFrames[0]}–${peakFrames[1] - 1}` : `frame ${peakFrames[0]}`;
    const spread = m.payload.nearly_uniform;
    this.q(".va-numbers").innerHTML =
      `<p>Frame <b>${frame}</b> (decoded frame ${C.indices[frame]}), pixel <b>(${x}, ${y})</b> → cell <b>(time ${t}, row ${Math.floor(s / w)}, col ${s % w})</b> of the ${T}×${h}×${w} grid` +
      (outside ? " — outside the region the model saw; the nearest cell is shown" : "") + ".</p>" +
      `<p>Row maximum <b>${fmt(hi)}</b> in <b>${frames}</b> (outlined), key (row ${Math.floor(kb / kg[2])}, col ${kb % kg[2]}) of the ${kg[1]}×${kg[2]} key grid.` +
      (M.nearlyUniform(hi, lo, spread) ? ` The row is nearly uniform (spread under ${spread * 100} % of its maximum).` : "") + "</p>" +
      `<p>Where it looks across time: ${shares.join(", ")}.</p>` +
      `<p>Query dependence <b>${score.toFixed(3)}</b> (0 = the same row wherever and whenever you point, 1 = specific to this position).</p>`;
    this.colourBar(this.fromZero ? Math.min(lo, 0) : lo, hi);
  };
  /** The info text of the last query: its pixel and cell, where its row peaks, whether the
   * row is nearly uniform, its query dependence; for a layer the server draws, the pixel. */
  HoverView.prototype.numbers = function (L, row, score) {
    const m = this.model, {x, y, cell, outside} = this.last, [h, w] = L.grid;
    const pixel = `<p>Photo pixel <b>(${x}, ${y})</b>`, rc = j => `row ${Math.floor(j / w)}, col ${j % w}`;
    if (!row) { this.q(".va-numbers").innerHTML = pixel + ": click to have the server draw its row.</p>"; return; }
    const {best, hi, lo} = M.peak(row), around = m.geometry.cellCentre(best, L.grid);
    const spread = m.payload.nearly_uniform, from = this.fromZero ? Math.min(lo, 0) : lo;
    this.q(".va-numbers").innerHTML =
      `${pixel} → cell <b>(${rc(cell)})</b> of the ${h}×${w} grid` +
      (outside ? " — outside the region the model saw; the nearest cell is shown" : "") + ".</p>" +
      `<p>Row maximum <b>${fmt(hi)}</b> at cell (${rc(best)}), around pixel (${around[0]}, ${around[1]}).` +
      (M.nearlyUniform(hi, lo, spread) ? ` The row is nearly uniform (spread under ${spread * 100} % of its maximum)` +
        (this.fromZero ? "." : ": its colours stretch tiny differences; tick “Colours from 0” to see it as it is.") : "") + "</p>" +
      `<p>Query dependence <b>${score.toFixed(3)}</b> (0 = the same row wherever you point, 1 = specific to this pixel).</p>`;
    this.colourBar(from, hi);
  };
  /** The colour bar under the view: the colour map's ramp (set when the map changes) and
   * its two ends' values. */
  HoverView.prototype.colourBar = function (lo, hi) {
    if (this.rampOf !== this.cmap) {
      const lut = this.model.luts[this.cmap], stops = [];
      for (let k = 0; k <= 16; k++) { const i = Math.min(255, k * 16) * 3; stops.push(`rgb(${lut[i]},${lut[i + 1]},${lut[i + 2]})`); }
      this.q(".va-ramp").style.background = `linear-gradient(to right, ${stops.join(",")})`;
      this.rampOf = this.cmap;
    }
    const [a, b] = M.barEnds(lo, hi), ends = this.q(".va-lo"), end = this.q(".va-hi");
    if (ends.textContent !== a) ends.textContent = a;
    if (end.textContent !== b) end.textContent = b;
  };
  /** Arrow keys: the query moves one cell; the new query is the cell's centre pixel. */
  HoverView.prototype.key = function (e) {
    const step = {ArrowLeft: [0, -1], ArrowRight: [0, 1], ArrowUp: [-1, 0], ArrowDown: [1, 0]}[e.key];
    if (e.key === "Enter" || e.key === " ") { e.preventDefault(); this.pin(); return; }
    if (this.clip && this.model && this.last && (e.key === "[" || e.key === "]")) {  // time
      e.preventDefault();
      const f = Math.min(this.clip.F - 1, Math.max(0, this.last.frame + (e.key === "]" ? 1 : -1)));
      this.request({photo: [this.last.x, this.last.y, f], t0: e.timeStamp});
      this.flush();
      return;
    }
    if (!step || !this.model || !this.last) return;
    e.preventDefault();
    if (this.clip) {  // space, in the query's frame
      const L = this.model.layers[this.layerKey], [, h, w] = L.grid, geo = this.model.geometry, s = this.last.cell % (h * w);
      const r = Math.min(h - 1, Math.max(0, Math.floor(s / w) + step[0])), c = Math.min(w - 1, Math.max(0, s % w + step[1]));
      const xy = geo.cellCentre(r * w + c, [h, w]);
      if (geo.toGrid(xy[0], xy[1], [h, w], true) !== r * w + c) return;
      this.request({photo: [xy[0], xy[1], this.last.frame], t0: e.timeStamp});
      this.flush();
      return;
    }
    const L = this.model.layers[this.layerKey], [h, w] = L.grid, geo = this.model.geometry;
    const r = Math.min(h - 1, Math.max(0, Math.floor(this.last.cell / w) + step[0]));
    const c = Math.min(w - 1, Math.max(0, this.last.cell % w + step[1]));
    const xy = geo.cellCentre(r * w + c, L.grid);
    if (geo.toGrid(xy[0], xy[1], L.grid, true) !== r * w + c) return;  // a cell smaller than a photo pixel
    this.request({photo: xy, t0: e.timeStamp});
    this.flush();
  };
  HoverView.prototype.pin = function () {
    if (!this.last || !this.model) return;
    const q = {layer: this.layerKey, head: this.head, x: this.last.x, y: this.last.y};
    if (this.clip) q.frame = this.last.frame;
    const same = p => p.layer === q.layer && p.head === q.head && p.x === q.x && p.y === q.y && p.frame === q.frame;
    if (!this.pins.some(same)) this.pins.push(q);
    this.drawPins(); this.showPinned(q);
    if (this.options.onPin) this.options.onPin(q);
  };
  /** A numbered mark on the photo for each pinned query of the shown layer. */
  HoverView.prototype.drawPins = function () {
    const layer = this.q(".va-pins");
    if (!layer) return;
    layer.innerHTML = "";
    const m = this.model, c = this.canvas;
    layer.style.width = c.clientWidth + "px"; layer.style.height = c.clientHeight + "px";
    if (!m || !c.clientWidth) return;
    const [w0, h0] = m.geometry.size0, C = this.clip;
    this.pins.forEach((p, k) => {
      if (p.layer !== this.layerKey) return;
      const mark = document.createElement("span");
      mark.className = "va-pin-mark"; mark.textContent = String(k + 1);
      const f = C ? (p.frame || 0) : 0, sx = C ? C.tw / c.width * c.clientWidth : c.clientWidth;
      const sy = C ? C.th / c.height * c.clientHeight : c.clientHeight;
      const ox = C ? (f % C.cols) * sx : 0, oy = C ? Math.floor(f / C.cols) * sy : 0;
      mark.style.left = (ox + (p.x + 0.5) * sx / w0) + "px";
      mark.style.top = (oy + (p.y + 0.5) * sy / h0) + "px";
      layer.appendChild(mark);
    });
  };
  /** The pinned queries in a line ("Pinned: 1 (x, y) …"), the newest said first. */
  HoverView.prototype.showPinned = function (newest) {
    const text = this.pins.map((p, k) => `${k + 1} (${p.x}, ${p.y}${p.frame !== undefined && p.frame !== null ? `, frame ${p.frame}` : ""})` +
      (p.layer !== this.layerKey ? ` on ${this.titleOf(p.layer)}` : "")).join(", ");
    this.q(".va-pinned").textContent = this.pins.length
      ? (newest ? `Pinned pixel (${newest.x}, ${newest.y}${newest.frame !== undefined ? ` of frame ${newest.frame}` : ""}). ` : "") + `Pinned: ${text}.` : "";
  };
  HoverView.prototype.titleOf = function (key) {
    const L = this.model && this.model.layers[key];
    return (L && L.title) || key;
  };

  /** RGBA pixels (w x h) scaled to sw x sh as the browser draws them smaller. */
  function shrink(pixels, w, h, sw, sh) {
    const full = document.createElement("canvas"); full.width = w; full.height = h;
    full.getContext("2d").putImageData(new ImageData(new Uint8ClampedArray(pixels), w, h), 0, 0);
    const small = document.createElement("canvas"); small.width = sw; small.height = sh;
    const ctx = small.getContext("2d", {willReadFrequently: true});
    ctx.imageSmoothingQuality = "high"; ctx.drawImage(full, 0, 0, sw, sh);
    return ctx.getImageData(0, 0, sw, sh).data;
  }

  function decodePhoto(photo) {
    const img = new Image();
    img.src = photo.src;
    return img.decode().then(() => {
      const nw = img.naturalWidth, nh = img.naturalHeight;  // smaller: before its enlargement
      const c = document.createElement("canvas");
      c.width = nw; c.height = nh;
      const ctx = c.getContext("2d", {willReadFrequently: true});
      ctx.drawImage(img, 0, 0);
      const pixels = ctx.getImageData(0, 0, nw, nh).data;
      return nw === photo.width && nh === photo.height ? pixels
        : M.enlargeNearest(pixels, nw, nh, photo.width, photo.height);
    });
  }

  // ----- mounting --------------------------------------------------------------------------
  /** The view's markup (hover.html) into `element` and its style (hover.css) into the
   * document, once: Gradio's gr.HTML compiles its templates anew at every change of the
   * value, so the view keeps them out of its templates. */
  function mountSkeleton(element, html, css) {
    const doc = element.ownerDocument;
    if (!doc.getElementById("va-hover-css")) {
      const style = doc.createElement("style");
      style.id = "va-hover-css";
      style.textContent = css;
      doc.head.appendChild(style);
    }
    const mount = element.querySelector(".va-mount") || element;
    if (!mount.querySelector(".va-hover")) mount.innerHTML = html;
  }

  /** Inside Gradio's gr.HTML (js_on_load): the payload is the component's value (then each
   * layers message); a click pins the query through the component's 'pin' event, a layer
   * opened asks for its inputs through its 'layers' event. */
  function mountGradio(element, props, trigger, watch) {
    const view = new HoverView(element.querySelector(".va-hover"),
      {onPin: q => trigger("pin", q), onNeed: (keys, analysis) => trigger("layers", {keys, analysis})});
    const api = global.visattn || (global.visattn = {});
    api.view = view;
    api.setAlpha = a => view.setAlpha(a);
    api.setColormap = c => view.setColormap(c);
    const show = v => {  // a first payload, or a layers message for the shown analysis
      if (v && v.layers_of !== undefined) api.ready.then(() => view.addLayers(v));
      else api.ready = view.setPayload(v);
    };
    api.ready = Promise.resolve();
    show(props.value);
    watch("value", () => show(props.value));
    return view;
  }

  /** A standalone page (viewer.html): payload embedded, its own colour map and opacity. */
  function mountStandalone(root, payload) {
    const view = new HoverView(root, {standalone: true});
    const api = global.visattn || (global.visattn = {});
    api.view = view;
    api.ready = view.setPayload(payload).then(() => { api.pinned = view.pins; });
    return view;
  }

  global.VisAttnHover = Object.assign({}, M, {Painter, HoverView, mountSkeleton, mountGradio, mountStandalone, decodePhoto});
})(window);
