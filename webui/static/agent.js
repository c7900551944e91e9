// The agent panel: when a call pops, say so in the tab's title (the panel may be behind other
// windows) and give a short beep where the browser allows sound.
document.addEventListener("DOMContentLoaded", function () {
  var title = document.title;
  document.body.addEventListener("htmx:sseMessage", function (e) {
    if (!e.detail || e.detail.type !== "agent_pop") return;
    var number = document.getElementById("pop-number");
    document.title = (number ? number.textContent + " · " : "") + title;
    // What the page said about the previous call ("Noted.") is old news now.
    var notice = document.querySelector("main > p.notice");
    if (notice) notice.remove();
    // On a phone the record sits below the controls: bring it into view.
    var pop = document.getElementById("agent-pop");
    if (pop && window.innerWidth < 960) pop.scrollIntoView({block: "start"});
    try {
      var ctx = new (window.AudioContext || window.webkitAudioContext)();
      var osc = ctx.createOscillator(), gain = ctx.createGain();
      osc.frequency.value = 880; gain.gain.value = 0.08;
      osc.connect(gain); gain.connect(ctx.destination);
      osc.start(); osc.stop(ctx.currentTime + 0.25);
    } catch (err) { /* no sound: the title and the pop still show */ }
  });
});
