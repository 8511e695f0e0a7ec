// A guest's serial console (ipyvirt.widgets.Console): xterm.js, fed by the kernel.
// The kernel sends {kind: "hello"} with the scrollback (and xterm.js itself, the first time
// a page asks), then {kind: "out"} with raw bytes, coalesced. Keystrokes, and xterm.js's
// answers to terminal queries (busybox's ESC[6n after each prompt), go back as {do: "keys"}.

const XTERM_KEY = "__ipyvirtXterm"; // one import of xterm.js per page

function loadXterm(code) {
  if (!globalThis[XTERM_KEY]) {
    const url = URL.createObjectURL(new Blob([code], { type: "text/javascript" }));
    globalThis[XTERM_KEY] = import(url).finally(() => URL.revokeObjectURL(url));
  }
  return globalThis[XTERM_KEY];
}

function themeColours(el) {
  const style = getComputedStyle(el);
  const v = (name, fallback) => style.getPropertyValue(name).trim() || fallback;
  return {
    background: v("--jp-layout-color0", "#ffffff"),
    foreground: v("--jp-ui-font-color0", "#000000"),
    cursor: v("--jp-ui-font-color0", "#000000"),
    selectionBackground: v("--jp-brand-color2", "#90caf9"),
  };
}

function render({ model, el }) {
  const status = h("span", { class: "ipyvirt-con-status", role: "status" });
  const title = h("span", { class: "ipyvirt-head-title" });
  const screen = h("div", { class: "ipyvirt-con-screen" });
  const root = h(
    "div",
    { class: "ipyvirt-view ipyvirt-con" },
    h("div", { class: "ipyvirt-head" }, title, status),
    screen,
  );
  el.append(root);

  let term = null;
  const early = []; // output that came before the terminal existed

  function showStatus() {
    title.textContent = `console of ${model.get("name")}`;
    const text = model.get("status");
    status.textContent = text;
    status.className =
      "ipyvirt-con-status" + (text.startsWith("connected") ? " ipyvirt-con-up" : " ipyvirt-con-down");
  }
  showStatus();
  model.on("change:status", showStatus);

  // a buffer arrives as a DataView on part of a larger ArrayBuffer: its own bytes only
  function bytesOf(view) {
    return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
  }

  function write(buffer) {
    const bytes = bytesOf(buffer);
    if (term) term.write(bytes);
    else early.push(bytes);
  }

  async function start(code, scrollback) {
    const { Terminal } = await loadXterm(code);
    term = new Terminal({
      convertEol: false,
      cursorBlink: true,
      fontSize: 13,
      rows: 24,
      cols: 80,
      scrollback: 2000,
      theme: themeColours(root),
    });
    term.open(screen);
    term.onData((data) => ask(model, "keys", { data }));
    if (scrollback) term.write(bytesOf(scrollback));
    for (const bytes of early.splice(0)) term.write(bytes);
    // a theme's name is set first and its stylesheet applies later: read the colours again
    // until they settle
    const timers = [];
    const observer = new MutationObserver(() => {
      for (const ms of [0, 250, 1000, 3000]) {
        timers.push(setTimeout(() => (term.options.theme = themeColours(root)), ms));
      }
    });
    observer.observe(document.body, {
      attributes: true,
      attributeFilter: ["data-jp-theme-light", "data-jp-theme-name"],
    });
    cleanups.push(
      () => observer.disconnect(),
      () => timers.forEach(clearTimeout),
      () => term.dispose(),
    );
  }

  const cleanups = [];
  let starting = false;
  function onMessage(msg, buffers) {
    if (msg.kind === "hello" && !term && !starting) {
      // buffers: xterm.js's code if asked for, then the scrollback if there is any
      const code = msg.xterm ? buffers[0] : null;
      const scrollback = msg.scrollback ? buffers[msg.xterm ? 1 : 0] : null;
      starting = true;
      start(code ? new TextDecoder().decode(bytesOf(code)) : null, scrollback);
    } else if (msg.kind === "out") {
      write(buffers[0]);
    }
  }
  model.on("msg:custom", onMessage);
  ask(model, "hello", { xterm: !globalThis[XTERM_KEY] });
  return () => {
    model.off("msg:custom", onMessage);
    model.off("change:status", showStatus);
    for (const undo of cleanups) undo();
  };
}

export default { render };
