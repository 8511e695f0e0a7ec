// The timeline (ipyvirt.widgets.Timeline): one lane per domain, states as spans, events as
// ticks. The kernel sends the picture once ({kind: "picture"}, when this view says hello),
// then only changes ({kind: "changes"}); this view moves the time axis by itself.
// Times from the kernel are seconds since the epoch on the kernel's clock; `skew` maps them
// to this page's clock (the two machines' clocks may differ).

const LANE_STEPS = [
  // window (s) up to -> axis step (s)
  [120, 15], [600, 60], [1800, 300], [7200, 900], [Infinity, 3600],
];
const REDRAW_MS = 5000; // every lane redrawn now and then: what left the window goes
const MOVE_MS = 250; // the axis moves this often (a 5-minute window on 1000 px: < 1 px)

// one formatter for every label: toLocaleTimeString with options makes one a call, and a
// busy lane asks for hundreds a redraw
const CLOCK = new Intl.DateTimeFormat([], {
  hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
});

function clock(seconds) {
  return CLOCK.format(new Date(seconds * 1000));
}

function axisStep(windowS) {
  return LANE_STEPS.find(([upTo]) => windowS <= upTo)[1];
}

function plural(n, one, many) {
  return `${n} ${n === 1 ? one : many}`;
}

function render({ model, el }) {
  const lanes = new Map(); // name -> {spans: [[t, state]], ticks: [[t, label]]}
  const rows = new Map(); // name -> {row, badge, strip}
  let order = [];
  let hidden = 0;
  let dropped = 0;
  let windowS = 300;
  let since = 0;
  let maxSpans = 200;
  let maxTicks = 200;
  let ready = false;
  let pictured = false;
  let skew = 0; // kernel seconds - page seconds
  let origin = 0; // kernel seconds at x = 0 of every strip
  let pps = 1; // pixels per second
  let trackWidth = 0;

  const title = h("span", { class: "ipyvirt-tl-title" });
  const legend = h("span", { class: "ipyvirt-tl-legend" });
  const note = h("div", { class: "ipyvirt-empty ipyvirt-tl-note" });
  const body = h("div", { class: "ipyvirt-tl-body" });
  const gridStrip = h("div", { class: "ipyvirt-tl-strip" });
  const grid = h("div", { class: "ipyvirt-tl-grid", "aria-hidden": "true" }, gridStrip);
  const axisStrip = h("div", { class: "ipyvirt-tl-strip" });
  const axisTrack = h(
    "div",
    { class: "ipyvirt-tl-track ipyvirt-tl-axis" },
    axisStrip,
    h("span", { class: "ipyvirt-tl-now" }, "now"),
  );
  const axis = h(
    "div",
    { class: "ipyvirt-tl-row ipyvirt-tl-axisrow" },
    h("div", { class: "ipyvirt-tl-label" }),
    axisTrack,
  );
  const lanesBox = h("div", { class: "ipyvirt-tl-lanes" }, grid);
  body.append(lanesBox, axis);
  const root = h(
    "div",
    { class: "ipyvirt-view ipyvirt-timeline" },
    h("div", { class: "ipyvirt-tl-head" }, title, legend),
    note,
    body,
  );
  el.append(root);

  const now = () => Date.now() / 1000 + skew;
  const x = (t) => (t - origin) * pps;

  function measure() {
    const width = axisTrack.clientWidth;
    if (width > 0 && width !== trackWidth) {
      trackWidth = width;
      pps = trackWidth / windowS;
      return true;
    }
    return false;
  }

  function drawLane(name) {
    const lane = lanes.get(name);
    const view = rows.get(name);
    if (!lane || !view) return;
    const start = now() - windowS;
    const parts = [];
    if (since > start) {
      parts.push(h("div", {
        class: "ipyvirt-tl-unknown",
        style: `left:${x(start - windowS)}px;width:${x(since) - x(start - windowS)}px`,
        title: `before ${clock(since)}: not watched`,
      }));
    }
    // A pixel shows one span and one tick: a domain paused and resumed 40 times a second
    // makes spans and ticks far narrower than a pixel (a 5-minute window is about 0.3 s a
    // pixel), and drawing each would cost the page its responsiveness for nothing seen.
    const spans = lane.spans;
    let drawnTo = -Infinity; // the right edge (px) of the last span drawn
    spans.forEach(([t, state], i) => {
      const last = i + 1 === spans.length;
      const end = last ? now() + 4 * windowS : spans[i + 1][0];
      if (end < start || state === "gone") return;
      const right = x(end);
      if (!last && right < drawnTo + 1) return; // within the pixel drawn already
      const left = Math.max(x(t), drawnTo);
      drawnTo = right;
      const kind = String(state).replace(/[^a-z]/g, "") || "unknown";
      const until = last ? "now" : clock(end);
      const width = Math.max(1, right - left);
      parts.push(h("div", {
        class: `ipyvirt-tl-span ipyvirt-state-${kind}`,
        style: `left:${left}px;width:${width}px`,
        title: `${name}: ${state}, ${clock(t)} to ${until}`,
      }, width >= 8 * state.length + 12 && h("span", { class: "ipyvirt-tl-spantext" }, state)));
    });
    let tick = null; // the tick drawn last: later ones within 2 px are counted on it
    for (const [t, label] of lane.ticks) {
      if (t < start) continue;
      if (tick && x(t) - tick.at < 2) {
        tick.more += 1;
        tick.el.title = `${name}: ${tick.label} at ${tick.clock} and ${tick.more} more events `
          + `to ${clock(t)}`;
        continue;
      }
      tick = { at: x(t), label, clock: clock(t), more: 0 };
      tick.el = h("div", {
        class: "ipyvirt-tl-tick",
        style: `left:${tick.at - 4}px`,
        title: `${name}: ${label} at ${tick.clock}`,
      });
      parts.push(tick.el);
    }
    view.strip.replaceChildren(...parts);
    const current = spans.length ? spans[spans.length - 1][1] : "";
    view.badge.replaceChildren(current && current !== "gone" ? stateBadge(current) : "");
    view.row.classList.toggle("ipyvirt-tl-gone", current === "gone");
  }

  function drawAxis() {
    const step = axisStep(windowS);
    const end = now();
    const labels = [];
    const lines = [];
    // up to now only: a later one appears when its time comes (drawAxis runs then)
    for (let t = Math.ceil((end - windowS - step) / step) * step; t <= end; t += step) {
      const label = h("span", { class: "ipyvirt-tl-axislabel", style: `left:${x(t)}px` },
        clock(t).slice(0, step < 60 ? 8 : 5));
      label.dataset.t = t;
      labels.push(label);
      lines.push(h("div", { class: "ipyvirt-tl-gridline", style: `left:${x(t)}px` }));
    }
    axisStrip.replaceChildren(...labels);
    gridStrip.replaceChildren(...lines);
    move();
  }

  function move() {
    const shift = trackWidth - (now() - origin) * pps;
    const transform = `translateX(${shift.toFixed(1)}px)`;
    for (const { strip } of rows.values()) strip.style.transform = transform;
    axisStrip.style.transform = transform;
    gridStrip.style.transform = transform;
    // a time label shows whole or not at all: not half under "now" nor past the left edge
    for (const label of axisStrip.children) {
      const at = x(Number(label.dataset.t)) + shift;
      label.style.visibility = at > 24 && at < trackWidth - 52 ? "" : "hidden";
    }
  }

  function drawHead() {
    const m = +(windowS / 60).toFixed(2);
    const minutes = plural(m, "minute", "minutes");
    const uri = model.get("uri");
    title.textContent = order.length
      ? `${plural(order.length, "domain", "domains")} on ${uri}, last ${minutes}`
      : `Timeline of ${uri}`;
    if (hidden) title.textContent += ` (${plural(hidden, "more domain", "more domains")} not shown)`;
    if (dropped) title.textContent += `, ${dropped} older marks dropped (past the limit a lane keeps)`;
    const states = new Set();
    for (const name of order) for (const [, s] of lanes.get(name)?.spans || []) states.add(s);
    states.delete("gone");
    legend.replaceChildren(...[...states].sort().map(stateBadge));
    const start = now() - windowS;
    const events = order.some((n) => (lanes.get(n)?.ticks || []).some(([t]) => t >= start));
    let text = "";
    if (!pictured || (!ready && !order.length)) text = `Reading the domains on ${uri} ...`;
    else if (!order.length) text = `No domain on ${uri} yet`;
    else if (!events) text = `No events in the last ${minutes}`;
    note.textContent = text;
    note.hidden = !text;
    body.hidden = !order.length;
  }

  function layout() {
    // rows for the shown lanes, in order; the grid overlay stays first
    for (const name of [...rows.keys()]) {
      if (!order.includes(name)) {
        rows.get(name).row.remove();
        rows.delete(name);
      }
    }
    const els = order.map((name) => {
      if (!rows.has(name)) {
        const strip = h("div", { class: "ipyvirt-tl-strip" });
        const badge = h("span", { class: "ipyvirt-tl-badge" });
        const row = h(
          "div",
          { class: "ipyvirt-tl-row", "data-domain": name },
          h("div", { class: "ipyvirt-tl-label", title: name },
            h("span", { class: "ipyvirt-tl-name" }, name), badge),
          h("div", { class: "ipyvirt-tl-track" }, strip),
        );
        rows.set(name, { row, badge, strip });
      }
      return rows.get(name).row;
    });
    lanesBox.replaceChildren(grid, ...els);
  }

  // what left the window goes, here as in the kernel's model, which also says how many spans
  // and ticks a lane keeps at most: a view left open for days holds what it shows, no more
  function prune() {
    const start = now() - windowS;
    for (const lane of lanes.values()) {
      let first = 0;
      while (first + 1 < lane.spans.length && lane.spans[first + 1][0] <= start) first += 1;
      first = Math.max(first, lane.spans.length - maxSpans);
      if (first > 0) lane.spans.splice(0, first);
      let old = 0;
      while (old < lane.ticks.length && lane.ticks[old][0] < start) old += 1;
      old = Math.max(old, lane.ticks.length - maxTicks);
      if (old > 0) lane.ticks.splice(0, old);
    }
  }

  function redraw() {
    prune();
    measure();
    layout();
    for (const name of order) drawLane(name);
    drawAxis();
    move();
    drawHead();
  }

  function onMessage(msg) {
    if (!msg || typeof msg !== "object") return;
    if (typeof msg.now === "number") skew = msg.now - Date.now() / 1000;
    if (msg.kind === "picture") {
      pictured = true;
      ready = !!msg.ready;
      windowS = msg.window;
      since = msg.since;
      hidden = msg.hidden;
      dropped = msg.dropped;
      maxSpans = msg.max_spans;
      maxTicks = msg.max_ticks;
      if (!origin) origin = msg.now;
      trackWidth = 0;
      lanes.clear();
      for (const lane of msg.lanes) lanes.set(lane.name, lane);
      order = msg.lanes.map((lane) => lane.name);
      redraw();
    } else if (msg.kind === "changes") {
      ready = true;
      dropped = msg.dropped;
      const touched = new Set();
      let relayout = false;
      for (const change of msg.changes) {
        const [what] = change;
        if (what === "span" || what === "tick") {
          const [, name, t, value] = change;
          const lane = lanes.get(name) || { name, spans: [], ticks: [] };
          lanes.set(name, lane);
          const marks = what === "span" ? lane.spans : lane.ticks;
          marks.push([t, value]);
          // at most what the kernel's lane keeps, between two redraws too
          const most = what === "span" ? maxSpans : maxTicks;
          if (marks.length > most) marks.splice(0, marks.length - most);
          touched.add(name);
        } else if (what === "lanes") {
          order = change[1];
          hidden = change[2];
          for (const name of [...lanes.keys()]) if (!order.includes(name)) lanes.delete(name);
          relayout = true;
        } else if (what === "lane") {
          lanes.set(change[1].name, change[1]);
          touched.add(change[1].name);
        }
      }
      if (relayout) layout();
      for (const name of touched) drawLane(name);
      if (relayout) move();
      drawHead();
    }
  }

  const handler = (msg) => onMessage(msg);
  model.on("msg:custom", handler);
  const onUri = () => drawHead();
  model.on("change:uri", onUri);
  const resize = new ResizeObserver(() => {
    if (pictured && measure()) redraw();
  });
  resize.observe(axisTrack);
  let lastRedraw = Date.now();
  const timer = setInterval(() => {
    if (!pictured) return;
    if (Date.now() - lastRedraw >= REDRAW_MS) {
      lastRedraw = Date.now();
      redraw();
    } else {
      move();
      if (Math.floor(now()) % axisStep(windowS) === 0) drawAxis();
    }
  }, MOVE_MS);
  drawHead();
  ask(model, "hello");
  return () => {
    clearInterval(timer);
    resize.disconnect();
    model.off("msg:custom", handler);
    model.off("change:uri", onUri);
  };
}

export default { render };
