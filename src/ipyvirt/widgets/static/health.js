// A fleet host's health (prepended to the fleet's views only: fleet_table.js, fleet_health.js).

/** A fleet host's health as a badge, its colour said in words: "failed (why); next try in 4.0 s"
 * shows "failed", the rest in its tooltip (fleet_host.py's health). */
function healthBadge(text) {
  const at = text.indexOf(" (");
  const word = at < 0 ? text : text.slice(0, at);
  const kind = { connected: "running", connecting: "paused", reconnecting: "paused",
    "not responding": "crashed", failed: "crashed" }[word] || "unknown";
  return h("span", { class: `ipyvirt-badge ipyvirt-state-${kind}`, title: text }, word);
}
