// ipyvirt.widgets.LoopMonitor: the loop's rates, its fd watches and timers, and its totals.
// The kernel takes the readings (a dict in the "reading" trait); this module only draws them.

function perSecond(value) {
  if (value === null || value === undefined) return "–";
  return value >= 10 || value === 0 ? value.toFixed(0) : value.toFixed(1);
}

function loopTile(label, value, warn) {
  return h("div", { class: `ipyvirt-tile${warn ? " ipyvirt-tile-warn" : ""}` },
    h("div", { class: "ipyvirt-tile-value" }, value),
    h("div", { class: "ipyvirt-tile-label" }, label));
}

/** A table of *rows* (objects) with *columns* [[key, header, numeric?, format?], ...]. */
function loopTable(caption, columns, rows, empty) {
  const head = h("tr", {}, columns.map(([, title, num]) =>
    h("th", { scope: "col", class: num ? "num" : undefined }, title)));
  const body = rows.length
    ? rows.map(row => h("tr", {}, columns.map(([key, , num, format]) => {
        const text = format ? format(row[key], row) : row[key];
        return h("td", { class: num ? "num" : `ipyvirt-lm-${key}` }, text === "" ? "–" : text);
      })))
    : [h("tr", {}, h("td", { colspan: columns.length, class: "ipyvirt-empty" }, empty))];
  return h("section", { class: "ipyvirt-lm-section" },
    h("h4", { class: "ipyvirt-lm-caption" }, caption, h("span", { class: "ipyvirt-lm-count" },
      rows.length ? ` ${rows.length}` : "")),
    h("table", { class: "ipyvirt-lm-table" }, h("thead", {}, head), h("tbody", {}, body)));
}

function intervalCell(label) {
  const kind = label === "disabled" ? "off" : label === "every iteration" ? "hot" : "on";
  return h("span", { class: `ipyvirt-interval ipyvirt-interval-${kind}` }, label);
}

function render({ model, el }) {
  const root = h("div", { class: "ipyvirt-view ipyvirt-loop-monitor" });
  el.append(root);

  function draw() {
    const r = model.get("reading") || {};
    const rates = r.rates;
    const totals = r.totals || {};
    const span = model.get("interval");
    const tiles = h("div", { class: "ipyvirt-tiles" },
      loopTile("dispatches/s", rates ? perSecond(rates.dispatches_per_s) : "–"),
      loopTile("timer fires/s", rates ? perSecond(rates.fires_per_s) : "–"),
      loopTile("frees/s", rates ? perSecond(rates.frees_per_s) : "–"),
      loopTile("frees owed", totals.pending_frees ?? "–", totals.pending_frees > 0),
      loopTile("callback errors", totals.callback_errors ?? "–", totals.callback_errors > 0));
    const note = h("div", { class: "ipyvirt-lm-note" },
      rates ? `rates over the last ${span} s` : "rates after the second reading",
      (r.loops || []).map(([loop, thread]) =>
        ` · ${loop} loop ${thread ? `on ${thread}` : "not run yet"}`));
    const watches = loopTable("fd watches", [
      ["id", "watch", true], ["fd", "fd", true], ["events", "events"],
      ["dispatches", "dispatches", true], ["per_s", "per s", true, perSecond],
      ["loop", "loop"], ["thread", "thread"],
    ], r.watches || [], "No fd watch: libvirt watches no socket here (an in-process driver such as test:///default has none).");
    const timers = loopTable("timers", [
      ["id", "timer", true], ["interval", "interval", false, intervalCell],
      ["fires", "fires", true], ["per_s", "per s", true, perSecond],
      ["loop", "loop"], ["thread", "thread"],
    ], r.timers || [], "No timer: libvirt asked for none.");
    const sums = h("div", { class: "ipyvirt-lm-totals" },
      `handles added ${totals.handles_added ?? 0}, removed ${totals.handles_removed ?? 0}` +
      ` · timeouts added ${totals.timeouts_added ?? 0}, removed ${totals.timeouts_removed ?? 0}` +
      ` · frees run ${totals.frees_run ?? 0}`);
    root.replaceChildren(tiles, note, watches, timers, sums);
  }

  draw();
  model.on("change:reading", draw);
  return () => model.off("change:reading", draw);
}

export default { render };
