"use strict";
// The pool page's live updates: every 2 s it reads stats.json and redraws
// the figures and charts the server drew at first. The formatting and the
// charts mirror debug_page.go and debug_chart.go. Text from the figures is
// set with textContent only; the charts' markup is made of numbers.
(() => {
  const W = 240, H = 50, STEP = 4, EVERY = 2000;
  const liveEl = document.getElementById("live");
  const updated = document.getElementById("updated");
  const layout = document.body.dataset.layout;
  let polls = 0;

  const fmtVal = (v, unit) => {
    switch (unit) {
      case "%": return v.toFixed(1) + "%";
      case "ms": return v.toFixed(v < 1 ? 2 : v < 10 ? 1 : 0) + " ms";
      case "/s": return v.toFixed(v < 10 ? 1 : 0) + "/s";
    }
    return v.toFixed(0);
  };
  const niceCeil = (m) => {
    if (m <= 0) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(m)));
    for (const f of [1, 2, 5, 10]) if (f * p >= m) return f * p;
    return 10 * p;
  };
  const gauge = (x) => x.map(Number);
  const rate = (x, dur) => x.map((n, i) => (dur[i] >= 1000 ? (n * 1000) / dur[i] : NaN));
  const ratio = (a, b) => a.map((n, i) => (b[i] > 0 ? (n * 100) / b[i] : NaN));
  const millis = (x) => x.map((n) => (n > 0 ? n / 1000 : NaN));

  // charts gives each chart of series s as [unit, fixed top, [[label, values]]].
  const charts = (h, s) => {
    const d = h.dur_ms, f = s.failures || {};
    return {
      conns: ["", 0, [["open", gauge(s.open)], ["active", gauge(s.in_use)], ["dialing", gauge(s.dialing)]]],
      rps: ["/s", 0, [["attempts", rate(s.requests, d)]]],
      reuse: ["%", 100, [["reused", ratio(s.reused, s.requests)]]],
      dials: ["/s", 0, [["dials", rate(s.created, d)], ["closes", rate(s.closed, d)],
        ["failed", rate(s.dial_failures, d)]]],
      failures: ["/s", 0, Object.keys(f).sort().map((k) => [k, rate(f[k], d)])],
      latency: ["ms", 0, [["p50", millis(s.p50_us)], ["p99", millis(s.p99_us)]]],
    };
  };

  const path = (values, top) => {
    let out = "", run = 0, y0 = 0, level = 0;
    const n = values.length;
    const flush = () => {
      if (level > 0) out += "h" + level;
      level = 0;
    };
    values.forEach((v, i) => {
      if (Number.isNaN(v)) {
        flush();
        if (run === 1) out += "h0";
        run = 0;
        return;
      }
      const y = Math.round(H - 2 - (Math.min(v, top) / top) * (H - 4));
      if (run === 0) {
        out += "M" + (W - (n - 1 - i) * STEP) + " " + y;
      } else if (y === y0) {
        level += STEP;
      } else {
        flush();
        out += "l" + STEP + (y > y0 ? " " : "") + (y - y0);
      }
      y0 = y;
      run++;
    });
    flush();
    if (run === 1) out += "h0";
    return out;
  };

  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  };

  const draw = (fig, [unit, fixed, lines]) => {
    let top = fixed;
    if (!top) {
      for (const [, vs] of lines) for (const v of vs) if (!Number.isNaN(v)) top = Math.max(top, v);
      top = niceCeil(top);
    }
    const cap = fig.querySelector("figcaption");
    cap.replaceChildren(cap.querySelector(".t"));
    let paths = "";
    lines.forEach(([label, vs], i) => {
      const cls = "s" + (i % 4);
      let last = "—";
      for (let j = vs.length - 1; j >= 0; j--) {
        if (!Number.isNaN(vs[j])) {
          last = fmtVal(vs[j], unit);
          break;
        }
      }
      const span = el("span", cls, label + " ");
      span.append(el("b", "", last));
      cap.append(" ", span);
      paths += '<path class="' + cls + '" d="' + path(vs, top) + '"/>';
    });
    cap.append(" ", el("small", "", "max " + fmtVal(top, unit)));
    fig.querySelector("svg").innerHTML = paths;
  };

  const cell = (m, k, f) => {
    const v = m ? m[k] : undefined;
    switch (f) {
      case "n":
        return typeof v === "number" ? String(v) : "0";
      case "s":
        if (v) return String(v);
        break;
      case "reuse":
        if (m && m.requests > 0) return ((m.reused * 100) / m.requests).toFixed(1) + "%";
        break;
      case "kinds": {
        const o = v || {};
        const parts = Object.keys(o).sort().filter((x) => o[x]).map((x) => x + " " + o[x]);
        if (parts.length) return parts.join(", ");
        break;
      }
      case "idle":
        if (v > 0) {
          let s = String(Math.round(v / 1e6) / 1000) + "s";
          if (m.learned_idle_timeout_from) s += " (" + m.learned_idle_timeout_from + ")";
          return s;
        }
    }
    return "—";
  };

  const findings = (ul, fs) => {
    const items = fs.map((f) => {
      const sev = ["error", "warning", "info"].includes(f.severity) ? f.severity : "info";
      const li = el("li", sev);
      li.append(el("b", "", f.severity));
      if (f.host) li.append(" ", el("code", "", f.host));
      li.append(" " + f.message, el("br"), el("span", "fix", "fix: " + f.fix), " ", el("small", "", "(" + f.rule + ")"));
      return li;
    });
    if (!items.length) items.push(el("li", "ok", "No findings: the pool looks healthy."));
    ul.replaceChildren(...items);
  };

  const update = (snap) => {
    if (snap.layout !== layout) {
      location.reload(); // a host came or went: the server lays the page out again
      return;
    }
    updated.textContent = String(snap.time).slice(11, 19);
    document.querySelectorAll("section.client").forEach((sec) => {
      const cv = snap.clients[Number(sec.dataset.c)];
      if (!cv) return;
      sec.querySelectorAll("[data-k]").forEach((e) => {
        const row = e.closest("[data-h]");
        const st = row ? (cv.stats.hosts || {})[row.dataset.h] : cv.stats;
        e.textContent = cell(st, e.dataset.k, e.dataset.f);
      });
      sec.querySelectorAll("figure[data-chart]").forEach((fig) => {
        const g = fig.closest("[data-h]");
        const s = g ? cv.history.hosts[g.dataset.h] : cv.history.total;
        if (s) draw(fig, charts(cv.history, s)[fig.dataset.chart]);
      });
      const ul = sec.querySelector("[data-findings]");
      if (ul && cv.doctor.linked) findings(ul, cv.doctor.findings || []);
    });
  };

  const poll = () => {
    if (document.hidden) {
      setTimeout(poll, EVERY);
      return;
    }
    fetch("stats.json", { cache: "no-store" })
      .then((r) => {
        if (!r.ok) throw new Error("status " + r.status);
        return r.json();
      })
      .then((snap) => {
        update(snap);
        document.body.dataset.polls = String(++polls);
        liveEl.textContent = "live, every 2 s";
        liveEl.className = "";
      })
      .catch(() => {
        liveEl.textContent = "live updates failed; retrying";
        liveEl.className = "off";
      })
      .finally(() => setTimeout(poll, EVERY));
  };
  liveEl.textContent = "live, every 2 s";
  setTimeout(poll, EVERY);
})();
