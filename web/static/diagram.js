/* Draw every process diagram of the page with the locally served bpmn-js viewer and mark its elements.
   A diagram box is <figure class="diagram" data-source="ID">, where <script type="application/json" id="ID">
   holds {"xml": "...", "markers": {"completed": [ids], "current": [ids], ...}} written by the server. */
(function () {
  "use strict";

  // The page gives each message in its language (data-text-* on the figure); the bilingual text is the fallback.
  function words(box, name, fallback) {
    return box.getAttribute("data-text-" + name) || fallback;
  }

  function message(box, text) {
    var status = box.querySelector(".status");
    if (status) { status.textContent = text; status.hidden = false; }
  }

  function draw(box) {
    var source = document.getElementById(box.getAttribute("data-source"));
    var canvasBox = box.querySelector(".canvas");
    if (!source || !canvasBox) { return; }
    if (typeof window.BpmnJS !== "function") {
      message(box, words(box, "no-viewer", "流程图无法显示（查看器未加载）/ the diagram viewer did not load"));
      return;
    }
    var data = JSON.parse(source.textContent);
    var viewer = new window.BpmnJS({ container: canvasBox });
    viewer.importXML(data.xml).then(function () {
      var canvas = viewer.get("canvas");
      var registry = viewer.get("elementRegistry");
      Object.keys(data.markers || {}).forEach(function (kind) {
        (data.markers[kind] || []).forEach(function (id) {
          if (registry.get(id)) { canvas.addMarker(id, "marker-" + kind); }
        });
      });
      canvas.zoom("fit-viewport", "auto");
      var natural = canvas.viewbox().inner.width;
      var toggle = box.querySelector("button[data-zoom]");
      if (toggle && natural) {
        toggle.hidden = false;
        toggle.addEventListener("click", function () {
          var enlarged = toggle.getAttribute("aria-pressed") === "true";
          canvasBox.style.width = enlarged ? "" : Math.ceil(natural + 40) + "px";
          canvasBox.style.height = enlarged ? "" : "480px";
          toggle.setAttribute("aria-pressed", enlarged ? "false" : "true");
          toggle.textContent = enlarged ? words(box, "enlarge", "放大 / enlarge") : words(box, "fit", "适合宽度 / fit");
          canvas.resized();
          canvas.zoom(enlarged ? "fit-viewport" : 1, "auto");
        });
      }
      // Fit again when the window changes (a phone turned sideways), unless the person enlarged it.
      var pending = null;
      window.addEventListener("resize", function () {
        window.clearTimeout(pending);
        pending = window.setTimeout(function () {
          if (toggle && toggle.getAttribute("aria-pressed") === "true") { return; }
          canvas.resized();
          canvas.zoom("fit-viewport", "auto");
        }, 150);
      });
      box.classList.add("drawn");
    }).catch(function (error) {
      message(box, words(box, "failed", "流程图无法显示 / the diagram cannot be drawn") + ": " + (error && error.message ? error.message : error));
    });
  }

  function drawAll() {
    Array.prototype.forEach.call(document.querySelectorAll("figure.diagram[data-source]"), draw);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", drawAll);
  } else {
    drawAll();
  }
})();
