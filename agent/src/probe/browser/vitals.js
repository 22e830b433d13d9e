// Injected before any of the page's own scripts (Page.addScriptToEvaluateOnNewDocument).
// Observes paints, layout shifts and long tasks as web-vitals does, and
// exposes one non-enumerable function the probe calls when it is done:
// __slaprobeVitals(selector) -> JSON string, times in milliseconds from the
// navigation's start (the page's time origin).
(() => {
  if (Object.prototype.hasOwnProperty.call(globalThis, '__slaprobeVitals')) return;
  const s = { fcp: null, lcp: null, cls: 0, win: 0, winFirst: 0, winLast: 0, tasks: [] };
  // The probe's binding (Runtime.addBinding): each paint, LCP candidate,
  // layout shift and long task tells the probe the page is still changing,
  // so it keeps watching until the page has been quiet (not only its
  // network). Taken off the global object before the page's scripts run,
  // so the page can neither call it nor see it.
  let ping = null;
  if (typeof globalThis.__slaprobeActivity === 'function') {
    ping = globalThis.__slaprobeActivity;
    try { delete globalThis.__slaprobeActivity; } catch (e) { /* stays visible */ }
  }
  const observers = [];
  const observe = (type, onEntry) => {
    const each = (list) => list.getEntries().forEach((e) => {
      onEntry(e);
      if (ping) { try { ping(type); } catch (err) { ping = null; } }
    });
    try {
      const o = new PerformanceObserver(each);
      o.observe({ type, buffered: true });
      observers.push([o, each]);
    } catch (e) { /* entry type not supported: that metric stays null */ }
  };
  observe('paint', (e) => { if (e.name === 'first-contentful-paint') s.fcp = e.startTime; });
  // The last candidate is the LCP (candidates only grow in size).
  observe('largest-contentful-paint', (e) => { s.lcp = e.startTime; });
  // CLS as web-vitals: shifts within 1 s of the previous one and 5 s of the
  // window's first form a session window; CLS is the largest window's sum.
  // Shifts right after user input do not count.
  observe('layout-shift', (e) => {
    if (e.hadRecentInput) return;
    if (s.win > 0 && e.startTime - s.winLast < 1000 && e.startTime - s.winFirst < 5000) {
      s.win += e.value;
    } else {
      s.win = e.value;
      s.winFirst = e.startTime;
    }
    s.winLast = e.startTime;
    if (s.win > s.cls) s.cls = s.win;
  });
  observe('longtask', (e) => { if (s.tasks.length < 10000) s.tasks.push([e.startTime, e.duration]); });
  const positive = (v) => (typeof v === 'number' && v > 0 ? v : null);
  Object.defineProperty(globalThis, '__slaprobeVitals', {
    enumerable: false,
    value: (selector) => {
      // Entries recorded but not yet delivered to the callbacks (a long
      // task that just ended, a shift of the last frame) count too.
      for (const [o, each] of observers) {
        try { const pending = o.takeRecords(); if (pending.length) each({ getEntries: () => pending }); } catch (e) { /* ignore */ }
      }
      const nav = performance.getEntriesByType('navigation')[0];
      // TBT: each long task's time over 50 ms, counting only what lies after
      // FCP (Lighthouse clips a task that spans FCP), up to now (the probe
      // ends once the page has been quiet after load: a stand-in for TTI).
      // The observer's callback runs as a task of its own: on a starved
      // renderer it may not have run yet although the paint is recorded.
      if (s.fcp === null) {
        const p = performance.getEntriesByName('first-contentful-paint')[0];
        if (p) s.fcp = p.startTime;
      }
      let tbt = null;
      if (s.fcp !== null) {
        tbt = 0;
        for (const [start, duration] of s.tasks) {
          const end = start + duration;
          if (end <= s.fcp) continue;
          const blocking = end - Math.max(start, s.fcp) - 50;
          if (blocking > 0) tbt += blocking;
        }
      }
      let sel = null;
      if (typeof selector === 'string') {
        try { sel = document.querySelector(selector) !== null; } catch (e) { sel = String(e && e.message || e); }
      }
      return JSON.stringify({
        ttfb: nav ? positive(nav.responseStart) : null,
        dom_content_loaded: nav ? positive(nav.domContentLoadedEventStart) : null,
        load: nav ? positive(nav.loadEventStart) : null,
        fcp: s.fcp,
        lcp: s.lcp,
        cls: s.cls,
        tbt,
        selector: sel,
        url: location.href,
      });
    },
  });
})();
