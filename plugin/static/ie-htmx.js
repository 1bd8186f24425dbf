// Loads htmx once: not when the host page already has it (window.htmx, from a script
// placed before the add-on's markup), and not a second time for a second panel.
// While the page is being parsed the copy is written in place, so it runs as a plain
// <script> there would (htmx then starts on DOMContentLoaded, with the page's
// htmx-config); later (markup swapped in) it is appended and the body processed.
(function () {
  var me = document.currentScript;
  if (window.htmx || window.ieHtmxLoading) return;
  window.ieHtmxLoading = true;
  var src = me.getAttribute("data-htmx");
  if (document.readyState === "loading") {
    document.write('<script src="' + src.replace(/"/g, "&quot;") + '"><\/script>');
    return;
  }
  var s = document.createElement("script");
  s.src = src;
  s.onload = function () { window.htmx.process(document.body); };
  document.head.appendChild(s);
})();
