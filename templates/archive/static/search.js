/* Search page: mounts the Pagefind UI over every yearly index of the site
   (the newest one first, the others merged in) and runs the query given in
   the address (?q=...), so that the search form of other pages lands here. */
(function () {
  "use strict";
  var element = document.getElementById("recherche");
  if (!element || typeof window.PagefindUI !== "function") {
    return;
  }
  var root = new URL(element.getAttribute("data-root") || "./", window.location.href).pathname;
  root = (root + "/").replace(/\/+/g, "/");
  var volumes = (element.getAttribute("data-volumes") || "").split(",").filter(Boolean);
  if (!volumes.length) {
    return;
  }
  var bundle = function (volume) {
    return root + "pagefind/" + volume + "/";
  };
  var ui = new window.PagefindUI({
    element: "#recherche",
    bundlePath: bundle(volumes[0]),
    baseUrl: root,
    mergeIndex: volumes.slice(1).map(function (volume) {
      return { bundlePath: bundle(volume), baseUrl: root };
    }),
    showSubResults: true,
    showImages: false,
    resetStyles: false,
    autofocus: true,
    pageSize: 10
  });
  var query = new URLSearchParams(window.location.search).get("q");
  if (query) {
    ui.triggerSearch(query);
  }
})();
