// The explorer's parts (ipyvirt.widgets.explorer_sections): one module, drawn by `kind`.
// The kernel reads nothing until the part is on screen: the view says hello when it first
// becomes visible (a tab not shown is display: none, so it is not). A storage pool's volumes
// are read when the pool is open ("open" / "close"): on a host of many pools, none is.

const BAR_WIDTH = 140;
// the kernel's StorageSection.VOLUMES_SHOWN
const VOLUMES_SHOWN = 20;

/** A byte count as people read it: "1.5 GiB" (the kernel's explore.listing.size). */
function size(n) {
  if (n === null || n === undefined) return "n/a";
  let value = n;
  for (const unit of ["B", "KiB", "MiB", "GiB", "TiB"]) {
    if (Math.round(Math.abs(value) * 10) / 10 < 1024 || unit === "TiB") {
      return unit === "B" ? `${n} B` : `${value.toFixed(1)} ${unit}`;
    }
    value /= 1024;
  }
}

const yes = (v) => (v === null || v === undefined ? "n/a" : v ? "yes" : "no");
const na = (v) => (v === null || v === undefined || v === "" ? "n/a" : v);
const list = (v) => (v && v.length ? v.join(", ") : "-");

/** A table: heads are [text, numeric?]; rows are arrays of cells (text or elements). */
function table(cls, heads, rows) {
  return h("table", { class: `ipyvirt-x-table ${cls}` },
    h("thead", {}, h("tr", {}, heads.map(([text, num]) =>
      h("th", { scope: "col", class: num ? "num" : undefined }, text)))),
    h("tbody", {}, rows.map((cells) => h("tr", {}, cells.map((c, i) =>
      h("td", { class: heads[i] && heads[i][1] ? "num" : undefined }, c))))));
}

/** A bar of used / total, with the numbers in words beside it. */
function bar(used, total, label) {
  const share = total > 0 ? Math.min(1, used / total) : 0;
  const level = share > 0.9 ? "full" : share > 0.7 ? "high" : "ok";
  return h("span", { class: "ipyvirt-x-meter", title: label },
    h("span", { class: "ipyvirt-x-bar", style: `width:${BAR_WIDTH}px` },
      h("span", { class: `ipyvirt-x-fill ipyvirt-x-${level}`, style: `width:${Math.round(share * BAR_WIDTH)}px` })),
    h("span", { class: "ipyvirt-x-barlabel" }, label));
}

/** An active/inactive badge in the domain states' colours (running / shutoff). */
function activeBadge(on, onText, offText) {
  return h("span", { class: `ipyvirt-badge ipyvirt-state-${on ? "running" : "shutoff"}` },
    on ? onText || "active" : offText || "inactive");
}

function empty(text) {
  return h("div", { class: "ipyvirt-empty", role: "status" }, text);
}

// -- the parts --------------------------------------------------------------------------

function drawHost(data) {
  const host = data.host;
  const used = host.free_memory === null ? null : host.memory - host.free_memory;
  const fields = [
    ["hostname", na(host.hostname)],
    ["hypervisor", `${host.hypervisor} ${na(host.hypervisor_version)}`],
    ["libvirt", na(host.libvirt_version)],
    ["uri", host.uri],
    ["connection", host.readonly ? "read-only" : host.readonly === false ? "read-write" : "n/a"],
    ["arch", host.arch],
    ["cpu model", na(host.cpu_model)],
    ["cpus", `${host.cpus} @ ${host.mhz} MHz`],
    ["memory", size(host.memory)],
    ["free memory", used === null ? "n/a"
      : bar(used, host.memory, `${size(host.free_memory)} free of ${size(host.memory)}`)],
  ];
  const rows = fields.map(([k, v]) => h("tr", { "data-field": k }, h("th", { scope: "row" }, k), h("td", {}, v)));
  const numa = data.numa.length
    ? table("ipyvirt-x-numa", [["cell", true], ["cpus", true], ["memory", true], ["free", true]],
      data.numa.map((c) => [c.id, c.cpus, size(c.memory), size(c.free_memory)]))
    : empty("no NUMA cells in the capabilities");
  return [h("table", { class: "ipyvirt-x-fields" }, h("tbody", {}, rows)),
    h("h4", {}, "NUMA cells"), numa];
}

