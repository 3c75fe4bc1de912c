// The terminal page's buttons (no inline script: the Content-Security-Policy allows none).
// Start (with ?delay) and Restart load the page again, which opens a new app for the session.
function tuimailRestart() {
  const url = new URL(window.location.href);
  url.searchParams.delete("delay");
  window.location.href = url.pathname + (url.searchParams.toString() ? "?" + url.searchParams.toString() : "");
}
document.addEventListener("DOMContentLoaded", () => {
  for (const id of ["start", "restart"]) {
    const button = document.getElementById(id);
    if (button) button.addEventListener("click", tuimailRestart);
  }
});
