// ipyvirt.widgets.FleetHealth: a row per host of a fleet (%virt fleet list, live).
// The kernel sends the rows as text; this module draws them, the health as a badge.

// the health's first word: its badge's colour (said in words too: the text)
function healthBadge(text) {
  const word = String(text).split(" ")[0];
  const kind = { connected: "running", connecting: "paused", reconnecting: "paused",
    not: "crashed", failed: "crashed" }[word] || "unknown";
  return h("span", { class: `ipyvirt-badge ipyvirt-state-${kind}` }, text);
}

const NUMERIC = new Set(["domains", "running", "CPU %", "memory MiB", "rtt ms", "events/s"]);

function render({ model, el }) {
  el.classList.add("ipyvirt-view", "ipyvirt-fleet-health");
  const title = h("div", { class: "ipyvirt-summary" });
  const head = h("thead");
  const body = h("tbody");
  const table = h("table", { class: "ipyvirt-hosts" }, head, body);
  const empty = h("div", { class: "ipyvirt-empty", role: "status" },
    "No host in the fleet: %virt fleet add URI... adds some.");
  const note = h("div", { class: "ipyvirt-note", role: "status" });
  el.append(title, table, empty, note);
  const draw = () => {
    const columns = model.get("columns");
    const rows = model.get("rows");
    title.textContent = model.get("title");
    head.replaceChildren(h("tr", {}, columns.map((c) =>
      h("th", { scope: "col", class: NUMERIC.has(c) ? "num" : undefined }, c))));
    body.replaceChildren(...rows.map((row) => h("tr", {}, row.map((text, i) => {
      const name = columns[i];
      if (name === "health") return h("td", {}, healthBadge(text));
      if (name === "uri") return h("td", { class: "ipyvirt-uri", title: text }, text);
      return h("td", { class: NUMERIC.has(name) ? "num" : undefined }, text);
    }))));
    table.hidden = !rows.length;
    empty.hidden = !!rows.length;
    note.textContent = model.get("note");
    note.hidden = !model.get("note");
  };
  const traits = ["columns", "rows", "title", "note"];
  for (const t of traits) model.on(`change:${t}`, draw);
  draw();
  return () => { for (const t of traits) model.off(`change:${t}`, draw); };
}

export default { render };