function drawNetworks(data, act) {
  if (!data.supported) return [empty("the driver has no virtual networks")];
  if (!data.networks.length) return [empty("no networks defined")];
  const heads = [["name"], ["state"], ["autostart"], ["persistent"], ["bridge"], ["forward"],
    ["addresses"], ["leases", true], ["actions"]];
  const rows = data.networks.map((n) => [
    n.name, activeBadge(n.active), yes(n.autostart), yes(n.persistent), na(n.bridge),
    n.forward_mode, list(n.addresses), n.leases === null ? "n/a" : n.leases.length,
    h("span", { class: "ipyvirt-x-actions" },
      n.active ? act("stop", "stop", `stop network ${n.name}`, { name: n.name })
        : act("start", "start", `start network ${n.name}`, { name: n.name }),
      act("autostart", n.autostart ? "disable autostart" : "enable autostart",
        `${n.autostart ? "unset" : "set"} autostart of network ${n.name}`,
        { name: n.name, on: !n.autostart })),
  ]);
  const out = [table("ipyvirt-x-networks", heads, rows)];
  for (const n of data.networks) {
    out.push(h("h4", {}, `DHCP leases on ${n.name}`));
    if (n.leases === null) out.push(empty("the driver keeps no leases"));
    else if (!n.leases.length) out.push(empty("no leases"));
    else out.push(table("ipyvirt-x-leases", [["mac"], ["address"], ["hostname"], ["expires"]],
      n.leases.map((l) => [l.mac, l.address, na(l.hostname),
        l.expiry ? new Date(l.expiry * 1000).toLocaleString() : "n/a"])));
  }
  return out;
}

function drawPool(model, p, act, confirm) {
  const head = h("div", { class: "ipyvirt-x-pool-head", "data-pool": p.name },
    h("strong", {}, p.name), activeBadge(p.state === "running", p.state, p.state),
    h("span", { class: "ipyvirt-x-dim" }, `${p.type}${p.path ? " · " + p.path : ""}`),
    h("span", { class: "ipyvirt-x-actions" },
      p.state === "running"
        ? [act("pool_refresh", "refresh", `refresh pool ${p.name}`, { pool: p.name }),
          act("pool_stop", "stop", `stop pool ${p.name}`, { pool: p.name })]
        : act("pool_start", "start", `start pool ${p.name}`, { pool: p.name })));
  const used = h("div", { class: "ipyvirt-x-usage" },
    bar(p.allocation, p.capacity,
      `${size(p.allocation)} allocated of ${size(p.capacity)}, ${size(p.available)} available`));
  const out = [head, used];
  if (p.volume_count === null) {
    out.push(empty("inactive: start the pool to list its volumes"));
    return h("section", { class: "ipyvirt-x-pool" }, out);
  }
  const n = p.volume_count;
  const open = { open: "false", close: "true" };  // the toggle says whether the list is open
  const show = (what, text) => h("button", { type: "button", "data-do": what, "aria-expanded": open[what],
    onclick: () => ask(model, what, { pool: p.name }) }, text);
  if (p.shown === "closed") {
    // its volumes are read when opened: the kernel has not read them
    out.push(h("div", { class: "ipyvirt-x-more" },
      show("open", `▸ ${n} volume${n === 1 ? "" : "s"}`)));
    return h("section", { class: "ipyvirt-x-pool" }, out);
  }
  out.push(h("div", { class: "ipyvirt-x-more" }, show("close", `▾ ${n} volume${n === 1 ? "" : "s"}`)));
  if (!p.volumes.length) out.push(empty(`no volumes in ${p.name}`));
  else out.push(table("ipyvirt-x-volumes",
    [["volume"], ["type"], ["capacity", true], ["allocation", true], ["path"], [""]],
    p.volumes.map((v) => [v.name, v.type, size(v.capacity), size(v.allocation), na(v.path),
      confirm(`delete volume ${v.name} in pool ${p.name}`, "delete_volume", { pool: p.name, name: v.name })])));
  if (n > p.volumes.length) {
    out.push(h("div", { class: "ipyvirt-x-more" }, `${p.volumes.length} of ${n} volumes shown `,
      show("expand", `show all ${n}`)));
  } else if (p.shown === "all" && n > VOLUMES_SHOWN) {
    out.push(h("div", { class: "ipyvirt-x-more" }, show("collapse", `show the first ${VOLUMES_SHOWN}`)));
  }
  const name = h("input", { type: "text", placeholder: "new volume name", "aria-label": `new volume name in ${p.name}`, class: "ipyvirt-x-volname" });
  const mib = h("input", { type: "number", min: "1", value: "64", "aria-label": "size in MiB", class: "ipyvirt-x-volsize" });
  const create = act("create_volume", "create volume", `create a volume in pool ${p.name}`,
    () => {
      const fields = { pool: p.name, name: name.value, capacity: Math.round(Number(mib.value) * 1024 * 1024) };
      name.value = "";  // asked for: the next volume gets a new name
      return fields;
    });
  out.push(h("div", { class: "ipyvirt-x-form", "data-pool": p.name }, name, mib, h("span", {}, "MiB"), create));
  return h("section", { class: "ipyvirt-x-pool" }, out);
}

