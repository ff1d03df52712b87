// Backup codes page: copy and print buttons (the download link works without this file).
(function () {
  "use strict";
  var list = document.getElementById("backup-codes");
  var status = document.getElementById("codes-status");
  if (!list || !status) { return; }
  var codes = Array.prototype.map.call(list.querySelectorAll("code"), function (node) {
    return node.textContent.trim();
  });
  var copy = document.getElementById("copy-codes");
  if (copy && navigator.clipboard) {
    copy.hidden = false;
    copy.addEventListener("click", function () {
      navigator.clipboard.writeText(codes.join("\n")).then(function () {
        status.textContent = copy.getAttribute("data-done");
      });
    });
  }
  var print = document.getElementById("print-codes");
  if (print) {
    print.hidden = false;
    print.addEventListener("click", function () { window.print(); });
  }
})();
