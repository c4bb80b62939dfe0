/* VisAttn hover view: the pixel under the pointer and where it looks, drawn in the page.
 *
 * Mirrors, for the payload visattn/hover.py sends once per analysis:
 *   Geometry (visattn/geometry.py)   pixel <-> cell, cell boxes, grid -> display sampling
 *   record rows (visattn/records.py) Affinity (+ relative positions), CrissCross, TwoHop,
 *                                    Distribute; several heads -> their mean
 *   render.overlay / draw_box        bilinear upsampling, min-max, colour lookup table,
 *                                    blend, darkened unseen region, query-cell outline
 *   analysis.query_dependence        mean Jensen-Shannon divergence to the reference cells
 * One draw per animation frame, no request to the server. After each drawn row:
 *   window.visattn.lastRow = {x, y, cell, grid, row}
 */
(function (global) {
  "use strict";
  if (global.VisAttnHover) return;

  // ----- numbers ------------------------------------------------------------------------
  const f32 = Math.fround;

  /** Round half to even, as OpenCV's saturate_cast does. */
  function roundHalfEven(v) {
    const r = Math.floor(v + 0.5);
    return (r - v === 0.5 && (r & 1)) ? r - 1 : r;
  }

  /** Python's a // b for integers (b > 0), exact where a / b rounds in floating point. */
  function floorDiv(a, b) {
    let q = Math.floor(a / b);
    if (q * b > a) q -= 1;
    else if ((q + 1) * b <= a) q += 1;
    return q;
  }
  const ceilDiv = (a, b) => -floorDiv(-a, b);

  let HALF = null;
  function halfTable() {
    if (HALF) return HALF;
    HALF = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) {
      const e = (h >> 10) & 31, m = h & 1023;
      const v = e === 0 ? m * 2 ** -24 : e === 31 ? (m ? NaN : Infinity) : (1 + m / 1024) * 2 ** (e - 15);
      HALF[h] = h & 0x8000 ? -v : v;
    }
    return HALF;
  }

  /** {dtype: 'f2' | 'f4', shape, data: base64 little-endian} -> Float32Array. */
  function decode(enc) {
    const bin = atob(enc.data);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    if (enc.dtype === "f4") return new Float32Array(bytes.buffer);
    if (enc.dtype !== "f2") throw new Error("unknown dtype " + enc.dtype);
    const half = new Uint16Array(bytes.buffer), table = halfTable();
    const out = new Float32Array(half.length);
    for (let i = 0; i < half.length; i++) out[i] = table[half[i]];
    return out;
  }

  // ----- Geometry (visattn/geometry.py, integer arithmetic) --------------------------------
  function Geometry(g) {
    this.size0 = g.image_size; this.sizer = g.resized; this.off = g.offset; this.sizeIn = g.input_size;
  }
  Geometry.prototype.cellWidth = function (axis, n) {
    const sizeIn = this.sizeIn[axis];
    const s = 2 ** Math.max(0, Math.round(Math.log2(sizeIn / n)));
    if (n === Math.floor(sizeIn / s) || n === ceilDiv(sizeIn, s)) return [s, 1];
    return [sizeIn, n];
  };
  Geometry.prototype.axisCell = function (x, axis, n) {
    const s0 = this.size0[axis], sr = this.sizer[axis], off = this.off[axis], si = this.sizeIn[axis];
    const twiceU = (2 * x + 1) * sr - 2 * off * s0;
    if (!(twiceU >= 0 && twiceU < 2 * s0 * si)) return twiceU < 0 ? -1 : n;
    const [p, q] = this.cellWidth(axis, n);
    return Math.min(floorDiv(twiceU * q, 2 * s0 * p), n);
  };
  /** Row-major cell of photo pixel (x, y); null outside the model input unless clamp. */
  Geometry.prototype.toGrid = function (x, y, grid, clamp) {
    const [hg, wg] = grid;
    let c = this.axisCell(Math.floor(x), 0, wg), r = this.axisCell(Math.floor(y), 1, hg);
    if (!(c >= 0 && c < wg && r >= 0 && r < hg)) {
      if (!clamp) return null;
      c = Math.min(Math.max(c, 0), wg - 1); r = Math.min(Math.max(r, 0), hg - 1);
    }
    return r * wg + c;
  };
  Geometry.prototype.firstPixel = function (axis, a, b) {
    const s0 = this.size0[axis], sr = this.sizer[axis], off = this.off[axis];
    return ceilDiv(2 * a * s0 + 2 * off * s0 * b - sr * b, 2 * sr * b);
  };
  Geometry.prototype.clip = function (axis, lo, hi) {
    lo = Math.max(lo, this.firstPixel(axis, 0, 1));
    hi = Math.min(hi, this.firstPixel(axis, this.sizeIn[axis], 1));
    const s0 = this.size0[axis];
    return [Math.min(Math.max(lo, 0), s0), Math.min(Math.max(hi, lo, 0), s0)];
  };
  Geometry.prototype.axisRange = function (j, axis, n) {
    const [p, q] = this.cellWidth(axis, n);
    return this.clip(axis, this.firstPixel(axis, j * p, q), this.firstPixel(axis, (j + 1) * p, q));
  };
  /** Half-open box [x0, y0, x1, y1] of the photo pixels whose centres fall in the cell. */
  Geometry.prototype.cellBox = function (cell, grid) {
    const wg = grid[1], r = Math.floor(cell / wg), c = cell - r * wg;
    const [x0, x1] = this.axisRange(c, 0, wg), [y0, y1] = this.axisRange(r, 1, grid[0]);
    return [x0, y0, x1, y1];
  };
  /** grid_to_image's sampling along one axis of an nOut-pixel view: grid coordinate
   * (float32, as OpenCV's map) and whether the model saw the pixel. */
  Geometry.prototype.displayToGrid = function (nOut, axis, nGrid) {
    const s0 = this.size0[axis], sr = this.sizer[axis], off = this.off[axis], si = this.sizeIn[axis];
    const [p, q] = this.cellWidth(axis, nGrid), limit = Math.min(si, nGrid * p / q);
    const coord = new Float64Array(nOut), inside = new Uint8Array(nOut);
    for (let i = 0; i < nOut; i++) {
      const u = (i + 0.5) * s0 / nOut * sr / s0 - off;
      inside[i] = u >= 0 && u < limit ? 1 : 0;
      coord[i] = f32(u * q / p - 0.5);
    }
    return {coord, inside};
  };

  // ----- rows (visattn/records.py) ---------------------------------------------------------
  function softmaxInPlace(logits, from, to) {
    let max = -Infinity;
    for (let j = from; j < to; j++) if (logits[j] > max) max = logits[j];
    let sum = 0;
    for (let j = from; j < to; j++) { const e = Math.exp(logits[j] - max); logits[j] = e; sum += e; }
    for (let j = from; j < to; j++) logits[j] /= sum;
  }

  function dotRows(keys, keyOffset, q, qOffset, d) {
    let s = 0;
    for (let k = 0; k < d; k++) s += keys[keyOffset + k] * q[qOffset + k];
    return s;
  }

  /** Affinity.logits + softmax for one head: scale * K q_i (+ relative-position logits). */
  function affinityRow(L, i, head, out) {
    const [h, w] = L.grid, n = h * w, d = L.d, Q = L.queries, K = L.keys;
    const qo = (head * n + i) * d, ko = head * n * d;
    for (let j = 0; j < n; j++) out[j] = dotRows(K, ko + j * d, Q, qo, d);
    if (L.relative) {
      const r = Math.floor(i / w), c = i - r * w;
      const rows = new Float64Array(h), cols = new Float64Array(w);
      for (let a = 0; a < h; a++) rows[a] = dotRows(L.height_rel, (h - 1 - r + a) * d, Q, qo, d);
      for (let b = 0; b < w; b++) cols[b] = dotRows(L.width_rel, (w - 1 - c + b) * d, Q, qo, d);
      for (let a = 0; a < h; a++) for (let b = 0; b < w; b++) {
        const j = a * w + b, extra = rows[a] + cols[b];
        out[j] = L.extra_scaled ? (out[j] + extra) * L.scale : out[j] * L.scale + extra;
      }
    } else {
      for (let j = 0; j < n; j++) out[j] *= L.scale;
    }
    softmaxInPlace(out, 0, n);
  }

  /** The cells of query i's cross (its column, then its row without itself). */
  function crossCells(grid, i) {
    const [h, w] = grid, r = Math.floor(i / w), c = i - r * w, cells = [];
    for (let a = 0; a < h; a++) cells.push(a * w + c);
    for (let b = 0; b < w; b++) if (b !== c) cells.push(r * w + b);
    return cells;
  }

  /** CrissCross row on its cross only: {cells, weights} (zero elsewhere). */
  function crissCrossSparse(L, i, head) {
    const n = L.grid[0] * L.grid[1], d = L.d, qo = (head * n + i) * d, ko = head * n * d;
    const cells = crossCells(L.grid, i), weights = new Float64Array(cells.length);
    for (let t = 0; t < cells.length; t++) weights[t] = dotRows(L.keys, ko + cells[t] * d, L.queries, qo, d) * L.scale;
    softmaxInPlace(weights, 0, cells.length);
    return {cells, weights};
  }

  function crissCrossRow(L, i, head, out) {
    out.fill(0);
    const {cells, weights} = crissCrossSparse(L, i, head);
    for (let t = 0; t < cells.length; t++) out[cells[t]] = weights[t];
  }

  /** A^2 distribute rows: row_i = distribute[:, i] @ gather. */
  function distributeRow(L, i, head, out) {
    const n = L.grid[0] * L.grid[1], m = L.gather.length / n;
    out.fill(0);
    for (let k = 0; k < m; k++) {
      const wk = L.distribute[k * n + i];
      for (let j = 0; j < n; j++) out[j] += wk * L.gather[k * n + j];
    }
  }

  /** Row of a layer with several heads: head null -> the mean of the heads' rows. */
  function rowOf(model, L, i, head) {
    const n = L.grid[0] * L.grid[1], out = new Float64Array(n);
    if (L.kind === "twohop") return twoHopRow(model, L, i);
    const one = {affinity: affinityRow, crisscross: crissCrossRow, distribute: distributeRow}[L.kind];
    if (!one) throw new Error("no row function for " + L.kind);
    if (head !== null || L.heads === 1) { one(L, i, head === null ? 0 : head, out); return out; }
    const tmp = new Float64Array(n);
    for (let h = 0; h < L.heads; h++) { one(L, i, h, tmp); for (let j = 0; j < n; j++) out[j] += tmp[j]; }
    for (let j = 0; j < n; j++) out[j] /= L.heads;
    return out;
  }

  /** TwoHop: row_i = sum_j second.row(i)[j] * first.row(j), over the second hop's cross. */
  function twoHopRow(model, L, i) {
    const first = model.layers[L.first], second = model.layers[L.second];
    const n = L.grid[0] * L.grid[1], out = new Float64Array(n);
    const via = rowOf(model, second, i, null);
    const sparse = first.kind === "crisscross" && first.heads === 1;
    for (let j = 0; j < n; j++) {
      if (via[j] === 0) continue;
      if (sparse) {
        const {cells, weights} = crissCrossSparse(first, j, 0);
        for (let t = 0; t < cells.length; t++) out[cells[t]] += via[j] * weights[t];
      } else {
        const r = rowOf(model, first, j, null);
        for (let k = 0; k < n; k++) out[k] += via[j] * r[k];
      }
    }
    return out;
  }

  /** Jensen-Shannon divergence in bits (analysis._js_divergence). */
  function jsDivergence(p, q) {
    let a = 0, b = 0;
    for (let j = 0; j < p.length; j++) {
      const m = 0.5 * (p[j] + q[j]);
      if (p[j] > 0) a += p[j] * Math.log2(p[j] / m);
      if (q[j] > 0) b += q[j] * Math.log2(q[j] / m);
    }
    return 0.5 * a + 0.5 * b;
  }

  // ----- the model of one analysis -----------------------------------------------------------
  /** Decode a payload: layers by key with Float32Array inputs, the Geometry, the LUTs. */
  function loadPayload(payload) {
    const layers = {};
    for (const spec of payload.layers) {
      const L = Object.assign({}, spec);
      for (const [name, enc] of Object.entries(spec.arrays || {})) L[name] = decode(enc);
      if (spec.beside) L.besideValues = decode(spec.beside.values);
      if (L.queries) L.d = spec.arrays.queries.shape[2];
      L.refRows = {};
      layers[spec.key] = L;
    }
    return {payload, layers, geometry: new Geometry(payload.geometry),
            order: payload.layers.filter(l => !l.hidden).map(l => l.key)};
  }

  /** analysis.query_dependence: mean JS divergence to the rows of the reference cells. */
  function queryDependence(model, L, cell, head, row) {
    const key = head === null ? "mean" : String(head);
    const cache = L.refRows[key] || (L.refRows[key] = {});
    const refs = L.refs.filter(j => j !== cell);
    if (!refs.length) return 0;
    let sum = 0;
    for (const j of refs) {
      const ref = cache[j] || (cache[j] = rowOf(model, L, j, head));
      sum += jsDivergence(row, ref);
    }
    return sum / refs.length;
  }

  // ----- drawing (render.overlay, render.draw_box) --------------------------------------------
  // Pixels are written as one little-endian RGBA word (every browser's byte order).
  const rgba = (r, g, b) => (0xff000000 | (b << 16) | (g << 8) | r) >>> 0;

  function Painter(model, photo) {
    this.model = model; this.photo = photo;  // Uint8ClampedArray RGBA of the shown image
    this.w = model.payload.photo.width; this.h = model.payload.photo.height;
    const n = this.w * this.h, gain = f32(model.payload.unseen_gain);
    this.samplers = {}; this.blends = {};
    this.r = new Uint16Array(n); this.g = new Uint16Array(n); this.b = new Uint16Array(n);
    this.dim = new Uint32Array(n);  // render.overlay: unseen pixels, cv2.convertScaleAbs(img, 0.35)
    for (let p = 0; p < n; p++) {
      const r = photo[p * 4], g = photo[p * 4 + 1], b = photo[p * 4 + 2];
      this.r[p] = r << 8; this.g[p] = g << 8; this.b[p] = b << 8;
      this.dim[p] = rgba(roundHalfEven(f32(r * gain)), roundHalfEven(f32(g * gain)), roundHalfEven(f32(b * gain)));
    }
  }
  /** cv2.addWeighted(photo, 1 - alpha, colour, alpha, 0) for every (photo, colour) byte pair. */
  Painter.prototype.blend = function (alpha) {
    if (this.blends[alpha]) return this.blends[alpha];
    const t = new Uint8Array(65536), fa = f32(1 - alpha), fb = f32(alpha);
    for (let p = 0; p < 256; p++) for (let c = 0; c < 256; c++) {
      const v = roundHalfEven(f32(p * fa + c * fb));
      t[(p << 8) | c] = v < 0 ? 0 : v > 255 ? 255 : v;
    }
    return (this.blends[alpha] = t);
  };
  /** Geometry.grid_to_image's bilinear sampling for one grid, per display column and row. */
  Painter.prototype.sampler = function (grid) {
    const key = grid.join("x");
    if (this.samplers[key]) return this.samplers[key];
    const g = this.model.geometry, axis = (nOut, ax, nGrid) => {
      const {coord, inside} = g.displayToGrid(nOut, ax, nGrid);
      const i0 = new Int32Array(nOut), i1 = new Int32Array(nOut), wt = new Float64Array(nOut);
      let from = nOut, to = 0;  // the pixels the model saw: one contiguous run
      for (let i = 0; i < nOut; i++) {
        const fl = Math.floor(coord[i]);
        wt[i] = f32(coord[i] - fl);
        i0[i] = Math.min(Math.max(fl, 0), nGrid - 1); i1[i] = Math.min(Math.max(fl + 1, 0), nGrid - 1);
        if (inside[i]) { from = Math.min(from, i); to = i + 1; }
      }
      return {i0, i1, wt, from, to};
    };
    return (this.samplers[key] = {x: axis(this.w, 0, grid[1]), y: axis(this.h, 1, grid[0]),
                                   tmp: new Float64Array(grid[0] * this.w),
                                   heat: new Float32Array(this.w * this.h)});
  };
  /** render.map_on_image + overlay: the row resampled onto the photo (float32, as
   * cv2.remap gives it), min-max over the seen pixels, lookup table, blend; unseen dimmed. */
  Painter.prototype.paint = function (row, grid, alpha, lut, out, fromZero) {
    const S = this.sampler(grid), W = this.w, H = this.h, wg = grid[1];
    const {x: sx, y: sy, tmp, heat} = S, x0 = sx.from, x1 = sx.to;
    for (let r = 0; r < grid[0]; r++) {
      const base = r * wg, o = r * W;
      for (let x = x0; x < x1; x++) tmp[o + x] = row[base + sx.i0[x]] * (1 - sx.wt[x]) + row[base + sx.i1[x]] * sx.wt[x];
    }
    let lo = Infinity, hi = -Infinity;
    for (let y = sy.from; y < sy.to; y++) {
      const a = sy.i0[y] * W, b = sy.i1[y] * W, wy = sy.wt[y], o = y * W;
      for (let x = x0; x < x1; x++) {
        heat[o + x] = tmp[a + x] * (1 - wy) + tmp[b + x] * wy;
        const h = heat[o + x];  // float32, as cv2.remap gives it
        if (h < lo) lo = h;
        if (h > hi) hi = h;
      }
    }
    if (fromZero) lo = Math.min(lo, 0);  // render.normalize(from_zero=True)
    const span = f32(hi - lo), flat = !(hi - lo >= 1e-12), table = this.blend(alpha);
    const lr = new Uint8Array(256), lg = new Uint8Array(256), lb = new Uint8Array(256);
    for (let k = 0; k < 256; k++) { lr[k] = lut[3 * k]; lg[k] = lut[3 * k + 1]; lb[k] = lut[3 * k + 2]; }
    const px = new Uint32Array(out.data.buffer), dim = this.dim, R = this.r, G = this.g, B = this.b;
    px.set(dim);
    // normalize + convertScaleAbs(255): round((v - lo) / span * 255); a constant map -> 128.
    // (Double rather than float32 arithmetic: a level differs only within ~1e-7 of a rounding
    // boundary, and it halves the cost of a frame.)
    const toLevel = flat ? 0 : 255 / span, base = flat ? 128 : 0;
    for (let y = sy.from; y < sy.to; y++) {
      for (let p = y * W + x0, end = y * W + x1; p < end; p++) {
        let k = (base + (heat[p] - lo) * toLevel + 0.5) | 0;  // >= 0 here: | 0 floors
        k = k < 0 ? 0 : k > 255 ? 255 : k;
        px[p] = 0xff000000 | (table[B[p] | lb[k]] << 16) | (table[G[p] | lg[k]] << 8) | table[R[p] | lr[k]];
      }
    }
  };
  /** render.draw_box: the query cell's photo box outlined at the display scale. */
  Painter.prototype.box = function (box, out, marker) {
    const scale = this.w / this.model.geometry.size0[0];
    const [x0, y0, x1f, y1f] = box.map(v => Math.floor(v * scale));
    const x1 = Math.max(x1f - 1, x0), y1 = Math.max(y1f - 1, y0);
    const t = Math.max(1, roundHalfEven(2 * Math.min(1, scale) + 0.5)), r = t === 1 ? 0 : Math.ceil(t / 2);
    const set = (x, y) => {
      if (x < 0 || y < 0 || x >= this.w || y >= this.h) return;
      const o = (y * this.w + x) * 4;
      out.data[o] = marker[0]; out.data[o + 1] = marker[1]; out.data[o + 2] = marker[2]; out.data[o + 3] = 255;
    };
    for (let x = x0; x <= x1; x++) for (let d = -r; d <= r; d++) { set(x, y0 + d); set(x, y1 + d); }
    for (let y = y0; y <= y1; y++) for (let d = -r; d <= r; d++) { set(x0 + d, y); set(x1 + d, y); }
  };

  // ----- the view -----------------------------------------------------------------------------
  const fmt = v => Number(v.toPrecision(3)).toString();

  function HoverView(root, options) {
    this.root = root; this.options = options || {};
    this.q = sel => root.querySelector(sel);
    this.canvas = this.q(".va-canvas"); this.ctx = this.canvas.getContext("2d", {willReadFrequently: true});
    this.model = null; this.layerKey = null; this.head = null;
    this.alpha = 0.5; this.cmap = "jet"; this.pending = null; this.frame = 0; this.last = null;
    this.latencies = [];
    this.bind();
    if (global.ResizeObserver) {  // the colour bar as wide as the photo is shown
      const bar = this.q(".va-bar");
      new ResizeObserver(() => { bar.style.width = this.canvas.clientWidth + "px"; }).observe(this.canvas);
    }
  }
  HoverView.prototype.bind = function () {
    const c = this.canvas;
    c.addEventListener("pointermove", e => {
      this.pointer = [e.clientX, e.clientY];  // fractional, unlike a click's coordinates
      this.request({client: this.pointer, t0: e.timeStamp});
    });
    c.addEventListener("click", e => {
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
  };
  HoverView.prototype.message = function (text) { this.q(".va-msg").textContent = text || ""; };

  /** A new analysis: decode it, load the photo, draw the centre query. */
  HoverView.prototype.setPayload = function (payload) {
    if (!payload || !payload.layers) {
      this.model = null; this.canvas.width = 0; this.canvas.height = 0;
      this.q(".va-numbers").textContent = ""; this.q(".va-layer").innerHTML = ""; this.q(".va-head").innerHTML = "";
      this.message(payload && payload.message ? payload.message
        : "Analyse a photo with a network that has pairwise attention to point at its pixels.");
      return Promise.resolve();
    }
    const model = loadPayload(payload);
    this.alpha = payload.alpha; this.cmap = payload.cmap;
    return decodePhoto(payload.photo).then(photo => {
      this.model = model; this.painter = new Painter(model, photo);
      this.canvas.width = payload.photo.width; this.canvas.height = payload.photo.height;
      this.image = this.ctx.createImageData(payload.photo.width, payload.photo.height);
      this.fillControls();
      this.setLayer(model.order[0]);
    });
  };
  HoverView.prototype.fillControls = function () {
    const m = this.model, layerSel = this.q(".va-layer"), cmapSel = this.q(".va-cmap");
    layerSel.innerHTML = "";
    for (const key of m.order) {
      const L = m.layers[key];
      layerSel.add(new Option(`${key} (${L.grid[0]}×${L.grid[1]}${L.heads > 1 ? `, ${L.heads} heads` : ""})`, key));
    }
    cmapSel.innerHTML = "";
    for (const name of Object.keys(m.payload.luts)) cmapSel.add(new Option(name, name));
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
    this.message(L.kind === "server" ? L.reason
      : `Rows computed in this page from the layer's ${L.precision} inputs; nothing is sent to the server while you point.`);
    const [h, w] = L.grid, centre = Math.floor(h / 2) * w + Math.floor(w / 2);
    const box = this.model.geometry.cellBox(centre, L.grid);
    this.last = null;
    this.drawBeside();
    this.request({photo: [Math.floor((box[0] + box[2]) / 2), Math.floor((box[1] + box[3]) / 2)], t0: null});
  };
  HoverView.prototype.setAlpha = function (a) { this.alpha = Number(a); this.redraw(); };
  HoverView.prototype.setColormap = function (c) { this.cmap = c; this.q(".va-cmap").value = c; this.redraw(); };
  HoverView.prototype.redraw = function () {
    this.drawBeside();
    if (this.last) { this.last = Object.assign({}, this.last, {stale: true}); this.request({photo: [this.last.x, this.last.y], t0: null}); }
  };
  /** A map the layer made beside its rows (DNL's unary map), on the photo like a row. */
  HoverView.prototype.drawBeside = function () {
    const fig = this.q(".va-beside"), L = this.model && this.model.layers[this.layerKey];
    fig.hidden = !(L && L.besideValues);
    if (fig.hidden) return;
    const p = this.model.payload.photo, out = new ImageData(p.width, p.height);
    this.painter.paint(L.besideValues, L.grid, this.alpha, this.model.payload.luts[this.cmap], out);
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
    this.draw(xy[0], xy[1], where.t0);
    this.busy = true;  // until the next frame
    this.nextFrame();
  };
  /** Client coordinates -> photo pixel, through the canvas's on-screen box. */
  HoverView.prototype.photoPixel = function (client) {
    const rect = this.canvas.getBoundingClientRect();
    const cx = (client[0] - rect.left) * this.canvas.width / rect.width;
    const cy = (client[1] - rect.top) * this.canvas.height / rect.height;
    const [w0, h0] = this.model.geometry.size0;
    if (cx < 0 || cy < 0 || cx >= this.canvas.width || cy >= this.canvas.height) return null;
    return [Math.min(w0 - 1, Math.floor(cx * w0 / this.canvas.width)),
            Math.min(h0 - 1, Math.floor(cy * h0 / this.canvas.height))];
  };
  HoverView.prototype.draw = function (x, y, t0) {
    const m = this.model, L = m.layers[this.layerKey];
    if (L.kind === "server") {  // the photo alone; a click asks the server for the row
      this.image.data.set(this.painter.photo);
      this.ctx.putImageData(this.image, 0, 0);
      this.last = {x, y, cell: null, key: this.layerKey, head: this.head};
      this.q(".va-numbers").innerHTML = `<p>Photo pixel <b>(${x}, ${y})</b>: click to have the server draw its row.</p>`;
      return;
    }
    let cell = m.geometry.toGrid(x, y, L.grid, false);
    const outside = cell === null;
    if (outside) cell = m.geometry.toGrid(x, y, L.grid, true);
    const same = this.last && !this.last.stale && this.last.cell === cell && this.last.key === this.layerKey && this.last.head === this.head;
    const row = same ? this.last.rowValues : rowOf(m, L, cell, this.head);
    if (!same) {
      this.painter.paint(row, L.grid, this.alpha, m.payload.luts[this.cmap], this.image, this.fromZero);
      this.painter.box(m.geometry.cellBox(cell, L.grid), this.image, m.payload.marker);
      this.ctx.putImageData(this.image, 0, 0);
    }
    const score = same ? this.last.score : queryDependence(m, L, cell, this.head, row);
    this.last = {x, y, cell, key: this.layerKey, head: this.head, rowValues: row, score, outside};
    this.numbers(L, row, score);
    const api = global.visattn || (global.visattn = {});
    api.lastRow = {x, y, cell, grid: L.grid.slice(), row: Array.from(row), layer: this.layerKey,
                   head: this.head, queryDependence: score};
    api.drawn = (api.drawn || 0) + 1;
    if (t0 !== null && t0 !== undefined) this.latencies.push(performance.now() - t0);
  };
  HoverView.prototype.numbers = function (L, row, score) {
    const m = this.model, {x, y, cell, outside} = this.last, [h, w] = L.grid;
    let best = 0, lo = Infinity;
    for (let j = 0; j < row.length; j++) { if (row[j] > row[best]) best = j; if (row[j] < lo) lo = row[j]; }
    const bb = m.geometry.cellBox(best, L.grid), r = Math.floor(cell / w), br = Math.floor(best / w);
    const hi = row[best], flat = hi > 0 && (hi - lo) / hi < 0.01, from = this.fromZero ? Math.min(lo, 0) : lo;
    this.q(".va-numbers").innerHTML =
      `<p>Photo pixel <b>(${x}, ${y})</b> → cell <b>(row ${r}, col ${cell - r * w})</b> of the ${h}×${w} grid` +
      (outside ? " — outside the region the model saw; the nearest cell is shown" : "") + ".</p>" +
      `<p>Row maximum <b>${fmt(hi)}</b> at cell (row ${br}, col ${best - br * w}), around pixel (${(bb[0] + bb[2]) >> 1}, ${(bb[1] + bb[3]) >> 1}).` +
      (flat ? (this.fromZero ? " The row is nearly uniform (spread under 1 % of its maximum)."
                             : " The row is nearly uniform (spread under 1 % of its maximum): its colours stretch tiny differences; tick “Colours from 0” to see it as it is.") : "") + "</p>" +
      `<p>Query dependence <b>${score.toFixed(3)}</b> (0 = the same row wherever you point, 1 = specific to this pixel).</p>`;
    const bar = this.q(".va-ramp"), lut = m.payload.luts[this.cmap], stops = [];
    for (let k = 0; k <= 16; k++) { const i = Math.min(255, k * 16) * 3; stops.push(`rgb(${lut[i]},${lut[i + 1]},${lut[i + 2]})`); }
    bar.style.background = `linear-gradient(to right, ${stops.join(",")})`;
    this.q(".va-lo").textContent = fmt(from); this.q(".va-hi").textContent = fmt(hi);
  };
  /** Arrow keys: the query moves one cell; the new query is the cell's centre pixel. */
  HoverView.prototype.key = function (e) {
    const step = {ArrowLeft: [0, -1], ArrowRight: [0, 1], ArrowUp: [-1, 0], ArrowDown: [1, 0]}[e.key];
    if (e.key === "Enter" || e.key === " ") { e.preventDefault(); this.pin(); return; }
    if (!step || !this.model || !this.last) return;
    e.preventDefault();
    const L = this.model.layers[this.layerKey], [h, w] = L.grid;
    const r = Math.min(h - 1, Math.max(0, Math.floor(this.last.cell / w) + step[0]));
    const c = Math.min(w - 1, Math.max(0, this.last.cell % w + step[1]));
    const box = this.model.geometry.cellBox(r * w + c, L.grid);
    if (box[2] <= box[0] || box[3] <= box[1]) return;  // a cell smaller than a photo pixel
    this.request({photo: [(box[0] + box[2] - 1) >> 1, (box[1] + box[3] - 1) >> 1], t0: e.timeStamp});
    this.flush();
  };
  HoverView.prototype.pin = function () {
    if (!this.last || !this.options.onPin) return;
    this.options.onPin({layer: this.layerKey, head: this.head, x: this.last.x, y: this.last.y});
  };

  function decodePhoto(photo) {
    const img = new Image();
    img.src = photo.src;
    return img.decode().then(() => {
      const c = document.createElement("canvas");
      c.width = photo.width; c.height = photo.height;
      const ctx = c.getContext("2d", {willReadFrequently: true});
      ctx.drawImage(img, 0, 0);
      return ctx.getImageData(0, 0, photo.width, photo.height).data;
    });
  }

  // ----- mounting --------------------------------------------------------------------------
  /** Inside Gradio's gr.HTML (js_on_load): the payload is the component's value; a click
   * pins the query through the component's 'pin' event. */
  function mountGradio(element, props, trigger, watch) {
    const view = new HoverView(element.querySelector(".va-hover"), {onPin: q => trigger("pin", q)});
    const api = global.visattn || (global.visattn = {});
    api.view = view;
    api.setAlpha = a => view.setAlpha(a);
    api.setColormap = c => view.setColormap(c);
    api.ready = view.setPayload(props.value);
    watch("value", () => { api.ready = view.setPayload(props.value); });
    return view;
  }

  /** A standalone page (viewer.html): payload embedded, its own colour map and opacity. */
  function mountStandalone(root, payload) {
    const pinned = [];
    const view = new HoverView(root, {standalone: true, onPin: q => {
      pinned.push(q);
      root.querySelector(".va-msg").textContent = "Pinned: " + pinned.map(p => `(${p.x}, ${p.y}) on ${p.layer}`).join("; ");
    }});
    const api = global.visattn || (global.visattn = {});
    api.view = view; api.pinned = pinned;
    api.ready = view.setPayload(payload);
    return view;
  }

  global.VisAttnHover = {decode, roundHalfEven, floorDiv, Geometry, loadPayload, rowOf, queryDependence,
                         jsDivergence, Painter, HoverView, mountGradio, mountStandalone, decodePhoto};
})(window);
