// The console is many module files: when the download of one fails (a
// connection reset on a busy network or machine), the browser fails the
// whole module graph and the page would say "Loading…" for ever. This
// classic script runs before the modules, notices that failure (the module
// script's error event, caught at the window: resource errors do not
// bubble) and reloads the page, at most twice a minute; after that it says
// what happened instead of loading for ever.
(function () {
  "use strict";
  var key = "berth-console-reloads";
  window.addEventListener("error", function (e) {
    var s = e.target;
    if (!s || s.tagName !== "SCRIPT" || s.type !== "module") return;
    var now = Date.now();
    var recent = [];
    try {
      recent = JSON.parse(sessionStorage.getItem(key) || "[]").filter(function (t) { return now - t < 60000; });
    } catch (_) { /* unreadable: counted from now */ }
    if (recent.length < 2) {
      recent.push(now);
      try {
        sessionStorage.setItem(key, JSON.stringify(recent));
        location.reload();
        return;
      } catch (_) { /* the reloads cannot be counted: none, rather than a loop */ }
    }
    var app = document.getElementById("app");
    if (app) {
      app.textContent = "The console could not download its files from the manager. Check the connection to it, then reload the page.";
    }
  }, true);
})();
