/* The agents' pages, enhanced: keyboard shortcuts with a help overlay, and the claim's
   countdown, renewed while the agent works. Every page works without this file. */
(function () {
  "use strict";

  var RENEW_EVERY_MS = 60 * 1000;
  var RENEW_WHEN_WARNED_MS = 5 * 1000;

  function typing(target) {
    var tag = target && target.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || (target && target.isContentEditable);
  }

  function helpDialog() {
    return document.getElementById("shortcuts-help");
  }

  function toggleHelp() {
    var dialog = helpDialog();
    if (!dialog || typeof dialog.showModal !== "function") return;
    if (dialog.open) dialog.close(); else dialog.showModal();
  }

  function clickShortcut(key) {
    var element = document.querySelector('[data-shortcut="' + key + '"]');
    if (!element) return false;
    element.click();
    return true;
  }

  function focusField(selector) {
    var field = document.querySelector(selector);
    if (!field) return false;
    field.focus();
    return true;
  }

  var FIELDS = {
    a: "#ask-customer textarea",
    m: "#internal-note textarea",
    g: "#give-back input[type=text]"
  };

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    var dialog = helpDialog();
    if (event.key === "Escape") {
      if (dialog && dialog.open) return;
      var cancel = document.getElementById("confirm-cancel");
      if (cancel) { window.location.href = cancel.href; }
      return;
    }
    if (typing(event.target)) return;
    var handled = false;
    if (event.key === "?") { toggleHelp(); handled = true; }
    else if (FIELDS[event.key]) { handled = focusField(FIELDS[event.key]); }
    else if (event.key.length === 1) { handled = clickShortcut(event.key); }
    if (handled) event.preventDefault();
  });

  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("[data-shortcut-help]");
    if (!link) return;
    event.preventDefault();
    toggleHelp();
  });

  /* The claim: a countdown, a warning before it runs out, renewal while the agent works. */
  function minutesSeconds(ms) {
    var total = Math.max(0, Math.floor(ms / 1000));
    var seconds = total % 60;
    return Math.floor(total / 60) + ":" + (seconds < 10 ? "0" : "") + seconds;
  }

  function startLease(lease) {
    var countdown = document.getElementById("lease-countdown");
    var warning = document.getElementById("lease-warning");
    var expiresAt = Date.parse(lease.dataset.expiresAt);
    var warnMs = parseInt(lease.dataset.warnSeconds, 10) * 1000;
    var token = lease.querySelector("input[name=csrfmiddlewaretoken]").value;
    var lastRenewal = 0;
    var expired = false;

    function render() {
      var left = expiresAt - Date.now();
      if (left <= 0) {
        if (!expired) {
          expired = true;
          lease.classList.add("lease-expired");
          countdown.textContent = lease.dataset.expiredText;
          warning.textContent = "";
        }
        return;
      }
      countdown.textContent = minutesSeconds(left) + " " + lease.dataset.leftText;
      var warn = left <= warnMs;
      lease.classList.toggle("lease-warning", warn);
      if (warn && !warning.textContent) warning.textContent = lease.dataset.warningText;
      if (!warn) warning.textContent = "";
    }

    function renew() {
      lastRenewal = Date.now();
      fetch(lease.dataset.renewUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Accept": "application/json", "X-CSRFToken": token }
      }).then(function (response) {
        return response.json();
      }).then(function (body) {
        if (body.expires_at) { expiresAt = Date.parse(body.expires_at); render(); }
        else if (body.expired) { expiresAt = Date.now(); render(); }
      }).catch(function () { /* the next activity tries again */ });
    }

    function activity() {
      if (expired) return;
      var left = expiresAt - Date.now();
      var since = Date.now() - lastRenewal;
      if (since >= RENEW_EVERY_MS || (left <= warnMs && since >= RENEW_WHEN_WARNED_MS)) renew();
    }

    ["keydown", "mousedown", "input", "scroll", "touchstart"].forEach(function (name) {
      document.addEventListener(name, activity, { passive: true });
    });
    lease.addEventListener("submit", function (event) { event.preventDefault(); renew(); });
    render();
    window.setInterval(render, 1000);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var lease = document.getElementById("lease");
    if (lease && lease.dataset.expiresAt) startLease(lease);
  });
})();
