// Progressive enhancement only: every page works without this script.
// Create Company: propose the Company ID from the name as it is typed, until the ID is edited.
(function () {
  var name = document.getElementById("name");
  var id = document.getElementById("id");
  if (!name || !id || id.readOnly) return;
  var touched = id.value !== "";
  id.addEventListener("input", function () { touched = id.value !== ""; });
  name.addEventListener("input", function () {
    if (touched) return;
    id.value = name.value.toLowerCase().normalize("NFKD")
      .replace(/[^a-z0-9]+/g, "-").replace(/^-+/, "").slice(0, 50).replace(/-+$/, "");
  });
})();

// A list with something still pending (a company being set up, an invitation being sent)
// updates its live region in place every data-refresh seconds until nothing is pending: no
// reload, so nothing typed into the page's forms is lost and focus stays where it is. Without
// this script, the page says to reload it.
(function () {
  var every = Number(document.body.getAttribute("data-refresh"));
  if (!every || !window.fetch || !window.DOMParser) return;
  function later(factor) { setTimeout(tick, every * 1000 * factor); }
  function tick() {
    fetch(location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html) return later(2);
        var doc = new DOMParser().parseFromString(html, "text/html");
        var busy = false;
        document.querySelectorAll("[data-live]").forEach(function (el) {
          var fresh = doc.getElementById(el.id);
          if (!fresh) return;
          if (el.contains(document.activeElement)) { busy = true; return; }
          el.innerHTML = fresh.innerHTML;
        });
        if (busy || doc.body.getAttribute("data-refresh")) later(1);
      })
      .catch(function () { later(2); });
  }
  later(1);
})();
