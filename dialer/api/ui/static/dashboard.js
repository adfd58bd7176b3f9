// Live parts of the dashboard: every element with data-live-src is refreshed from that
// URL (an HTML fragment of this site) every data-live-seconds seconds while the tab is
// visible. No library, no CDN: the page works offline. A 401 means the session ended:
// reload, and the server sends the sign-in page.
(function () {
  "use strict";
  var HEADER = "X-Dashboard-Fetch";

  function refresh(element) {
    var source = element.getAttribute("data-live-src");
    if (!source || document.hidden || element.getAttribute("data-live-busy")) {
      return;
    }
    element.setAttribute("data-live-busy", "1");
    var headers = {};
    headers[HEADER] = "1";
    fetch(source, { credentials: "same-origin", headers: headers, cache: "no-store" })
      .then(function (response) {
        if (response.status === 401) {
          window.location.reload();
          return null;
        }
        return response.ok ? response.text() : null;
      })
      .then(function (html) {
        if (html !== null && html !== undefined) {
          element.innerHTML = html;
          element.setAttribute("data-live-updated", new Date().toISOString());
        }
      })
      .catch(function () { /* offline for a moment: try again next tick */ })
      .then(function () { element.removeAttribute("data-live-busy"); });
  }

  function start() {
    var elements = document.querySelectorAll("[data-live-src]");
    Array.prototype.forEach.call(elements, function (element) {
      var seconds = parseInt(element.getAttribute("data-live-seconds") || "5", 10);
      window.setInterval(function () { refresh(element); }, Math.max(seconds, 1) * 1000);
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
