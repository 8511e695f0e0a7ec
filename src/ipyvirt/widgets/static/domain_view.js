// The domain view (ipyvirt.widgets.DomainView): one domain in depth, drawn from the traits
// the kernel sets; CPU and memory frames arrive as messages ({kind: "window"} once, then
// {kind: "frame"}). The view asks the kernel for every change (define, snapshot, confirm).
// The screen tab asks for pictures ({do: "screen", on}) only while it shows on screen in a
// visible page; each arrives as {kind: "shot", width, height} with the PNG as a buffer.

const SVG_NS = "http://www.w3.org/2000/svg";
const TABS = ["overview", "screen", "devices", "snapshots", "XML"];
const DEVICE_PARTS = [["disks", "Disks"], ["nics", "Network interfaces"],
  ["graphics", "Graphics"], ["consoles", "Consoles"]];

function svg(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value !== undefined && value !== null) el.setAttribute(key, value);
  }
  for (const child of children.flat()) el.append(child instanceof Node ? child : String(child));
  return el;
}

/** XML as highlighted spans: tags, attribute names and values, comments, text. Our own
 * small tokenizer (no library, no network): it colours, it never changes the text. */
function highlightXml(text) {
  const out = [];
  const token = /(<!--[\s\S]*?(?:-->|$))|(<\/?)([\w:.-]+)((?:[^>"']|"[^"]*"|'[^']*')*?)(\/?>|$)|([^<]+|<)/g;
  let m;
  while ((m = token.exec(text)) !== null) {
    if (m[0] === "") { token.lastIndex++; continue; }
    if (m[1] !== undefined) out.push(h("span", { class: "x-comment" }, m[1]));
    else if (m[3] !== undefined) {
      out.push(h("span", { class: "x-punct" }, m[2]), h("span", { class: "x-tag" }, m[3]));
      const attr = /([\w:.-]+)(\s*=\s*)("[^"]*"|'[^']*')|(\s+|[^\s]+?)/g;
      let a;
      while ((a = attr.exec(m[4])) !== null) {
        if (a[1] !== undefined) {
          out.push(h("span", { class: "x-attr" }, a[1]), a[2], h("span", { class: "x-value" }, a[3]));
        } else out.push(a[4]);
      }
      out.push(h("span", { class: "x-punct" }, m[5]));
    } else out.push(m[6]);
  }
  return out;
}

function duration(seconds) {
  let s = Math.floor(seconds);
  const days = Math.floor(s / 86400);
  s %= 86400;
  const pad = (n) => String(n).padStart(2, "0");
  const text = `${pad(Math.floor(s / 3600))}:${pad(Math.floor((s % 3600) / 60))}:${pad(s % 60)}`;
  return days ? `${days}d ${text}` : text;
}

/** The smallest 1, 2, 2.5 or 5 times a power of ten that is at least *value*: an axis top. */
function niceTop(value) {
  const power = 10 ** Math.floor(Math.log10(value));
  return [1, 2, 2.5, 5, 10].map((f) => f * power).find((top) => top >= value * (1 - 1e-9));
}

/** A small line chart of one series over the window: axis top, latest value, "now" right. */
function sparkline(frames, key, unit, history, interval) {
  const W = 260, H = 90, L = 56, R = 8, T = 8, B = 16;
  const values = frames.map((f) => f[key]);
  const known = values.filter((v) => v !== null && v !== undefined);
  const top = niceTop(Math.max(key === "cpu" ? 10 : 1, ...known.map((v) => v * 1.1)));
  const end = frames.length ? frames[frames.length - 1].t : 0;
  const span = Math.max(history * interval, 1);
  const x = (t) => L + (W - L - R) * (1 - (end - t) / span);
  const y = (v) => T + (H - T - B) * (1 - v / top);
  let d = "";
  frames.forEach((f) => {
    const v = f[key];
    if (v === null || v === undefined) return;
    d += `${d && values.length ? "L" : "M"}${x(f.t).toFixed(1)},${y(v).toFixed(1)}`;
  });
  const label = (v) => `${Number(v.toFixed(1))} ${unit}`;
  return svg("svg", { class: "ipyvirt-dv-chart", width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: "img",
    "aria-label": known.length ? `${key}: latest ${label(known[known.length - 1])}` : `${key}: no figures yet` },
  svg("line", { class: "ipyvirt-dv-grid", x1: L, x2: W - R, y1: T, y2: T }),
  svg("line", { class: "ipyvirt-dv-axis", x1: L, x2: W - R, y1: H - B, y2: H - B }),
  svg("text", { class: "ipyvirt-dv-tick", x: L - 6, y: T + 4, "text-anchor": "end" }, label(top)),
  svg("text", { class: "ipyvirt-dv-tick", x: L - 6, y: H - B + 4, "text-anchor": "end" }, `0 ${unit}`),
  svg("text", { class: "ipyvirt-dv-tick", x: W - R, y: H - 3, "text-anchor": "end" }, "now"),
  svg("text", { class: "ipyvirt-dv-tick", x: L, y: H - 3 }, `−${Math.round(span)} s`),
  svg("path", { class: `ipyvirt-dv-line ipyvirt-dv-${key}`, d }));
}

function table(part, empty) {
  if (!part || !part.rows.length) return h("div", { class: "ipyvirt-empty" }, empty);
  return h("table", { class: "ipyvirt-dv-table" },
    h("thead", {}, h("tr", {}, part.columns.map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, part.rows.map((row) => h("tr", {}, row.map((c) => h("td", {}, c))))));
}

function render({ model, el }) {
  el.classList.add("ipyvirt-view", "ipyvirt-dv");
  const get = (name) => model.get(name);
  let tab = "overview";
  let frames = [];
  let editing = false;
  // the XML shown: the persistent definition (what edit changes), or the live one
  let showLive = false;
  let overviewAt = Date.now();

  // -- head, tabs --
  const title = h("span", { class: "ipyvirt-dv-name" });
  const badge = h("span");
  const where = h("span", { class: "ipyvirt-dv-where" });
  const lastEvent = h("span", { class: "ipyvirt-dv-event", role: "status" });
  const gone = h("div", { class: "ipyvirt-dv-gone", role: "status" });
  const readonly = h("div", { class: "ipyvirt-dv-note ipyvirt-dv-readonly" });
  const tabButtons = Object.fromEntries(TABS.map((t) => [t, h("button", {
    type: "button", role: "tab", class: "ipyvirt-dv-tab", "data-tab": t,
    onclick: () => { tab = t; showTab(); },
  }, t)]));
  const tabBar = h("div", { class: "ipyvirt-dv-tabs", role: "tablist" }, Object.values(tabButtons));
  const panes = Object.fromEntries(TABS.map((t) => [t, h("div", { class: "ipyvirt-dv-pane", role: "tabpanel", "data-pane": t })]));
  const question = h("span");
  const confirm = h("div", { class: "ipyvirt-dv-bar ipyvirt-dv-confirm" }, question,
    h("button", { type: "button", class: "ipyvirt-danger", onclick: () => ask(model, "confirm") }, "confirm"),
    h("button", { type: "button", onclick: () => ask(model, "cancel") }, "cancel"));
  const outcome = h("div", { class: "ipyvirt-dv-outcome", role: "status" });
  el.append(h("div", { class: "ipyvirt-dv-head" }, title, badge, where, lastEvent), gone, readonly, tabBar,
    ...Object.values(panes), confirm, outcome);

  // -- overview --
  const fields = h("tbody");
  const uptimeCell = h("td", { class: "ipyvirt-dv-uptime" });
  const cpuBox = h("figure", { class: "ipyvirt-dv-figure" });
  const memBox = h("figure", { class: "ipyvirt-dv-figure" });
  const job = h("div", { class: "ipyvirt-dv-job" });
  const jobBar = h("progress", { max: 100 });
  const completed = h("div", { class: "ipyvirt-dv-completed" });
  panes.overview.append(h("div", { class: "ipyvirt-dv-overview" },
    h("table", { class: "ipyvirt-dv-fields" }, fields),
    h("div", { class: "ipyvirt-dv-charts" }, cpuBox, memBox)),
  h("div", { class: "ipyvirt-dv-jobline" }, h("strong", {}, "job: "), job, jobBar), completed);

  // -- snapshots --
  const snapName = h("input", { type: "text", placeholder: "name (default: the time)", "aria-label": "snapshot name" });
  const snapDesc = h("input", { type: "text", placeholder: "description", "aria-label": "snapshot description" });
  const snapCreate = h("button", { type: "button", class: "ipyvirt-dv-create", onclick: () => {
    ask(model, "snapshot", { op: "create", name: snapName.value, description: snapDesc.value });
    snapName.value = ""; snapDesc.value = "";
  } }, "create snapshot");
  const snapList = h("div");
  panes.snapshots.append(snapList, h("div", { class: "ipyvirt-dv-bar" }, snapName, snapDesc, snapCreate));

  // -- screen --
  const screenLine = h("div", { class: "ipyvirt-empty ipyvirt-dv-screen-status", role: "status" });
  const screenImg = h("img", { class: "ipyvirt-dv-screen", alt: "" });
  screenImg.hidden = true;
  panes.screen.append(screenLine, screenImg);
  let screenUrl = null;
  function drawScreen() {
    const status = get("screen_status");
    const running = ["running", "paused"].includes(get("overview").state);
    const text = !running ? "not running: no screen to show" : status || (screenUrl ? "" : "waiting for a picture");
    screenLine.textContent = text;
    screenLine.hidden = !text;
    screenImg.hidden = !screenUrl || !running || !!status;
  }
  function onShot(msg, buffers) {
    const next = URL.createObjectURL(new Blob([buffers[0]], { type: "image/png" }));
    const old = screenUrl;
    screenImg.onload = () => { if (old) URL.revokeObjectURL(old); };
    screenImg.src = next;
    screenUrl = next;
    screenImg.width = msg.width;
    screenImg.height = msg.height;
    screenImg.alt = `the screen of ${get("name")}, ${msg.width}x${msg.height}`;
    drawScreen();
  }
  // pictures only while the tab shows, the view is on screen and the page visible: asked
  // for then and every interval (the kernel stops by itself when the asks stop)
  let onScreen = false, screenOn = false, screenTimer = null, screenFresh = true;
  const askScreen = () => { ask(model, "screen", { on: true, fresh: screenFresh }); screenFresh = false; };
  function watchScreen() {
    const want = tab === "screen" && onScreen && document.visibilityState === "visible";
    if (want === screenOn) return;
    screenOn = want;
    clearInterval(screenTimer);
    screenTimer = want ? setInterval(askScreen, get("interval") * 1000) : null;
    if (want) askScreen();
    else ask(model, "screen", { on: false });
  }
  const seen = new IntersectionObserver((entries) => {
    onScreen = entries[entries.length - 1].isIntersecting;
    watchScreen();
  });
  seen.observe(el);
  document.addEventListener("visibilitychange", watchScreen);

  // -- XML --
  const code = h("pre", { class: "ipyvirt-dv-code", "aria-hidden": "true" });
  const area = h("textarea", { class: "ipyvirt-dv-edit", spellcheck: "false", wrap: "off",
    "aria-label": "the domain's XML definition", readonly: true,
    oninput: () => { paint(area.value); } });
  const editor = h("div", { class: "ipyvirt-dv-editor" }, code, area);
  // the definition editing began from: one that changes meanwhile (elsewhere) is said
  let base = "";
  const startEditing = (text) => { editing = true; base = get("definition"); area.value = text; };
  const edit = h("button", { type: "button", onclick: () => { startEditing(get("draft") || get("definition")); drawXml(); area.focus(); } }, "edit");
  const define = h("button", { type: "button", class: "ipyvirt-dv-define", onclick: () => ask(model, "define", { xml: area.value }) }, "define");
  const discard = h("button", { type: "button", onclick: () => { editing = false; ask(model, "discard"); drawXml(); } }, "cancel");
  const xmlNote = h("span", { class: "ipyvirt-dv-note" });
  const which = h("button", { type: "button", class: "ipyvirt-dv-which", onclick: () => { showLive = !showLive; drawXml(); } });
  const defineError = h("div", { class: "ipyvirt-dv-error", role: "alert" });
  panes.XML.append(h("div", { class: "ipyvirt-dv-bar" }, edit, define, discard, which, xmlNote), defineError, editor);

  function paint(text) {
    // a trailing newline keeps the last line's height when the text ends with one
    code.replaceChildren(...highlightXml(text), "\n");
  }

  function showTab() {
    for (const t of TABS) {
      panes[t].hidden = t !== tab;
      tabButtons[t].setAttribute("aria-selected", String(t === tab));
    }
    watchScreen();
  }

  function drawOverview() {
    const o = get("overview");
    title.textContent = get("name");
    badge.replaceChildren(stateBadge(o.state || "unknown"), o.reason ? h("span", { class: "ipyvirt-dv-reason" }, ` ${o.reason}`) : "");
    where.textContent = `on ${get("uri")}`;
    overviewAt = Date.now();
    const rows = [["state", o.reason ? `${o.state} (${o.reason})` : o.state], ["id", o.id], ["uptime", uptimeCell],
      ["vCPUs", o.vcpus], ["memory", o.memory], ["autostart", o.autostart], ["persistent", o.persistent], ["uuid", o.uuid]];
    fields.replaceChildren(...rows.map(([k, v]) => h("tr", {}, h("th", { scope: "row" }, k), v instanceof Node ? v : h("td", {}, v ?? ""))));
    tickUptime();
  }

  function tickUptime() {
    const o = get("overview");
    if (o.state !== "running") uptimeCell.textContent = "-";
    else if (o.uptime === null || o.uptime === undefined) uptimeCell.textContent = "unknown (started before ipyvirt watched)";
    else uptimeCell.textContent = duration(o.uptime + (Date.now() - overviewAt) / 1000);
  }

  function drawCharts() {
    const running = get("overview").state === "running";
    const last = frames.length ? frames[frames.length - 1] : null;
    const now = (key, unit) => (last && last[key] !== null && last[key] !== undefined ? `${last[key]} ${unit}` : "–");
    const history = get("history"), interval = get("interval");
    cpuBox.replaceChildren(h("figcaption", {}, "CPU ", h("span", { class: "ipyvirt-dv-now" }, running ? now("cpu", "%") : "not running")),
      sparkline(frames, "cpu", "%", history, interval));
    memBox.replaceChildren(h("figcaption", {}, "memory ", h("span", { class: "ipyvirt-dv-now" }, running ? now("mem", "MiB") : "not running")),
      sparkline(frames, "mem", "MiB", history, interval));
  }

  function drawDevices() {
    const d = get("devices");
    panes.devices.replaceChildren(...DEVICE_PARTS.flatMap(([key, heading]) =>
      [h("h4", {}, heading), table(d[key], `no ${heading.toLowerCase()}`)]));
  }

  function drawSnapshots() {
    const rows = get("snapshots");
    const rw = !get("readonly");
    const why = get("readonly") || undefined;
    snapCreate.disabled = !rw || !!get("gone") || get("busy");
    snapCreate.title = why || "take a snapshot of the domain now";
    snapName.disabled = snapDesc.disabled = !rw;
    if (rows === null) {
      snapList.replaceChildren(h("div", { class: "ipyvirt-empty" }, "this driver has no snapshots"));
      snapCreate.disabled = true;
      return;
    }
    if (!rows.length) {
      snapList.replaceChildren(h("div", { class: "ipyvirt-empty" }, "no snapshot yet" + (rw ? ": create one below" : "")));
      return;
    }
    const act = (op, name) => h("button", { type: "button", class: `ipyvirt-dv-${op}`, disabled: !rw || get("busy"), title: why || `${op} ${name}`,
      onclick: () => ask(model, "snapshot", { op, name }) }, op);
    snapList.replaceChildren(h("table", { class: "ipyvirt-dv-table ipyvirt-dv-snapshots" },
      h("thead", {}, h("tr", {}, ["name", "created", "state", "description", ""].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, rows.map((s) => h("tr", { "data-snapshot": s.name, class: s.current ? "current" : undefined },
        h("td", { class: "ipyvirt-dv-snapname" }, h("span", { class: "ipyvirt-dv-indent", style: `padding-left: ${s.depth * 18}px` },
          s.depth ? "└ " : ""), s.name, s.current ? h("span", { class: "ipyvirt-dv-current", title: "the current snapshot" }, "current") : ""),
        h("td", { class: "num" }, s.created), h("td", {}, stateBadge(s.state)), h("td", {}, s.description),
        h("td", {}, act("revert", s.name), " ", act("delete", s.name)))))));
  }

  function drawXml() {
    const rw = !get("readonly") && !get("gone");
    area.readOnly = !editing;
    area.hidden = !editing;
    editor.classList.toggle("editing", editing);
    const definition = get("definition");
    const live = showLive || !definition;
    if (!editing) paint(live ? get("xml") : definition);
    else paint(area.value);
    which.hidden = editing || !definition || get("overview").state !== "running";
    which.textContent = showLive ? "show the definition" : "show the live XML";
    edit.hidden = editing;
    edit.disabled = !rw || !get("definition");
    edit.title = get("readonly") || (get("definition") ? "edit the persistent definition" : "a transient domain has no definition to edit");
    define.hidden = discard.hidden = !editing;
    define.disabled = get("busy");
    const error = get("define_error");
    defineError.textContent = error ? `libvirt refused it, nothing changed: ${error}` : "";
    defineError.hidden = !error;
    const moved = editing && get("definition") !== base;
    xmlNote.textContent = moved
      ? "the definition changed elsewhere since you began: define replaces it with your text"
      : editing ? "editing the persistent definition: libvirt validates it before it replaces the old one"
      : (live ? "the live XML, as the domain runs now" : "the persistent definition: a running domain takes changes at its next start");
  }

  const draw = {
    overview() { drawOverview(); drawCharts(); drawXml(); drawScreen(); },
    screen_status: drawScreen,
    name: drawOverview,
    devices: drawDevices,
    snapshots: drawSnapshots,
    xml() { if (!editing) drawXml(); },
    definition: drawXml,
    draft: drawXml,
    define_error() {
      drawXml();
      // a successful define ends the editing
      if (!get("define_error") && !get("draft") && editing && get("outcome").startsWith("define")) { editing = false; drawXml(); }
    },
    job() {
      const j = get("job");
      job.textContent = j.text || "not read yet";
      jobBar.hidden = j.percent === null || j.percent === undefined;
      if (!jobBar.hidden) jobBar.value = j.percent;
    },
    completed() { completed.textContent = get("completed"); completed.hidden = !get("completed"); },
    last_event() { lastEvent.textContent = get("last_event") ? `last event: ${get("last_event")}` : "no event seen yet"; },
    gone() { gone.textContent = get("gone"); gone.hidden = !get("gone"); drawSnapshots(); drawXml(); },
    question() { question.textContent = get("question"); confirm.hidden = !get("question"); },
    outcome() {
      const text = get("outcome");
      outcome.textContent = text;
      outcome.hidden = !text;
      outcome.classList.toggle("error", text.startsWith("error:"));
      if (text.startsWith("define") && text.endsWith(": done") && editing) { editing = false; drawXml(); }
    },
    busy() { drawSnapshots(); drawXml(); },
    readonly() {
      readonly.textContent = get("readonly");
      readonly.hidden = !get("readonly");
      drawSnapshots(); drawXml();
    },
  };
  const listeners = Object.entries(draw).map(([trait, fn]) => {
    const on = () => fn();
    model.on(`change:${trait}`, on);
    fn();
    return [trait, on];
  });
  const onMessage = (msg, buffers) => {
    if (msg.kind === "shot") { onShot(msg, buffers); return; }
    if (msg.kind === "window") frames = msg.frames.slice();
    else if (msg.kind === "frame") frames.push(msg.frame);
    else return;
    frames = frames.slice(-get("history"));
    drawCharts();
  };
  model.on("msg:custom", onMessage);
  if (get("draft")) { startEditing(get("draft")); drawXml(); }  // a refused text, kept for this view too
  showTab();
  const ticker = setInterval(tickUptime, 1000);
  ask(model, "hello");
  return () => {
    clearInterval(ticker);
    seen.disconnect();
    document.removeEventListener("visibilitychange", watchScreen);
    clearInterval(screenTimer);
    if (screenOn) ask(model, "screen", { on: false });
    if (screenUrl) URL.revokeObjectURL(screenUrl);
    model.off("msg:custom", onMessage);
    for (const [trait, on] of listeners) model.off(`change:${trait}`, on);
  };
}

export default { render };
