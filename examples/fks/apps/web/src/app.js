// The dashboard's client code: polls the web service's /api/indicators and shows them.
const el = document.getElementById("indicators");

async function refresh() {
  const res = await fetch("/api/indicators");
  el.textContent = JSON.stringify(await res.json(), null, 2);
}

refresh();
setInterval(refresh, 5000);
