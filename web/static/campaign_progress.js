// The launch progress bar of a campaign page: poll the progress endpoint until the launch is done.
(function () {
  "use strict";
  var box = document.getElementById("launch-progress");
  if (!box || box.dataset.done === "true") { return; }
  var bar = document.getElementById("launch-bar");
  var text = document.getElementById("launch-text");
  var status = document.getElementById("campaign-status");

  function show(p) {
    bar.max = p.total || 1;
    bar.value = p.total ? p.launched : 1;
    text.textContent = p.text;  // in the page's language, worded by the server
    if (status && p.status_name) { status.textContent = p.status_name; }
  }

  function poll() {
    fetch(box.dataset.url, { headers: { "Accept": "application/json" }, credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : Promise.reject(response.status); })
      .then(function (p) { show(p); if (!p.done) { setTimeout(poll, 1000); } })
      .catch(function () { setTimeout(poll, 5000); });
  }
  setTimeout(poll, 500);
}());
