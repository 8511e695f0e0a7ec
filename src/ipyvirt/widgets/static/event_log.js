// ipyvirt.widgets.EventLog: the filters, the status line and the newest matching events.
// The kernel owns the state (rows, filters, counts); this module draws it and asks for changes.

const EVENT_WIDTHS = { time: "6.5em", host: "7em", family: "7em", subject: "13em", event: "11em", detail: "" };

function eventLogEmpty(model) {
  if (model.get("kept") === 0) {
    const families = model.get("families").slice(1);
    const how = families.includes("domain")
      ? "start, stop or change a domain and it shows here"
      : `${families.join(", ")} events show here as they happen`;
    return `No event yet on ${model.get("uri")}: ${how}.`;
  }
  const family = model.get("family");
  const subject = model.get("subject").trim();
  const what = [
    family === model.get("families")[0] ? "" : `family "${family}"`,
    subject ? `subject containing "${subject}"` : "",
  ].filter(Boolean).join(" and ");
  return `No event matches ${what || "the filters"}: ${model.get("kept")} kept, none shown.`;
}

function eventLogRow(cells, columns) {
  return h("tr", { "data-family": cells[columns.indexOf("family")] }, columns.map((name, i) => {
    const text = cells[i];
    if (name === "family") {
      return h("td", { class: "ipyvirt-ev-family" },
        h("span", { class: `ipyvirt-family ipyvirt-family-${text}` }, text));
    }
    return h("td", { class: `ipyvirt-ev-${name}`, title: text || undefined }, text);
  }));
}

function render({ model, el }) {
  const family = h("select", { class: "ipyvirt-select", "aria-label": "family" });
  const subject = h("input", {
    class: "ipyvirt-input", type: "search", "aria-label": "subject",
    placeholder: "filter by domain / object",
  });
  const status = h("span", { class: "ipyvirt-status" });
  const notice = h("span", { class: "ipyvirt-notice", role: "alert" });
  const head = h("thead");
  const body = h("tbody");
  const cols = h("colgroup");
  const table = h("table", { class: "ipyvirt-log-table" }, cols, head, body);
  const root = h("div", { class: "ipyvirt-view ipyvirt-event-log" },
    h("div", { class: "ipyvirt-toolbar" }, family, subject, status, notice),
    h("div", { class: "ipyvirt-scroll" }, table));
  el.append(root);

  // a subject request waiting for the typing to pause (one request, not one per key)
  let typing = null;
  const sendSubject = () => { typing = null; ask(model, "look", { subject: subject.value }); };
  family.addEventListener("change", () => {
    // what was typed and not sent yet goes with it, before an echo of the kernel's older
    // subject could overwrite it (focus has left the input by now)
    clearTimeout(typing);
    typing = null;
    ask(model, "look", { family: family.value, subject: subject.value });
  });
  subject.addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(sendSubject, 150);
  });

  function drawHead() {
    const columns = model.get("columns");
    cols.replaceChildren(...columns.map(c => h("col", {
      class: `ipyvirt-col-${c}`, style: EVENT_WIDTHS[c] ? `width:${EVENT_WIDTHS[c]}` : undefined,
    })));
    head.replaceChildren(h("tr", {}, columns.map(c => h("th", { scope: "col" }, c))));
  }
  function drawFilters() {
    const families = model.get("families");
    if (family.options.length !== families.length) {
      family.replaceChildren(...families.map(f => h("option", { value: f }, f)));
    }
    family.value = model.get("family");
    // while the user types, or what they typed is on its way, the kernel's echo of an older
    // value must not undo it
    if (document.activeElement !== subject && typing === null) {
      subject.value = model.get("subject");
    }
  }
  function drawRows() {
    const columns = model.get("columns");
    const rows = model.get("rows");
    if (rows.length === 0) {
      body.replaceChildren(h("tr", { class: "ipyvirt-empty-row" },
        h("td", { colspan: columns.length, class: "ipyvirt-empty" }, eventLogEmpty(model))));
    } else {
      body.replaceChildren(...rows.map(row => eventLogRow(row.slice(1), columns)));
    }
    status.textContent = model.get("status");
    notice.textContent = model.get("notice");
  }

  drawHead();
  drawFilters();
  drawRows();
  // one update from the kernel changes several traits, each firing its own event: draw
  // once, after them all
  let pending = false;
  const redraw = () => {
    if (pending) return;
    pending = true;
    queueMicrotask(() => { pending = false; drawFilters(); drawRows(); });
  };
  const events = ["change:rows", "change:kept", "change:status", "change:notice",
    "change:family", "change:subject", "change:families"];
  for (const e of events) model.on(e, redraw);
  model.on("change:columns", drawHead);
  return () => {
    clearTimeout(typing);
    for (const e of events) model.off(e, redraw);
    model.off("change:columns", drawHead);
  };
}

export default { render };
