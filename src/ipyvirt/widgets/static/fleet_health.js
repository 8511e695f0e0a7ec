// ipyvirt.widgets.FleetHealth: a row per host of a fleet (%virt fleet list, live).
// The kernel sends the rows as text; this module draws them, the health as a badge.

// the health: what it is as a badge (common.js's healthBadge), then why and what next as
// plain text that wraps ("(libvirt's reason); next try in 4.0 s")
function healthCell(text) {
  const at = text.indexOf(" (");
  return h("td", { class: "ipyvirt-health" }, healthBadge(text),
    at < 0 ? null : h("span", { class: "ipyvirt-why" }, text.slice(at + 1)));
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
    // the URI is the host name's tooltip: the health and the figures keep the width
    const columns = model.get("columns");
    const uri = columns.indexOf("uri");
    const rows = model.get("rows");
    title.textContent = model.get("title");
    head.replaceChildren(h("tr", {}, columns.filter((c) => c !== "uri").map((c) =>
      h("th", { scope: "col", class: NUMERIC.has(c) ? "num" : undefined }, c))));
    body.replaceChildren(...rows.map((row) => h("tr", {}, row.map((text, i) => {
      const name = columns[i];
      if (name === "uri") return null;
      if (name === "health") return healthCell(text);
      if (name === "host") return h("th", { scope: "row", title: row[uri] }, text);
      return h("td", { class: NUMERIC.has(name) ? "num" : undefined }, text);
    }).filter(Boolean))));
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
