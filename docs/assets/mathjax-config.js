/* MathJax, served with the site: docs/hooks.py copies it into assets/mathjax/ from the installed
 * Python package django-static-mathjax, so formulas render offline.
 *
 * It is loaded only by a page that has a formula (pymdownx.arithmatex marks them), and typesets that
 * page once, when it has loaded. A page that Material swaps in without a reload (instant navigation)
 * is typeset when it arrives. If MathJax cannot load, the formulas stay as their TeX source and
 * nothing throws. */
window.MathJax = {
  tex: {inlineMath: [["\\(", "\\)"]], displayMath: [["\\[", "\\]"]], processEscapes: true, processEnvironments: true},
  options: {ignoreHtmlClass: ".*|", processHtmlClass: "arithmatex"},
};

(() => {
  const src = new URL("mathjax/tex-chtml.js", document.currentScript.src).href;
  const hasMath = () => document.querySelector(".arithmatex") !== null;
  let requested = false;

  function load() {
    requested = true;
    const script = document.createElement("script");
    script.src = src;
    script.async = true;
    document.head.appendChild(script);  // MathJax typesets the page when its startup is done
  }

  function typeset() {
    const mj = window.MathJax;
    if (typeof mj.typesetPromise !== "function") return;  // still loading (it typesets then), or failed
    mj.startup.output.clearCache();
    mj.typesetClear();
    mj.texReset();
    mj.typesetPromise();
  }

  const update = () => { if (hasMath()) (requested ? typeset : load)(); };
  if (typeof document$ !== "undefined") document$.subscribe(update);  // every page Material shows
  else update();
})();
