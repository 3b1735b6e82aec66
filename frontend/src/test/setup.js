// Global test setup (vitest + jsdom).
// jsdom does not implement scrolling; vue-router's scrollBehavior calls window.scrollTo.
if (typeof window !== "undefined") window.scrollTo = () => {}
