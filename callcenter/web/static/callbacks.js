// 未接来电回拨: refresh the list every 20 s while nobody is filling in a form, and the
// nav badge (every page of the front desk) with the number of open entries: every
// 30 s, and at once when the console's WebSocket says the list changed.
(function () {
  "use strict";
  const badge = document.querySelector("[data-callback-count]");
  async function count() {
    if (!badge) return;
    try {
      const resp = await fetch("/api/callbacks?state=open&limit=1",
                               {headers: {"Accept": "application/json"}, credentials: "same-origin"});
      if (!resp.ok) return;
      const n = (await resp.json()).open_count || 0;
      badge.textContent = n ? String(n) : "";
      badge.hidden = !n;
    } catch (e) { /* offline: keep the last count */ }
  }
  count();
  setInterval(count, 30000);
  // The console's WebSocket says when the worklist changed (console.js).
  window.addEventListener("callbacks-changed", count);
  const list = document.querySelector("[data-refresh]");
  if (list) {
    setInterval(function () {
      const active = document.activeElement;
      const typing = active && active.closest && active.closest("form");
      if (!typing && document.visibilityState === "visible") location.reload();
    }, 20000);
  }
})();
