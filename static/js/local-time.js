// Shows a moment given in UTC in the reader's own time zone and language, with a countdown.
(function () {
  "use strict";
  var lang = document.documentElement.lang || "en";
  function remaining(ms) {
    var minutes = Math.max(1, Math.round(ms / 60000));
    var days = Math.floor(minutes / 1440);
    var hours = Math.floor((minutes % 1440) / 60);
    var mins = minutes % 60;
    var unit = function (value, name) {
      return new Intl.NumberFormat(lang, { style: "unit", unit: name, unitDisplay: "long" }).format(value);
    };
    if (days) { return unit(days, "day") + (hours ? ", " + unit(hours, "hour") : ""); }
    if (hours) { return unit(hours, "hour") + (mins ? ", " + unit(mins, "minute") : ""); }
    return unit(mins, "minute");
  }
  function render(node) {
    var until = new Date(node.getAttribute("data-until"));
    if (isNaN(until.getTime())) { return; }
    var time = new Intl.DateTimeFormat(lang, { dateStyle: "full", timeStyle: "short", timeZoneName: "short" }).format(until);
    node.textContent = node.getAttribute("data-template")
      .replace("{time}", time).replace("{remaining}", remaining(until - new Date()));
    node.hidden = false;
  }
  var nodes = document.querySelectorAll("[data-local-time]");
  Array.prototype.forEach.call(nodes, render);
  if (nodes.length) {
    window.setInterval(function () { Array.prototype.forEach.call(nodes, render); }, 30000);
  }
})();
