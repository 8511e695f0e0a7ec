// The usage view: CPU % and memory of the running domains over the sampled window, as SVG
// charts drawn here (no library: the browser may have no internet), a legend and a table of
// the latest figures. The kernel owns the samples: this view asks for the window once
// ({do: "window"}), then receives one frame per poll ({kind: "frame"}) and keeps the last
// `history` of them. A frame is {t: seconds, domains: [[name, cpu % | null, MiB | null]]}.

const SVG_NS = "http://www.w3.org/2000/svg";
const COLOURS = 6; // --ipyvirt-series-0 .. -5 in usage.css
const CHART_HEIGHT = 180;
const PAD = { left: 62, right: 12, top: 10, bottom: 26 };

/** An SVG element, as h() makes an HTML one. */
function svg(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value !== undefined && value !== null && value !== false) el.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child !== undefined && child !== null && child !== false) {
      el.append(child instanceof Node ? child : String(child));
    }
  }
  return el;
}

/** A round step giving about *count* steps up to *top*: 1, 2, 2.5 or 5 times a power of 10. */
function niceStep(top, count, factors = [1, 2, 2.5, 5, 10]) {
  const raw = top / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  return factors.map((f) => f * power).find((step) => step >= raw * (1 - 1e-9));
}

/** A number as a tick shows it: no trailing zeros, at most two decimals. */
function num(value) {
  return String(Number(value.toFixed(2)));
}

/** The value axis of a chart: its top, its ticks, and how a value reads with its unit. */
function valueAxis(max, kind) {
  if (kind === "cpu") {
    const top = Math.max(max, 10); // idle domains: a 0-10 % scale, not a magnified 0-0.1 %
    const step = niceStep(top, 5);
    return axis(Math.ceil(top / step - 1e-9) * step, step, (v) => `${num(v)} %`);
  }
  const gib = max >= 1024;
  const scale = gib ? 1024 : 1;
  const top = Math.max(max / scale, 1);
  const step = niceStep(top, 4);
  const unit = gib ? "GiB" : "MiB";
  return axis(Math.ceil(top / step - 1e-9) * step * scale, step * scale, (v) => `${num(v / scale)} ${unit}`);
}

function axis(top, step, label) {
  const ticks = [];
  for (let v = 0; v <= top * (1 + 1e-9); v += step) ticks.push(v);
  return { top, ticks, label };
}

/** Time ticks, in seconds before the newest frame: "−60 s" ... "now". */
function timeTicks(span) {
  const minutes = span >= 180;
  const unit = minutes ? 60 : 1;
  const step = niceStep(Math.max(span / unit, 1), 4, [1, 2, 5, 10]) * unit;
  const ticks = [];
  for (let ago = 0; ago <= span + 1e-9; ago += step) {
    ticks.push([ago, ago === 0 ? "now" : `−${num(ago / unit)} ${minutes ? "min" : "s"}`]);
  }
  return ticks;
}

/** Per domain, its CPU % and MiB for each frame (null where it has none), and the order
 * in which the charts draw them: busiest first (mean CPU %, then mean memory). */
function seriesOf(frames) {
  const series = new Map();
  frames.forEach((frame, i) => {
    for (const [name, cpu, mem] of frame.domains) {
      if (!series.has(name)) {
        series.set(name, { name, cpu: frames.map(() => null), mem: frames.map(() => null) });
      }
      series.get(name).cpu[i] = cpu;
      series.get(name).mem[i] = mem;
    }
  });
  const mean = (values) => {
    const known = values.filter((v) => v !== null);
    return known.length ? known.reduce((a, b) => a + b, 0) / known.length : -1;
  };
  for (const one of series.values()) one.score = [mean(one.cpu), mean(one.mem)];
  return [...series.values()].sort(
    (a, b) => b.score[0] - a.score[0] || b.score[1] - a.score[1] || a.name.localeCompare(b.name),
  );
}

