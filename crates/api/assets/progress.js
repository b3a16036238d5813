// Keeps a running batch's progress current without reloading the page; reloads it once
// when the batch is final (so its download links and notifications appear). A page
// without a batch's progress (the list while a batch runs) is reloaded every few seconds.
// Without JavaScript, a <noscript> refresh does the same, more coarsely.
(function () {
  "use strict";
  var section = document.getElementById("progress");
  if (!section) {
    window.setTimeout(function () { window.location.reload(); }, 5000);
    return;
  }
  if (section.getAttribute("data-status") !== "processing") {
    // A final batch waiting for a delivery due now: show its attempt when it is made.
    window.setTimeout(function () { window.location.reload(); }, 3000);
    return;
  }
  var url = section.getAttribute("data-progress-url");
  var bar = section.querySelector("progress");
  var text = document.getElementById("progress-text");
  var status = document.getElementById("batch-status");
  function tick() {
    fetch(url, { headers: { "Accept": "application/json" }, credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
      .then(function (p) {
        if (p.total > 0 && bar) {
          bar.max = p.total;
          bar.value = p.completed + p.failed;
          bar.setAttribute("aria-valuetext", (p.completed + p.failed) + " of " + p.total + " finished");
        }
        if (text) {
          text.textContent = p.completed + " done, " + p.failed + " failed, " +
            p.in_progress + " in progress, " + p.total + " in all.";
        }
        if (status) { status.textContent = p.status; }
        if (p.status !== "processing") {
          window.location.reload();
        } else {
          window.setTimeout(tick, 2000);
        }
      })
      .catch(function () { window.setTimeout(tick, 5000); });
  }
  window.setTimeout(tick, 2000);
})();
