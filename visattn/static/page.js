/* VisAttn's page around the views (loaded once by launch(js=...), see ui/page.py):
 *   - after an analysis, the open view is brought into the viewport (the hover canvas, or
 *     the Overview's maps), with as little scrolling as that takes;
 *   - the network list closes on Escape and when focus leaves it;
 *   - example buttons get names, result images alt text (from their captions or labels);
 *   - the examples are one Tab stop (arrow keys move between them), the processing-size
 *     radios one group, so Analyse is a few Tab stops from the top.
 *   - from an analysis' answer to the refresh of the tabs that are not open (once the open
 *     view is drawn), a click on a tab waits for that refresh, then applies: no tab shows
 *     the previous analysis;
 * window.visattnPage.shown = {tab, at} once the open view is drawn after an analysis. */
(function (global) {
  "use strict";
  if (global.visattnPage) return;
  const doc = global.document, page = global.visattnPage = {};
  const visible = el => !!el && el.getClientRects().length > 0 && el.getBoundingClientRect().width > 0;

  // ----- the open view, in view ---------------------------------------------------------------
  /** Scroll by the least amount that puts `el` inside the viewport (its top when it is
   * taller than the viewport). */
  page.reveal = function (el, margin) {
    margin = margin === undefined ? 8 : margin;
    const r = el.getBoundingClientRect(), h = global.innerHeight;
    if (r.top >= 0 && r.bottom <= h) return 0;
    const dy = r.height + 2 * margin > h || r.top < 0 ? r.top - margin : r.bottom - h + margin;
    global.scrollBy(0, dy);
    return dy;
  };
  /** The open tab's name (the page's tabs, #views). */
  function openTab() {
    const t = doc.querySelector("#views [role=tab][aria-selected=true]");
    return t ? t.textContent.trim() : "";
  }
  /** What shows the open tab's result: the hover view's photo and colour bar, the
   * Overview's gallery; else the open tab's panel. */
  function openView() {
    const panel = Array.from(doc.querySelectorAll("#views [role=tabpanel]")).find(visible);
    const tab = openTab();
    if (tab === "Non-local") {
      const hover = doc.querySelector("#nl-hover .va-main");
      return {tab: "nonlocal", el: visible(hover) ? hover : panel, ready: () => {
        const c = hover && hover.querySelector("canvas"), api = global.visattn || {};
        return visible(hover) && c && c.width > 0 && api.shownAt !== undefined && api.shownAt >= page.started;
      }};
    }
    if (tab === "Overview") {
      const maps = doc.querySelector("#maps");
      return {tab: "overview", el: maps, ready: () => {
        // its first map loaded (or refused: nothing more will come); no map after two frames:
        // a network without maps (the baseline), whose answer is already in the page
        const img = maps.querySelector("img");
        return img ? img.complete && !!img.currentSrc : page.frames >= 2;
      }};
    }
    return panel ? {tab: "other", el: panel, ready: () => true} : null;
  }
  /** After an analysis: wait (up to `ms`) until the open view is drawn, then reveal it;
   * `viewOnly`: wait for the Non-local or Overview tab to be the open one first (the
   * Families page's Open switches tabs in the same answer). */
  page.bringIntoView = function (ms, viewOnly) {
    page.asked = performance.now();
    page.frames = 0;
    const until = page.asked + (ms || 8000);
    return new Promise(resolve => {
      const step = () => {
        page.frames++;
        const v = openView();
        if (v && !(viewOnly && v.tab === "other") && v.ready()) {
          page.shown = {tab: v.tab, at: performance.now()};
          page.reveal(v.el);
          resolve(page.shown);
        } else if (performance.now() > until) {
          resolve(null);
        } else {
          requestAnimationFrame(step);
        }
      };
      step();
    });
  };
  /** Analyse pressed: the moment views drawn after it are measured from. */
  page.analysing = function () { page.started = performance.now(); page.shown = null; };
  /** An analysis answered: tab clicks wait (page.releaseTabs) until the other tabs are
   * refreshed, which is once the open view is drawn (or `ms` passed). */
  page.drawn = function (ms) {
    page.holding = true;
    return Promise.race([page.bringIntoView(), new Promise(r => setTimeout(r, ms || 1500))]);
  };

  // ----- tab clicks while the tabs are refreshed ------------------------------------------------
  function viewTab(target) {
    const tab = target && target.closest ? target.closest("[role=tab], .overflow-dropdown button") : null;
    return tab && tab.closest(".tabs") === doc.querySelector("#views") ? tab : null;
  }
  doc.addEventListener("click", e => {
    const tab = page.holding ? viewTab(e.target) : null;
    if (!tab) return;
    e.preventDefault();
    e.stopImmediatePropagation();
    page.heldTab = tab;
  }, true);
  /** The tabs are refreshed (or the analysis failed): a tab clicked meanwhile opens now. */
  page.releaseTabs = function () {
    page.holding = false;
    const tab = page.heldTab;
    page.heldTab = null;
    if (tab && tab.isConnected) tab.click();
  };

  // ----- the network list: Escape and leaving focus close it ------------------------------------
  function picker(target) { return target && target.closest ? target.closest("#model") : null; }
  doc.addEventListener("keydown", e => {
    const box = picker(e.target);
    if (!box) return;
    if (e.key === "Escape") box.setAttribute("data-va-closed", "");
    else if (e.key === "ArrowDown" || e.key === "ArrowUp" || e.key.length === 1 || e.key === "Backspace")
      box.removeAttribute("data-va-closed");
  }, true);
  doc.addEventListener("focusin", e => { const box = picker(e.target); if (box) box.removeAttribute("data-va-closed"); }, true);
  doc.addEventListener("mousedown", e => { const box = picker(e.target); if (box && !e.target.closest(".options")) box.removeAttribute("data-va-closed"); }, true);
  doc.addEventListener("focusout", e => {
    const box = picker(e.target);
    if (!box) return;
    // after a click on an option has chosen it (the list takes focus for a moment)
    setTimeout(() => { if (!box.contains(doc.activeElement)) box.setAttribute("data-va-closed", ""); }, 200);
  }, true);

  // ----- names, alt texts, Tab stops ------------------------------------------------------------
  function fileTitle(src) {
    const name = decodeURIComponent(String(src || "").split(/[?#]/)[0].split("/").pop() || "");
    return name.replace(/\.[a-z0-9]+$/i, "").replace(/[_-]+/g, " ").trim();
  }
  function labelOf(block) {
    const l = block && block.querySelector("[data-testid=block-label], label, .label");
    return l ? l.textContent.trim() : "";
  }
  function name() {
    // example buttons: "Example photo: astronaut"; one Tab stop, arrows move among them
    const examples = Array.from(doc.querySelectorAll(".gallery-item, button.gallery-item"))
      .filter(b => b.querySelector("img") && !b.closest("#maps"));
    examples.forEach((b, i) => {
      const img = b.querySelector("img"), title = fileTitle(img.getAttribute("src"));
      if (!b.getAttribute("aria-label")) b.setAttribute("aria-label", `Example photo ${i + 1}: ${title}`);
      if (!img.getAttribute("alt")) img.setAttribute("alt", "");  // named by its button
      if (!b.hasAttribute("data-va-roving")) {
        b.setAttribute("data-va-roving", "");
        b.addEventListener("keydown", e => {
          const all = Array.from(doc.querySelectorAll("[data-va-roving]")), k = all.indexOf(b);
          const to = {ArrowRight: k + 1, ArrowDown: k + 1, ArrowLeft: k - 1, ArrowUp: k - 1, Home: 0, End: all.length - 1}[e.key];
          if (to === undefined || !all[to]) return;
          e.preventDefault();
          all.forEach(x => x.setAttribute("tabindex", "-1"));
          all[to].setAttribute("tabindex", "0");
          all[to].focus();
        });
      }
    });
    const roving = Array.from(doc.querySelectorAll("[data-va-roving]"));
    if (roving.length && !roving.some(b => b.getAttribute("tabindex") === "0"))
      roving.forEach((b, i) => b.setAttribute("tabindex", i ? "-1" : "0"));
    // result images: their caption, else their component's label
    for (const img of doc.querySelectorAll("img:not([alt]), img[alt='']")) {
      if (img.closest("[data-va-roving]")) continue;
      const item = img.closest(".thumbnail-item, .gallery-item, button, figure");
      const cap = item && item.querySelector(".caption-label, figcaption");
      const block = img.closest(".block, .va-beside");
      const text = (cap && cap.textContent.trim()) || labelOf(block) ||
        (block && block.id ? block.id.replace(/[-_]/g, " ") : "") || "Result image";
      img.setAttribute("alt", text);
    }
    // the processing-size radios: one group, one Tab stop
    const radios = doc.querySelectorAll("#seg-size input[type=radio]");
    radios.forEach(r => { if (r.name !== "va-seg-size") r.name = "va-seg-size"; });
  }
  let queued = false;
  const observer = new MutationObserver(() => {
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => { queued = false; name(); });
  });
  function start() { name(); observer.observe(doc.body, {subtree: true, childList: true, attributes: true, attributeFilter: ["src"]}); }
  if (doc.body) start(); else doc.addEventListener("DOMContentLoaded", start);

  // ----- a network chosen during a run: analysed next ------------------------------------------
  /** After an analysis: if the picker names another network than the one analysed, press
   * Analyse again (the note under the button said it was queued). */
  page.runQueued = function (chosen, analysed) {
    if (chosen && analysed && chosen !== analysed) {
      const go = doc.querySelector("#analyse");
      if (go) setTimeout(() => go.click(), 0);
      return true;
    }
    return false;
  };
})(window);
