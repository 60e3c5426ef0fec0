// Agenda page: show only the events of the chosen territory (the page works without it).
(function () {
  "use strict";
  var select = document.getElementById("agenda-territoire");
  if (!select) return;
  function apply() {
    var wanted = select.value;
    var events = document.querySelectorAll(".event");
    for (var i = 0; i < events.length; i++) {
      var t = events[i].getAttribute("data-territory") || "";
      events[i].hidden = wanted !== "" && t !== wanted;
    }
  }
  select.addEventListener("change", apply);
  var params = new URLSearchParams(window.location.search);
  if (params.get("territoire")) {
    select.value = params.get("territoire");
  }
  apply();
})();
