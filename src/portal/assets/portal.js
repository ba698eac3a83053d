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
