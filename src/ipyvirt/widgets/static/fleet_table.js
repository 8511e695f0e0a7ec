// ipyvirt.widgets.FleetTable's part of the domain table's view, sent before domain_table.js
// with a fleet's table only: a one-host table's first render carries none of it.

// A host's header as the kernel sends it (fleet.py's _page_rows): [null, host, health,
// shown, total, [[state, n], ...], collapsed, continued]
function groupRow(model, row, span) {
  const [, host, health, shown, total, counts, collapsed, continued] = row;
  const n = shown === total ? `${total} domain${total === 1 ? "" : "s"}`
    : `${shown} of ${total} domains`;
  return h("tr", { class: "ipyvirt-group", "data-host": host },
    h("th", { scope: "rowgroup", colspan: span },
      h("button", {
        type: "button", class: "ipyvirt-fold", "aria-expanded": collapsed ? "false" : "true",
        title: `${collapsed ? "show" : "hide"} the domains of ${host}`,
        onclick: () => ask(model, "collapse", { host, on: !collapsed }),
      }, h("span", { class: "ipyvirt-arrow", "aria-hidden": "true" }, collapsed ? "▸" : "▾"),
      host, continued ? h("span", { class: "ipyvirt-continued" }, " (continued)") : null),
      healthBadge(health),
      h("span", { class: "ipyvirt-count" }, n),
      counts.map(([state, k]) => h("span", { class: `ipyvirt-badge ipyvirt-state-${state}` }, `${k} ${state}`))));
}

/** Grouping by host: the bar's toggle and "collapse all"/"expand all", the headers. */
function fleetParts(model) {
  const grouped = h("input", {
    type: "checkbox", onchange: () => ask(model, "look", { group: grouped.checked }),
  });
  const box = h("label", { class: "ipyvirt-group-by" }, grouped, "group by host");
  const fold = h("button", {
    type: "button", class: "ipyvirt-fold-all",
    onclick: () => ask(model, "collapse", { on: fold.dataset.on === "1" }),
  });
  return {
    bar: [box, fold],
    look(look, hosts) {
      box.hidden = !hosts.length;
      grouped.checked = !!look.group;
      // fold every host while one is open; unfold them when all are folded
      const shown = hosts.filter((n) => !look.host_filter || n === look.host_filter);
      const open = shown.filter((n) => !(look.collapsed || []).includes(n)).length;
      fold.hidden = !look.group || !shown.length;
      fold.dataset.on = open ? "1" : "0";
      fold.textContent = open ? "collapse all" : "expand all";
    },
    row: (row, span) => groupRow(model, row, span),
  };
}
