/* VisAttn hover view, its arithmetic: no page, no drawing. Under Node it is a module
 * (require("visattn/static/hover_math.js")); in a page it is the global VisAttnMath.
 *
 * Mirrors, for the payload visattn/hover.py sends (its fields: hover.SCHEMA):
 *   Geometry (visattn/geometry.py)   pixel <-> cell, cell boxes and centres, grid -> display sampling
 *   record rows (visattn/records.py) Affinity (+ relative positions), CrissCross, TwoHop,
 *                                    Distribute; several heads -> their mean
 *   SpaceTimeAffinity (records_video.py)  a clip's (T, h, w) query -> its row over the
 *                                    (T', h', w') keys; Clip.frame_span / time_cell
 *   analysis.query_dependence        mean Jensen-Shannon divergence to the reference cells
 *   hover.nearly_uniform             a row whose spread is under a fraction of its maximum
 *   hover.layer_inputs               a layers message filling layers the first message left
 *                                    pending (addLayers; needs: what a layer's rows wait for)
 */
(function (root, factory) {
  if (typeof module === "object" && module.exports) module.exports = factory();
  else if (!root.VisAttnMath) root.VisAttnMath = factory();
})(typeof globalThis !== "undefined" ? globalThis : this, function () {
  "use strict";

  /** The newest payload version (hover.SCHEMA_VERSION) this code understands. */
  const PAYLOAD_VERSION = 6;

  /** Why this code cannot show a payload (a sentence for the view), or null if it can. */
  function versionProblem(payload) {
    const v = payload.version;
    if (typeof v !== "number") return "This is not a VisAttn hover payload (it has no version).";
    if (v > PAYLOAD_VERSION)
      return `This view was made by a newer VisAttn (payload version ${v}); this page understands up to ${PAYLOAD_VERSION}. Reload the page, or open the view with the VisAttn that made it.`;
    return null;
  }

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
    if (enc.dtype === "u1") return bytes;
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
  /** Geometry.cell_centre: the photo pixel at the middle of a cell's box (a query of the cell). */
  Geometry.prototype.cellCentre = function (cell, grid) {
    const [x0, y0, x1, y1] = this.cellBox(cell, grid);
    return [floorDiv(x0 + x1, 2), floorDiv(y0 + y1, 2)];
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

  /** SpaceTimeAffinity.logits + softmax for one head: scale * K q_i over the M keys. */
  function spacetimeRow(L, i, head, out) {
    const [T, h, w] = L.grid, n = T * h * w, m = rowLength(L), d = L.d;
    const qo = (head * n + i) * d, ko = head * m * d;
    for (let j = 0; j < m; j++) out[j] = dotRows(L.keys, ko + j * d, L.queries, qo, d) * L.scale;
    softmaxInPlace(out, 0, m);
  }

  /** How long a layer's rows are: its keys (a space-time layer's key grid), else its grid. */
  function rowLength(L) {
    const g = L.key_grid || L.grid;
    return g.reduce((a, b) => a * b, 1);
  }

  /** Clip.time_cell: the time cell (of `cells`) that frame f of F falls in. */
  function timeCell(f, frames, cells) { return Math.floor(f * cells / frames); }
  /** Clip.frame_span: the frames [start, stop) of F that time cell t of `cells` covers. */
  function frameSpan(t, frames, cells) {
    return [Math.floor(t * frames / cells), Math.floor((t + 1) * frames / cells)];
  }
  /** A space-time layer's query cell of photo pixel (x, y) in frame f of F frames. */
  function spacetimeCell(geometry, L, f, frames, x, y, clamp) {
    const [T, h, w] = L.grid, s = geometry.toGrid(x, y, [h, w], clamp);
    return s === null ? null : timeCell(f, frames, T) * h * w + s;
  }

  const ONE_HEAD = {affinity: affinityRow, crisscross: crissCrossRow, distribute: distributeRow,
                    spacetime: spacetimeRow};

  /** Row of a layer with several heads: head null -> the mean of the heads' rows. */
  function rowOf(model, L, i, head) {
    const n = rowLength(L), out = new Float64Array(n);
    if (L.kind === "twohop") return twoHopRow(model, L, i);
    const one = ONE_HEAD[L.kind];
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

  // ----- what a row says ---------------------------------------------------------------------
  /** The row's maximum (its first cell) and minimum: {best, hi, lo}. */
  function peak(row) {
    let best = 0, lo = Infinity;
    for (let j = 0; j < row.length; j++) { if (row[j] > row[best]) best = j; if (row[j] < lo) lo = row[j]; }
    return {best, hi: row[best], lo};
  }

  /** hover.nearly_uniform: the spread (hi - lo) under `spread` times a positive maximum. */
  function nearlyUniform(hi, lo, spread) {
    return hi > 0 && (hi - lo) / hi < spread;
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
  /** One layer of a payload with its Float32Array inputs (none while it is pending). */
  function decodeLayer(spec) {
    const L = Object.assign({}, spec);
    for (const [name, enc] of Object.entries(spec.arrays || {})) L[name] = decode(enc);
    if (spec.beside) L.besideValues = decode(spec.beside.values);
    if (L.queries) L.d = spec.arrays.queries.shape[2];
    L.pending = !!spec.pending;
    L.refRows = {};
    return L;
  }

  /** Decode a payload: layers by key with Float32Array inputs, the colour tables
   * (Uint8Array RGB rows by name), the Geometry. */
  function loadPayload(payload) {
    const layers = {}, luts = {};
    for (const spec of payload.layers) layers[spec.key] = decodeLayer(spec);
    for (const [name, enc] of Object.entries(payload.luts)) luts[name] = decode(enc);
    return {payload, layers, luts, geometry: new Geometry(payload.geometry), analysis: payload.analysis,
            order: payload.layers.filter(l => !l.hidden).map(l => l.key)};
  }

  /** A layers message (hover.LAYERS_SCHEMA) for this analysis: its layers replace the
   * pending ones. -> the keys added ([] when it answers another analysis). */
  function addLayers(model, message) {
    if (!message || message.layers_of !== model.analysis) return [];
    const added = [];
    for (const spec of message.layers || []) {
      const old = model.layers[spec.key];
      if (!old || !old.pending) continue;  // unknown, or already here
      model.layers[spec.key] = decodeLayer(Object.assign({}, spec, {hidden: old.hidden}));
      added.push(spec.key);
    }
    return added;
  }

  /** The pending layers the rows of `key` need (itself, a two-hop's two hops). */
  function needs(model, key) {
    const L = model.layers[key];
    if (!L) return [];
    const keys = L.kind === "twohop" ? [key, L.first, L.second] : [key];
    return keys.filter(k => model.layers[k] && model.layers[k].pending);
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

  /** render.fit's enlargement (cv2.resize, INTER_NEAREST) of RGBA pixels (nw x nh) to
   * w x h: source column min(floor(x * (1 / (w / nw))), nw - 1), the same doubles as
   * OpenCV's, so the page shows the very pixels the server drew on. */
  function enlargeNearest(rgba, nw, nh, w, h) {
    const out = new Uint8ClampedArray(w * h * 4);
    const ifx = 1 / (w / nw), ify = 1 / (h / nh);
    const sx = new Int32Array(w);
    for (let x = 0; x < w; x++) sx[x] = Math.min(Math.floor(x * ifx), nw - 1);
    const src = new Uint32Array(rgba.buffer, rgba.byteOffset, nw * nh), dst = new Uint32Array(out.buffer);
    for (let y = 0; y < h; y++) {
      const row = Math.min(Math.floor(y * ify), nh - 1) * nw, o = y * w;
      for (let x = 0; x < w; x++) dst[o + x] = src[row + sx[x]];
    }
    return out;
  }

  /** The colour bar's two ends as text, with as many significant digits (3 to 8) as it
   * takes for them to differ; ends still equal at 8 digits (or equal values) -> same text. */
  function barEnds(lo, hi) {
    const text = (v, p) => Number(Number(v).toPrecision(p)).toString();
    for (let p = 3; p <= 8; p++) {
      const a = text(lo, p), b = text(hi, p);
      if (a !== b || p === 8) return [a, b];
    }
  }

  return {PAYLOAD_VERSION, versionProblem, f32, roundHalfEven, floorDiv, ceilDiv, decode, Geometry,
          rowOf, rowLength, timeCell, frameSpan, spacetimeCell, peak, nearlyUniform, jsDivergence, loadPayload,
          addLayers, needs, queryDependence, barEnds, enlargeNearest};
});
