// Shared by every ipyvirt view (prepended to each view's module by ipyvirt.widgets.view.esm).

/** An element: h("td", {class: "x", title: "..."}, child, "text", ...). */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

/** A domain state as a coloured badge; the colour is also said in words (the text). */
function stateBadge(state) {
  const kind = String(state).replace(/[^a-z]/g, "") || "unknown";
  return h("span", { class: `ipyvirt-badge ipyvirt-state-${kind}` }, state);
}

/** Ask the kernel to do something: the kernel owns the state, the view only asks. */
function ask(model, what, fields) {
  model.send({ do: what, ...(fields || {}) });
}
