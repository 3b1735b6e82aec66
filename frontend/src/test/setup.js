// Global test setup (vitest + jsdom).
// jsdom does not implement scrolling; vue-router's scrollBehavior calls window.scrollTo.
if (typeof window !== "undefined") window.scrollTo = () => {}

// jsdom has no canvas: charts (Chart.js) get a 2D context that accepts every drawing call
// and draws nothing, so components mount as in a browser; what a chart shows is tested
// through its configuration (lib/chart.js).
if (typeof HTMLCanvasElement !== "undefined") {
  const noop = () => {}
  const context = (canvas) =>
    new Proxy(
      { canvas, measureText: () => ({ width: 0, actualBoundingBoxAscent: 0, actualBoundingBoxDescent: 0 }), getImageData: () => ({ data: [] }), createLinearGradient: () => ({ addColorStop: noop }), createRadialGradient: () => ({ addColorStop: noop }), createPattern: () => ({}), getLineDash: () => [], isPointInPath: () => false, getTransform: () => ({}) },
      { get: (target, key) => (key in target ? target[key] : noop), set: () => true },
    )
  HTMLCanvasElement.prototype.getContext = function getContext() {
    return context(this)
  }
}
