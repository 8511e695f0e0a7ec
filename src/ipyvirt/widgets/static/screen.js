// A domain's screen (ipyvirt.widgets.Screen): the kernel sends {kind: "shot", width, height}
// with the PNG as a buffer, at most every few seconds and only while a view is shown: this
// view says hello when it renders and bye when it goes.

function render({ model, el }) {
  const title = h("span", { class: "ipyvirt-head-title" });
  const status = h("span", { class: "ipyvirt-scr-status", role: "status" });
  const img = h("img", { class: "ipyvirt-scr-img", alt: "" });
  const empty = h("div", { class: "ipyvirt-empty ipyvirt-scr-empty" }, "waiting for a picture");
  const root = h(
    "div",
    { class: "ipyvirt-view ipyvirt-scr" },
    h("div", { class: "ipyvirt-head" }, title, status),
    empty,
    img,
  );
  img.hidden = true;
  el.append(root);
  let url = null;

  function showStatus() {
    title.textContent = `screen of ${model.get("name")}`;
    const text = model.get("status");
    status.textContent = text;
    if (text && img.hidden) empty.textContent = text;
  }
  showStatus();
  model.on("change:status", showStatus);

  function onMessage(msg, buffers) {
    if (msg.kind !== "shot") return;
    // a buffer arrives as a DataView, which a Blob takes as it is
    const next = URL.createObjectURL(new Blob([buffers[0]], { type: "image/png" }));
    img.onload = () => {
      if (url) URL.revokeObjectURL(url);
      url = next;
    };
    img.src = next;
    img.width = msg.width;
    img.height = msg.height;
    img.alt = `the screen of ${model.get("name")}, ${msg.width}x${msg.height}`;
    img.hidden = false;
    empty.hidden = true;
  }
  model.on("msg:custom", onMessage);
  ask(model, "hello");
  return () => {
    ask(model, "bye");
    model.off("msg:custom", onMessage);
    model.off("change:status", showStatus);
    if (url) URL.revokeObjectURL(url);
  };
}

export default { render };