/** The pools, each drawn again only when its data changed: an event on one pool of 50
 * (1,000 volume rows) redraws one, not all. *memo* (name -> [data as JSON, element]) is the
 * view's, kept between redraws. */
function drawStorage(data, act, confirm, model, memo) {
  if (!data.supported) return [empty("the driver has no storage pools")];
  if (!data.pools.length) return [empty("no storage pools defined")];
  const ro = model.get("readonly");
  const kept = new Map();
  const out = data.pools.map((p) => {
    const key = `${ro}${JSON.stringify(p)}`;
    const old = memo.get(p.name);
    const node = old && old[0] === key ? old[1] : drawPool(model, p, act, confirm);
    kept.set(p.name, [key, node]);
    return node;
  });
  memo.clear();
  kept.forEach((v, k) => memo.set(k, v));
  return out;
}

function drawDevices(data) {
  if (!data.supported) return [empty("the driver has no node devices")];
  if (!data.devices.length) return [empty("no node devices")];
  return [table("ipyvirt-x-devices", [["device"], ["capability"], ["driver"]],
    data.devices.map((d) => [
      h("span", { class: "ipyvirt-x-tree", style: `padding-left:${d.depth * 16}px`, "data-device": d.name },
        d.depth ? "└ " : "", d.name),
      na(d.capability), d.driver || "-"]))];
}

function drawSecrets(data) {
  if (!data.supported) return [empty("the driver has no secrets")];
  if (!data.secrets.length) return [empty("no secrets defined")];
  return [table("ipyvirt-x-secrets",
    [["uuid"], ["usage"], ["usage id"], ["ephemeral"], ["private"], ["description"]],
    data.secrets.map((s) => [s.uuid, na(s.usage_type), na(s.usage_id), yes(s.ephemeral),
      yes(s.private), na(s.description)]))];
}

/** What is typed in *body*'s forms (a new volume's name and size, by pool), and where the
 * focus is; the function it returns puts them back after a redraw, so an event while typing
 * loses nothing. */
function keepTyped(body) {
  const kept = [...body.querySelectorAll("[data-pool] input")].map((input) => [
    input.closest("[data-pool]").dataset.pool, input.className, input.value,
    input === document.activeElement]);
  return () => {
    // one pass over the forms (50 pools: a query per input scanned 1,000 rows 100 times)
    const forms = new Map([...body.querySelectorAll(".ipyvirt-x-form")].map((f) => [f.dataset.pool, f]));
    for (const [pool, cls, value, focused] of kept) {
      const form = forms.get(pool);
      const input = form && form.querySelector(`input.${cls}`);
      if (!input) continue;
      if (input.value !== value) input.value = value;  // a form kept whole has it already
      if (focused && input !== document.activeElement) input.focus();
    }
  };
}

