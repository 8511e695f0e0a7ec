// The domain table's view (ipyvirt.widgets.DomainTable): draws the page the kernel sends,
// asks the kernel for everything else (filter, sort, page, selection, actions).

// A row as the kernel sends it (domain_table.py's _cells): [key, name, id, state, reason,
// vcpus, memory MiB, autostart, persistent, selected], and a fleet's row its host last.
// A fleet's host header has none (fleet_table.js)
const SELECTED = 9;
const HOST = 10;
// [header, index in a row, sort key (none: not sortable), numeric]
const COLUMNS = [
  ["name", 1, "name"],
  ["id", 2, "id", true],
  ["state", 3, "state"],
  ["reason", 4, "reason"],
  ["vcpus", 5, "vcpus", true],
  ["memory MiB", 6, "memory", true],
  ["autostart", 7, "autostart"],
  ["persistent", 8, "persistent"],
];
const ACTIONS = ["start", "shutdown", "reboot", "suspend", "resume", "destroy"];

function cell(value, index) {
  if (index === 2) return value >= 0 ? value : "-";
  if (index === 3) return stateBadge(value);
  if (index === 7 || index === 8) return value ? "yes" : "no";
  return value;
}

function render({ model, el }) {
  el.classList.add("ipyvirt-view", "ipyvirt-table");
  const get = (name) => model.get(name);

  // -- the filter --
  // a name request waiting for the typing to pause (one request, not one per key)
  let typing = null;
  const sendName = () => { typing = null; ask(model, "look", { name_filter: name.value }); };
  const name = h("input", {
    type: "search", class: "ipyvirt-name", placeholder: "filter by name",
    "aria-label": "filter by name",
    oninput: () => {
      clearTimeout(typing);
      typing = setTimeout(sendName, 150);
    },
  });
  const state = h("select", {
    class: "ipyvirt-state", "aria-label": "filter by state",
    // what was typed and not sent yet goes with it, before an echo of the kernel's older
    // filter could overwrite it (focus has left the input by now)
    onchange: () => {
      clearTimeout(typing);
      typing = null;
      ask(model, "look", { state_filter: state.value, name_filter: name.value });
    },
  });
  // a fleet's table (the hosts trait not empty): a host filter, and a host column
  const host = h("select", {
    class: "ipyvirt-host", "aria-label": "filter by host",
    onchange: () => ask(model, "look", { host_filter: host.value }),
  });
  // a fleet's table: grouping by host (fleet_table.js, sent with a fleet's table only)
  const groups = typeof fleetParts === "function" ? fleetParts(model) : null;
  const summary = h("div", { class: "ipyvirt-summary" });
  const top = h("div", { class: "ipyvirt-bar" }, name, state, host, groups?.bar);

  // -- the table --
  const all = h("input", {
    type: "checkbox", "aria-label": "select every domain the filter shows",
    onclick: (e) => {
      e.preventDefault();  // the kernel's answer checks it
      const { selected, shown } = get("selection");
      ask(model, "select_all", { on: selected < shown });
    },
  });
  const fleet = () => get("hosts")?.length > 0;
  // grouped, the headers name the host: no host column
  const columns = () => (fleet() && !get("look").group ? [["host", HOST, "host"], ...COLUMNS] : COLUMNS);
  const head = (text, key, num) =>
    h("th", { class: num ? "num" : undefined, scope: "col", "data-key": key },
      h("button", {
        class: "ipyvirt-sort", type: "button", title: `sort by ${text}`,
        onclick: () => ask(model, "sort", { key }),
      }, text, h("span", { class: "ipyvirt-arrow", "aria-hidden": "true" })));
  let heads = [];
  let headsFor = null;  // the columns the heads were made for
  const headRow = h("tr");
  const body = h("tbody");
  const table = h("table", { class: "ipyvirt-domains" }, h("thead", {}, headRow), body);
  const empty = h("div", { class: "ipyvirt-empty", role: "status" });

  // -- pages, actions, outcome --
  const prev = h("button", { type: "button", title: "previous page", onclick: () => ask(model, "turn", { step: -1 }) }, "◀");
  const next = h("button", { type: "button", title: "next page", onclick: () => ask(model, "turn", { step: 1 }) }, "▶");
  const label = h("span", { class: "ipyvirt-page" });
  const pager = h("div", { class: "ipyvirt-bar ipyvirt-pager" }, prev, label, next);
  const buttons = Object.fromEntries(ACTIONS.map((a) => [a, h("button", {
    type: "button", class: `ipyvirt-action ipyvirt-do-${a}`, onclick: () => ask(model, "act", { action: a }),
  }, a)]));
  const question = h("span");
  const confirm = h("div", { class: "ipyvirt-bar ipyvirt-confirm" }, question,
    h("button", { type: "button", class: "ipyvirt-danger", onclick: () => ask(model, "confirm") }, "confirm"),
    h("button", { type: "button", onclick: () => ask(model, "cancel") }, "cancel"));
  const bar = h("div", { class: "ipyvirt-bar ipyvirt-actions" }, Object.values(buttons));
  const outcome = h("div", { class: "ipyvirt-outcome", role: "status" });
  el.append(top, summary, table, empty, pager, bar, confirm, outcome);

  const draw = {
    hosts() {
      const names = get("hosts") || [];
      host.hidden = !names.length;
      host.replaceChildren(h("option", { value: "" }, "all hosts"),
        ...names.map((n) => h("option", { value: n }, n)));
      headsFor = null;
      draw.look();
    },
    states() {
      state.replaceChildren(...get("states").map((s) => h("option", { value: s }, s)));
      draw.look();
    },
    look() {
      const look = get("look");
      const wanted = columns().map(([text]) => text).join();
      if (wanted !== headsFor) {
        headsFor = wanted;
        heads = columns().map(([text, , key, num]) => head(text, key, num));
        headRow.replaceChildren(h("th", { class: "check", scope: "col" }, all), ...heads);
        draw.page_rows();
      }
      // what is being typed wins over an older echo of it
      if (document.activeElement !== name && typing === null && name.value !== look.name_filter) {
        name.value = look.name_filter;
      }
      state.value = look.state_filter;
      host.value = look.host_filter || "";
      groups?.look(look, get("hosts") || []);
      for (const th of heads) {
        const on = th.dataset.key === look.sort;
        const dir = look.descending ? "descending" : "ascending";
        th.setAttribute("aria-sort", on ? dir : "none");
        th.querySelector(".ipyvirt-arrow").textContent = on ? (look.descending ? " ▼" : " ▲") : "";
      }
    },
    openable() { draw.page_rows(); },
    page_rows() {
      // a redraw keeps the keyboard's place: the checkbox of the same domain, a host's fold
      const tr = body.contains(document.activeElement) ? document.activeElement.closest("tr") : null;
      const at = tr && (tr.dataset.uuid ? `tr[data-uuid="${tr.dataset.uuid}"] input` : `tr[data-host="${CSS.escape(tr.dataset.host)}"] button`);
      body.replaceChildren(...get("page_rows").map((row) => {
        if (row[0] === null) return groups.row(row, heads.length + 1);
        const [uuid, , , st] = row;
        const box = h("input", {
          type: "checkbox", "aria-label": `select ${row[1]}`, checked: !!row[SELECTED],
          onclick: (e) => {
            e.preventDefault();
            ask(model, "select", { uuid, on: !row[SELECTED] });
          },
        });
        return h("tr", { class: `ipyvirt-row${row[SELECTED] ? " selected" : ""}`, "data-state": st, "data-uuid": uuid },
          h("td", { class: "check" }, box),
          columns().map(([, i, , num]) => h("td", { class: num ? "num" : undefined },
            i === 1 && get("openable") ? h("button", {
              type: "button", class: "ipyvirt-open", title: `open ${row[1]} in depth`,
              onclick: () => ask(model, "open", { uuid }),
            }, row[1]) : cell(row[i], i))));
      }));
      if (at) body.querySelector(at)?.focus();
    },
    pager() {
      const { label: text, page, pages } = get("pager");
      label.textContent = text;
      prev.disabled = page <= 0;
      next.disabled = page >= pages - 1;
      pager.hidden = !text;
    },
    summary() { summary.textContent = get("summary"); },
    empty() {
      const text = get("empty");
      empty.textContent = text;
      empty.hidden = !text;
      table.hidden = !!text;  // no bare headers
    },
    selection() {
      const { selected, shown } = get("selection");
      all.checked = shown > 0 && selected === shown;
      all.indeterminate = selected > 0 && selected < shown;
      all.disabled = shown === 0;
      all.title = all.checked ? `unselect the ${shown} domains the filter shows`
        : `select the ${shown} domains the filter shows (every page)`;
    },
    buttons() {
      const reasons = get("buttons");
      bar.hidden = !Object.keys(reasons).length;
      for (const [action, button] of Object.entries(buttons)) {
        const why = reasons[action] || "";
        button.disabled = !!why;
        button.title = why || `${action} the selected domains`;
      }
    },
    question() {
      question.textContent = get("question");
      confirm.hidden = !get("question");
    },
    outcome() {
      const text = get("outcome");
      outcome.textContent = text;
      outcome.hidden = !text;
      outcome.classList.toggle("error", text.startsWith("error:"));
    },
  };
  const listeners = Object.entries(draw).map(([trait, fn]) => {
    const on = () => fn();
    model.on(`change:${trait}`, on);
    fn();
    return [trait, on];
  });
  return () => {
    clearTimeout(typing);
    for (const [trait, on] of listeners) model.off(`change:${trait}`, on);
  };
}

export default { render };
