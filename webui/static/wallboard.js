// The wallboard's full-screen button (a TV in a room); shown only where the browser allows it.
document.addEventListener("DOMContentLoaded", function () {
  var button = document.getElementById("fullscreen");
  if (!button || !document.fullscreenEnabled) return;
  button.hidden = false;
  button.addEventListener("click", function () {
    if (document.fullscreenElement) document.exitFullscreen();
    else document.documentElement.requestFullscreen();
  });
});