const PARTS = { host: drawHost, networks: drawNetworks, storage: drawStorage, devices: drawDevices, secrets: drawSecrets };

function render({ model, el }) {
  el.classList.add("ipyvirt-view", "ipyvirt-explorer", `ipyvirt-x-${model.get("kind")}`);
  const live = h("span", { class: "ipyvirt-x-live" });
  const refresh = h("button", { type: "button", title: "read again now", onclick: () => ask(model, "refresh") }, "↻ refresh");
  const outcome = h("div", { class: "ipyvirt-outcome", role: "status" });
  const body = h("div", { class: "ipyvirt-x-body" }, empty("reading ..."));
  const question = h("div", { class: "ipyvirt-x-question", hidden: true });
  const memo = new Map();  // what a part keeps between redraws (drawStorage's pools)
  el.append(h("div", { class: "ipyvirt-bar" }, refresh, live), question, outcome, body);

  /** A button asking the kernel for `what`; disabled, saying why, on a read-only connection. */
  function act(what, text, describe, fields) {
    const ro = model.get("readonly");
    return h("button", {
      type: "button", "data-do": what, disabled: ro,
      title: ro ? `read-only connection: %virt connect --rw to ${describe}` : describe,
      onclick: () => ask(model, what, typeof fields === "function" ? fields() : fields),
    }, text);
  }
  /** A destructive button: it asks first, in the view; only "yes" reaches the kernel. */
  function confirm(describe, what, fields) {
    const ro = model.get("readonly");
    return h("button", {
      type: "button", class: "ipyvirt-danger", "data-do": what, disabled: ro,
      title: ro ? `read-only connection: %virt connect --rw to ${describe}` : describe,
      onclick: () => {
        question.replaceChildren(`${describe}? This cannot be undone. `,
          h("button", { type: "button", class: "ipyvirt-danger", "data-answer": "yes", onclick: () => { question.hidden = true; ask(model, what, fields); } }, describe.split(" ")[0]),
          h("button", { type: "button", "data-answer": "no", onclick: () => { question.hidden = true; } }, "cancel"));
        question.hidden = false;
      },
    }, "delete");
  }

  function draw() {
    const data = model.get("data");
    live.textContent = model.get("live");
    const text = model.get("outcome");
    outcome.textContent = text;
    outcome.classList.toggle("error", text.startsWith("error: "));
    if (!data || !Object.keys(data).length) return;
    const parts = [];
    if (data.error) parts.push(h("div", { class: "ipyvirt-outcome error" }, data.error));
    const part = PARTS[model.get("kind")];
    if (part && (data.host || data.supported !== undefined)) parts.push(...part(data, act, confirm, model, memo));
    const typed = keepTyped(body);
    const now = [...body.children];
    if (now.length === parts.length && parts.every((p, i) => now[i] === p || p.parentNode !== body)) {
      // each part where it was, or new: swap the new ones in, leave the rest in place (moving
      // every pool's element out and in again lays all of them out again)
      parts.forEach((part, i) => { if (now[i] !== part) body.replaceChild(part, now[i]); });
    } else {
      body.replaceChildren(...parts);
    }
    typed();
  }
  model.on("change:data", draw);
  model.on("change:live", draw);
  model.on("change:outcome", draw);
  draw();

  // hello once the part is first on screen (its tab selected): the kernel starts reading
  let said = false;
  const seen = new IntersectionObserver((entries) => {
    if (!said && entries.some((e) => e.isIntersecting)) {
      said = true;
      ask(model, "hello");
      seen.disconnect();
    }
  });
  seen.observe(el);
  return () => seen.disconnect();
}

export default { render };