/** The sum of *rest* per frame (null where none of them has a value). */
function summed(rest, key, length) {
  const sums = [];
  for (let i = 0; i < length; i++) {
    const known = rest.map((one) => one[key][i]).filter((v) => v !== null);
    sums.push(known.length ? known.reduce((a, b) => a + b, 0) : null);
  }
  return sums;
}

/** One chart: axes with units and ticks, a line per series ({values, cls, label}). */
function chart(frames, lines, key, span, width) {
  const plotW = Math.max(width - PAD.left - PAD.right, 40);
  const plotH = CHART_HEIGHT - PAD.top - PAD.bottom;
  const max = Math.max(0, ...lines.flatMap((line) => line.values.filter((v) => v !== null)));
  const ys = valueAxis(max, key);
  const end = frames.length ? frames[frames.length - 1].t : 0;
  const x = (t) => PAD.left + plotW * (1 - (end - t) / span);
  const y = (v) => PAD.top + plotH * (1 - v / ys.top);
  const root = svg("svg", {
    class: "ipyvirt-chart",
    width,
    height: CHART_HEIGHT,
    viewBox: `0 0 ${width} ${CHART_HEIGHT}`,
    role: "img",
  });
  for (const v of ys.ticks) {
    root.append(
      svg("line", { class: "ipyvirt-grid", x1: PAD.left, x2: PAD.left + plotW, y1: y(v), y2: y(v) }),
      svg("text", { class: "ipyvirt-tick", x: PAD.left - 6, y: y(v), "text-anchor": "end", dy: "0.32em" }, ys.label(v)),
    );
  }
  for (const [ago, label] of timeTicks(span)) {
    const at = PAD.left + plotW * (1 - ago / span);
    root.append(
      svg("line", { class: "ipyvirt-axis", x1: at, x2: at, y1: PAD.top + plotH, y2: PAD.top + plotH + 4 }),
      svg("text", { class: "ipyvirt-tick", x: at, y: PAD.top + plotH + 16, "text-anchor": ago === 0 ? "end" : "middle" }, label),
    );
  }
  root.append(
    svg("line", { class: "ipyvirt-axis", x1: PAD.left, x2: PAD.left, y1: PAD.top, y2: PAD.top + plotH }),
    svg("line", { class: "ipyvirt-axis", x1: PAD.left, x2: PAD.left + plotW, y1: PAD.top + plotH, y2: PAD.top + plotH }),
  );
  // the newest lines last, on top; the busiest domain is drawn last of all
  for (const line of [...lines].reverse()) {
    let d = "";
    let pen = false;
    let last = null;
    line.values.forEach((v, i) => {
      if (v === null || frames[i].t < end - span - 1e-9) {
        pen = false;
        return;
      }
      d += `${pen ? "L" : "M"}${x(frames[i].t).toFixed(1)},${y(v).toFixed(1)}`;
      pen = true;
      last = [frames[i].t, v];
    });
    const g = svg("g", { class: `ipyvirt-line ${line.cls}` }, svg("title", {}, line.label));
    if (d) g.append(svg("path", { d }));
    if (last) g.append(svg("circle", { cx: x(last[0]), cy: y(last[1]), r: 2.5 }));
    root.append(g);
  }
  return root;
}

function others(count) {
  return `${count} other${count === 1 ? "" : "s"}, summed`;
}

function cpuText(v) {
  return v === null || v === undefined ? "n/a" : `${v < 10 ? v.toFixed(1) : v.toFixed(0)} %`;
}

/** A domain's line as a small sample: in the legend and before its name in the table. */
function swatch(cls) {
  return svg("svg", { class: `ipyvirt-swatch ${cls}`, width: 18, height: 10 }, svg("line", { x1: 1, x2: 17, y1: 5, y2: 5 }));
}

/** Set *el*'s text only if it changed: a selection in the table survives the next frame. */
function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

/** Memory in MiB as text, in GiB where *gib* (one unit for a whole column reads better). */
function memText(v, gib) {
  if (v === null || v === undefined) return "n/a";
  return gib ? `${(v / 1024).toFixed(2)} GiB` : `${v.toFixed(0)} MiB`;
}

