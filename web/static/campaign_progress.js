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
    var chunks = p.chunks.filter(function (c) { return c.state === "done"; }).length;
    text.textContent = "已创建 " + p.launched + " / " + p.total + " 个流程实例（" + p.percent + "%），" +
      chunks + " / " + p.chunks.length + " 批完成" + (p.failed ? "，" + p.failed + " 个未能发起" : "") + "。";
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
