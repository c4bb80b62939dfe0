/* VisAttn hover view, its drawing: a row on the photo as render.overlay and
 * render.draw_box draw it (bilinear upsampling, min-max, colour lookup table, blend,
 * darkened unseen region, query-cell outline), into an ImageData-like {data} buffer. A
 * clip's row is painted frame by frame on one colour scale (paint's `range`).
 * Needs VisAttnMath (hover_math.js) loaded first; the global VisAttnPaint in a page.
 */
(function (root, factory) {
  if (typeof module === "object" && module.exports) module.exports = factory(require("./hover_math.js"));
  else if (!root.VisAttnPaint) root.VisAttnPaint = factory(root.VisAttnMath);
})(typeof globalThis !== "undefined" ? globalThis : this, function (M) {
  "use strict";
  const f32 = M.f32, roundHalfEven = M.roundHalfEven;

  // Pixels are written as one little-endian RGBA word (every browser's byte order).
  const rgba = (r, g, b) => (0xff000000 | (b << 16) | (g << 8) | r) >>> 0;

  function Painter(model, photo) {
    this.model = model; this.photo = photo;  // Uint8ClampedArray RGBA of the shown image
    this.w = model.payload.photo.width; this.h = model.payload.photo.height;
    const n = this.w * this.h, gain = f32(model.payload.unseen_gain);
    this.samplers = {}; this.blends = {};
    this.r = new Uint8Array(n); this.g = new Uint8Array(n); this.b = new Uint8Array(n);
    this.dim = new Uint32Array(n);  // render.overlay: unseen pixels, cv2.convertScaleAbs(img, 0.35)
    const dimmed = new Uint8Array(256);  // that, per byte value
    for (let v = 0; v < 256; v++) dimmed[v] = roundHalfEven(f32(v * gain));
    for (let p = 0; p < n; p++) {
      const r = photo[p * 4], g = photo[p * 4 + 1], b = photo[p * 4 + 2];
      this.r[p] = r; this.g[p] = g; this.b[p] = b;
      this.dim[p] = rgba(dimmed[r], dimmed[g], dimmed[b]);
    }
  }
  /** cv2.addWeighted(photo, 1 - alpha, colour, alpha, 0) for every (colour, photo) byte pair,
   * at [colour << 8 | photo]: neighbouring pixels of a smooth row share a colour, so their
   * lookups stay in one 256-byte line of the table. */
  Painter.prototype.blend = function (alpha) {
    if (this.blends[alpha]) return this.blends[alpha];
    const t = new Uint8Array(65536), fa = f32(1 - alpha), fb = f32(alpha);
    for (let p = 0; p < 256; p++) for (let c = 0; c < 256; c++) {
      const v = roundHalfEven(f32(p * fa + c * fb));
      t[(c << 8) | p] = v < 0 ? 0 : v > 255 ? 255 : v;
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
  Painter.prototype.paint = function (row, grid, alpha, lut, out, fromZero, range) {
    const heat = this.resample(row, grid);
    let lo = heat.lo, hi = heat.hi;
    if (fromZero) lo = Math.min(lo, 0);  // render.normalize(from_zero=True)
    if (range) { lo = range[0]; hi = range[1]; }  // one scale for many frames (a clip's row)
    this.colour(heat, lo, hi, alpha, lut, out);
  };
  /** render.map_on_image: the row resampled onto the photo's seen pixels (float32, as
   * cv2.remap gives it) -> {grid, values, lo, hi}; the same for every Painter of this size
   * and Geometry (a clip's frames share it), valid until this Painter resamples that grid again. */
  Painter.prototype.resample = function (row, grid) {
    const S = this.sampler(grid), W = this.w, wg = grid[1];
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
    return {grid, values: heat, lo, hi};
  };
  /** render.overlay of a resampled row (this Painter's or another's of the same size) on this
   * photo: levels from lo..hi, colour lookup table, blend; unseen pixels dimmed. */
  Painter.prototype.colour = function (resampled, lo, hi, alpha, lut, out) {
    this.blendLevels(this.levels(resampled, lo, hi), alpha, lut, out);
  };
  /** render.normalize + convertScaleAbs: each seen pixel's colour level, 0..255, of a
   * resampled row on the scale lo..hi (a constant map -> 128) -> {grid, values: Uint8Array};
   * the same for every Painter of this size, valid until this Painter makes levels again. */
  Painter.prototype.levels = function (resampled, lo, hi) {
    const S = this.sampler(resampled.grid), W = this.w, heat = resampled.values;
    const {x: sx, y: sy} = S, x0 = sx.from, x1 = sx.to;
    const level = S.level || (S.level = new Uint8Array(W * this.h));
    const span = f32(hi - lo), flat = !(hi - lo >= 1e-12);
    // round((v - lo) / span * 255). (Double rather than float32 arithmetic: a level differs
    // only within ~1e-7 of a rounding boundary, and it halves the cost of a frame.)
    const toLevel = flat ? 0 : 255 / span, base = flat ? 128 : 0;
    for (let y = sy.from; y < sy.to; y++) {
      for (let p = y * W + x0, end = y * W + x1; p < end; p++) {
        const k = (base + (heat[p] - lo) * toLevel + 0.5) | 0;  // >= 0 here: | 0 floors
        level[p] = k < 0 ? 0 : k > 255 ? 255 : k;
      }
    }
    return {grid: resampled.grid, values: level};
  };
  /** cv2.applyColorMap + addWeighted on this photo for the colour levels (`levels`), the
   * unseen pixels dimmed: the frames of a clip that share a row's part share its levels. */
  Painter.prototype.blendLevels = function (levels, alpha, lut, out) {
    const S = this.sampler(levels.grid), W = this.w, level = levels.values;
    const {x: sx, y: sy} = S, x0 = sx.from, x1 = sx.to, table = this.blend(alpha);
    const lr = new Uint16Array(256), lg = new Uint16Array(256), lb = new Uint16Array(256);  // colour << 8
    for (let k = 0; k < 256; k++) { lr[k] = lut[3 * k] << 8; lg[k] = lut[3 * k + 1] << 8; lb[k] = lut[3 * k + 2] << 8; }
    const px = new Uint32Array(out.data.buffer), dim = this.dim, R = this.r, G = this.g, B = this.b;
    px.set(dim);
    for (let y = sy.from; y < sy.to; y++) {
      for (let p = y * W + x0, end = y * W + x1; p < end; p++) {
        const k = level[p];
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

  return {Painter};
});