function render({ model, el }) {
  let frames = [];
  const colourOf = new Map(); // sticky: a domain keeps its colour while it is charted
  const rowOf = new Map(); // domain name -> its table row, updated in place frame to frame
  // The parts are made once and updated, never remade: text stays selectable and findable.
  const status = h("div", { class: "ipyvirt-usage-status" });
  const error = h("div", { class: "ipyvirt-usage-error", role: "alert" });
  const empty = h("div", { class: "ipyvirt-empty" });
  const charts = h("div", { class: "ipyvirt-usage-charts" });
  const note = h("div", { class: "ipyvirt-empty" });
  const legend = h("div", { class: "ipyvirt-usage-legend" });
  const tbody = h("tbody", {});
  const more = h("div", { class: "ipyvirt-empty" });
  const head = h(
    "tr",
    {},
    h("th", {}, "domain"),
    h("th", { class: "num" }, "CPU"),
    h("th", { class: "num" }, "CPU, mean"),
    h("th", { class: "num" }, "memory"),
    h("th", { class: "num" }, "memory, peak"),
  );
  const table = h("div", { class: "ipyvirt-usage-table" }, h("table", {}, h("thead", {}, head), tbody), more);
  const root = h("div", { class: "ipyvirt-view ipyvirt-usage" }, status, error, empty, charts, note, legend, table);
  el.append(root);

  /** Give the charted domains colours, keeping those they had. */
  function colour(top) {
    const names = new Set(top.map((one) => one.name));
    for (const name of [...colourOf.keys()]) if (!names.has(name)) colourOf.delete(name);
    const used = new Set(colourOf.values());
    for (const one of top) {
      if (!colourOf.has(one.name)) {
        let free = 0;
        while (used.has(free) && free < COLOURS - 1) free++;
        colourOf.set(one.name, free);
        used.add(free);
      }
    }
  }

  /** The width the charts may take: the view's, less its padding. */
  function innerWidth() {
    const style = getComputedStyle(root);
    return root.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
  }

  const seriesClass = (name) => (colourOf.has(name) ? `ipyvirt-series-${colourOf.get(name)}` : "ipyvirt-series-rest");

  function draw() {
    const uri = model.get("uri");
    const source = model.get("source");
    status.replaceChildren(
      h("span", { class: "ipyvirt-usage-uri" }, uri),
      ` · every ${num(model.get("interval"))} s · last ${model.get("history")} samples`,
      source ? h("span", { class: "ipyvirt-usage-source" }, ` · figures from ${source}`) : null,
    );
    setText(error, model.get("error") ? `Usage unavailable: ${model.get("error")}` : "");
    error.hidden = !model.get("error");
    const latest = frames.length ? frames[frames.length - 1] : null;
    let says = "";
    if (!latest) says = model.get("polled") ? "" : `Reading the usage of ${uri}…`;
    else if (!latest.domains.length) says = `No running domain on ${uri}: start one to see its usage`;
    setText(empty, says);
    empty.hidden = !says;
    charts.hidden = legend.hidden = table.hidden = note.hidden = !frames.length;
    if (frames.length) drawCharts(latest);
    root.dataset.frames = frames.length;
  }

  function drawCharts(latest) {
    const ordered = seriesOf(frames);
    const shown = Math.min(model.get("lines"), COLOURS);
    // one more line rather than "1 other, summed", if a colour is left for it
    const top = ordered.slice(0, ordered.length === shown + 1 && shown < COLOURS ? shown + 1 : shown);
    const rest = ordered.slice(top.length);
    colour(top);
    const linesOf = (key) => [
      ...top.map((one) => ({ values: one[key], cls: seriesClass(one.name), label: one.name })),
      ...(rest.length ? [{ values: summed(rest, key, frames.length), cls: "ipyvirt-series-rest", label: others(rest.length) }] : []),
    ];
    const span = Math.max(model.get("interval") * (model.get("history") - 1), 1e-3);
    const width = Math.max(Math.floor(innerWidth() || 900), 320);
    const each = width >= 760 ? Math.floor((width - 16) / 2) : width;
    const figure = (title, key) =>
      h("figure", { class: "ipyvirt-usage-chart" }, h("figcaption", {}, title), chart(frames, linesOf(key), key, span, each));
    charts.replaceChildren(figure("CPU, % of the domain's vCPUs", "cpu"), figure("Memory in use", "mem"));
    const waiting = frames.length < 2 ? "CPU % shows from the second sample on" : "";
    setText(note, waiting);
    note.hidden = !waiting;
    legend.replaceChildren(
      ...top.map((one) => h("span", { class: "ipyvirt-legend-item" }, swatch(seriesClass(one.name)), one.name)),
      ...(rest.length ? [h("span", { class: "ipyvirt-legend-item" }, swatch("ipyvirt-series-rest"), others(rest.length))] : []),
    );
    legend.hidden = !top.length;
    drawTable(latest, ordered);
  }

  function drawTable(latest, ordered) {
    const inWindow = new Map(ordered.map((one) => [one.name, one]));
    const rows = [...latest.domains].sort(
      (a, b) => (b[1] ?? -1) - (a[1] ?? -1) || (b[2] ?? -1) - (a[2] ?? -1) || a[0].localeCompare(b[0]),
    );
    const limit = model.get("max_domains");
    const stat = (values, fn) => {
      const known = values.filter((v) => v !== null);
      return known.length ? fn(known) : null;
    };
    const gib = Math.max(0, ...ordered.flatMap((one) => one.mem.filter((v) => v !== null))) >= 1024;
    const shown = rows.slice(0, limit);
    const keep = new Set(shown.map(([name]) => name));
    for (const [name, row] of rowOf) {
      if (!keep.has(name)) {
        row.tr.remove();
        rowOf.delete(name);
      }
    }
    shown.forEach(([name, cpu, mem], i) => {
      if (!rowOf.has(name)) {
        const cells = [0, 1, 2, 3, 4].map((c) => h("td", { class: c ? `num ${["", "cpu", "cpu-mean", "mem", "mem-peak"][c]}` : null }));
        const mark = swatch("");
        cells[0].append(mark, h("span", {}, name));
        rowOf.set(name, { tr: h("tr", { class: "ipyvirt-usage-row", "data-domain": name }, cells), cells, mark });
      }
      const row = rowOf.get(name);
      const one = inWindow.get(name);
      row.mark.setAttribute("class", `ipyvirt-swatch ${seriesClass(name)}`);
      setText(row.cells[1], cpuText(cpu));
      setText(row.cells[2], cpuText(stat(one.cpu, (v) => v.reduce((a, b) => a + b, 0) / v.length)));
      setText(row.cells[3], memText(mem, gib));
      setText(row.cells[4], memText(stat(one.mem, (v) => Math.max(...v)), gib));
      if (tbody.children[i] !== row.tr) tbody.insertBefore(row.tr, tbody.children[i] || null);
    });
    const hidden = rows.length - shown.length;
    setText(more, hidden > 0 ? `and ${hidden} more running domains` : "");
    more.hidden = hidden <= 0;
    table.hidden = !shown.length;
  }

  function received(msg) {
    if (msg.kind === "window") frames = msg.frames;
    else if (msg.kind === "frame") frames = [...frames, msg.frame].slice(-model.get("history"));
    else return;
    draw();
  }

  const traits = "change:uri change:interval change:history change:lines change:max_domains change:source change:error change:polled";
  model.on("msg:custom", received);
  model.on(traits, draw);
  let width = 0;
  const resized = new ResizeObserver(() => {
    if (root.clientWidth && Math.abs(root.clientWidth - width) > 4) {
      width = root.clientWidth;
      draw();
    }
  });
  resized.observe(root);
  draw();
  ask(model, "window");
  return () => {
    resized.disconnect();
    model.off("msg:custom", received);
    model.off(traits, draw);
  };
}

export default { render };
