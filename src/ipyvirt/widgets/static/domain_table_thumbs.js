// The domain table's thumbnail column (DomainTable(thumbnails=True)); in the table's module
// only when it has one. Pictures are asked for ({do: "thumbs"}) when the table comes on
// screen with its page visible, then every `thumbnails` seconds while that holds; the kernel
// sends {kind: "thumbs", shots: [[key, width, height]], words: {key: [word, why]}} with the
// PNGs as buffers, each picture once per change.

const THUMB_STATES = new Set(["running", "paused"]);

function tableThumbs(model, el, body) {
  el.append(h("style", {}, THUMBS_CSS));
  // key -> {img} or {word, why}; an <img> moves into each redraw's row (decoded once)
  const pictures = new Map();
  function drop(key) {
    const pic = pictures.get(key);
    if (pic?.img) URL.revokeObjectURL(pic.img.src);
    pictures.delete(key);
  }
  function fill(td, st) {
    const pic = pictures.get(td.dataset.uuid);
    const word = (text, why) => h("span", { class: "ipyvirt-thumb-word", title: why }, text);
    if (!THUMB_STATES.has(st)) td.replaceChildren(word("–", "not running: no screen"));
    else if (!pic) td.replaceChildren(word("…", "waiting for a picture"));
    else if (!pic.img) td.replaceChildren(word(pic.word, pic.why));
    else {
      const { name } = td.dataset;
      pic.img.alt = `screen of ${name}`;
      pic.img.title = `${name}: ${pic.size}`;
      td.replaceChildren(pic.img);
    }
  }
  function onMessage(msg, buffers) {
    if (msg.kind !== "thumbs") return;
    msg.shots.forEach(([key, w, hi], n) => {
      drop(key);
      // a buffer arrives as a DataView, which a Blob takes as it is
      const url = URL.createObjectURL(new Blob([buffers[n]], { type: "image/png" }));
      pictures.set(key, { img: h("img", { class: "ipyvirt-thumb-img", src: url }), size: `${w}x${hi}` });
    });
    for (const [key, [word, why]] of Object.entries(msg.words)) {
      drop(key);
      pictures.set(key, { word, why });
    }
    for (const td of body.querySelectorAll("td.ipyvirt-thumb")) {
      if (pictures.has(td.dataset.uuid)) fill(td, td.closest("tr").dataset.state);
    }
  }
  let onScreen = false, watching = false, timer = null, fresh = true;
  const askNow = () => { ask(model, "thumbs", fresh ? { fresh: true } : {}); fresh = false; };
  function watch() {
    const want = onScreen && document.visibilityState === "visible";
    if (want === watching) return;
    watching = want;
    clearInterval(timer);
    timer = want ? setInterval(askNow, model.get("thumbnails") * 1000) : null;
    if (want) askNow();
  }
  // a hidden Lab tab, a dashboard tab not chosen, a table scrolled away: not intersecting
  const seen = new IntersectionObserver((entries) => {
    onScreen = entries[entries.length - 1].isIntersecting;
    watch();
  });
  seen.observe(el);
  document.addEventListener("visibilitychange", watch);
  model.on("msg:custom", onMessage);
  return {
    cell(uuid, st, name) {
      const td = h("td", { class: "ipyvirt-thumb", "data-uuid": uuid, "data-name": name });
      fill(td, st);
      return td;
    },
    // the kernel forgets the same rows (a picture is sent again when one comes back)
    forget(rows) {
      const kept = new Set(rows.filter((r) => THUMB_STATES.has(r[3])).map((r) => r[0]));
      for (const key of [...pictures.keys()]) if (!kept.has(key)) drop(key);
    },
    dispose() {
      seen.disconnect();
      clearInterval(timer);
      document.removeEventListener("visibilitychange", watch);
      model.off("msg:custom", onMessage);
      for (const key of [...pictures.keys()]) drop(key);
    },
  };
}
