// Progressive touches only: the page works the same without this file.
"use strict";
(function () {
  var transcript = document.getElementById("transcript");
  if (transcript) { transcript.scrollTop = transcript.scrollHeight; }
  var text = document.getElementById("text");
  var form = document.getElementById("say");
  if (text && form) {
    text.addEventListener("keydown", function (event) {  // Enter says it; Shift+Enter for a new line
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        if (text.value.trim() !== "") { form.requestSubmit(form.querySelector("button.primary")); }
      }
    });
  }
  document.querySelectorAll("form").forEach(function (f) {
    f.addEventListener("submit", function (event) {
      if (f.dataset.sent === "1") { event.preventDefault(); return; }  // no double turns on a double click
      f.dataset.sent = "1";
      // Disabled after the form data is built, so the pressed button's value still goes.
      setTimeout(function () { f.querySelectorAll("button").forEach(function (b) { b.disabled = true; }); }, 0);
    });
  });
  document.body.setAttribute("data-ready", "1");
}());
