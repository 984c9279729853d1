// The job timeline: one bar per job on the virtual clock (queued, processing, terminal,
// expiry), the job's requests from the journal marked on it as ticks (polls, faults,
// retries); a click opens the job's journal entries.

import { get, query } from "./api.js";
import { el, rows, seconds, svg, text } from "./dom.js";

const JOBS = 200; // bars shown (the oldest live jobs, as the listing gives them); it counts them all
const KEPT = 5000; // journal entries kept for the ticks (the newest)
const PAGE = 1000; // journal entries read per refresh
const ROW = 24;
const LABEL = 260;
const AXIS = 22;
const TERMINAL = { SUCCEEDED: "succeeded", FAILED: "failed", CANCELLED: "cancelled" };

/** The journal read as it grows (``since`` the last entry seen), bounded. */
class Feed {
  constructor() {
    this.entries = [];
    this.last = 0;
  }

  restart() {
    this.entries = [];
    this.last = 0;
  }

  async refresh() {
    const page = await get(`journal${query({ since: this.last, limit: PAGE })}`);
    if ((page.total ?? 0) < this.last) {
      this.restart(); // cleared or reset: read again from the start
      return this.refresh();
    }
    if (page.entries.length) {
      this.entries.push(...page.entries);
      if (this.entries.length > KEPT) this.entries.splice(0, this.entries.length - KEPT);
      this.last = page.entries[page.entries.length - 1].seq;
    }
  }

  /** The entries of each job id, oldest first. */
  byJob() {
    const found = new Map();
    for (const entry of this.entries) {
      if (!entry.request_id) continue;
      const list = found.get(entry.request_id);
      if (list) list.push(entry);
      else found.set(entry.request_id, [entry]);
    }
    return found;
  }
}

export class Timeline {
  constructor(root) {
    this.root = root;
    this.feed = new Feed();
    this.open = null; // the job whose entries are shown
    this.now = 0; // the virtual time of the last refresh
    this.chart = root.querySelector("#timeline");
    this.detail = root.querySelector("#job-detail");
    root.querySelector("#job-close").addEventListener("click", () => this.close());
  }

  async refresh() {
    const [listing, clock] = await Promise.all([get(`jobs${query({ limit: JOBS })}`), get("clock"), this.feed.refresh()]);
    if (clock.now < this.now) {
      // the clock went back: a reset (whose journal may already be as long as the last one)
      this.feed.restart();
      await this.feed.refresh();
    }
    this.now = clock.now;
    const jobs = listing.jobs;
    const shown = jobs.length < listing.total ? `, the oldest ${jobs.length} shown` : "";
    this.root.querySelector("#jobs-summary").textContent =
      `${listing.total} live job${listing.total === 1 ? "" : "s"}${shown}; t = ${seconds(clock.now)} s`;
    this.draw(jobs, this.feed.byJob(), clock.now);
    if (this.open) await this.showJob(this.open);
  }

  draw(jobs, entries, now) {
    if (!jobs.length) {
      this.chart.replaceChildren(el("p", { class: "empty" }, "No jobs yet: submit one to a provider route."));
      return;
    }
    const width = Math.max(this.chart.clientWidth || 900, 600);
    const start = Math.min(...jobs.map((j) => j.submitted_at));
    const end = Math.max(now, start + 1) * 1.0 + Math.max(now - start, 1) * 0.08; // room for expiry
    const x = (t) => LABEL + ((Math.min(Math.max(t, start), end) - start) / (end - start)) * (width - LABEL - 12);
    const height = AXIS + jobs.length * ROW + 4;
    const chart = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img" });
    chart.append(this.axis(start, end, x, height));
    jobs.forEach((job, i) => chart.append(this.bar(job, entries.get(job.id) ?? [], now, x, AXIS + i * ROW)));
    chart.append(svg("line", { class: "now", x1: x(now), x2: x(now), y1: 0, y2: height }));
    this.chart.replaceChildren(chart);
  }

  axis(start, end, x, height) {
    const group = svg("g", { class: "axis" });
    const step = niceStep((end - start) / 8);
    for (let t = Math.ceil(start / step) * step; t <= end; t += step) {
      group.append(svg("line", { x1: x(t), x2: x(t), y1: AXIS - 4, y2: height }));
      group.append(svg("text", { x: x(t) + 2, y: AXIS - 8 }, `${+t.toFixed(2)} s`));
    }
    return group;
  }

  bar(job, entries, now, x, y) {
    const state = job.state;
    const group = svg("g", {
      class: `job ${job.id === this.open ? "selected" : ""}`,
      "data-job": job.id,
      "data-state": state,
      "data-wire": job.wire_status,
      tabindex: 0,
      onclick: () => this.select(job.id),
      onkeydown: (event) => event.key === "Enter" && this.select(job.id),
    });
    group.append(svg("title", {}, `${job.provider} ${job.model} ${job.id}: ${job.wire_status}`));
    group.append(svg("rect", { class: "row", x: 0, y, width: "100%", height: ROW }));
    group.append(
      svg("text", { class: "label", x: 4, y: y + 16 }, `${job.provider} ${job.model} · ${job.wire_status}`),
    );
    const mid = y + 4;
    const segment = (kind, from, to) => {
      if (from === null || from === undefined || from >= now) return;
      const stop = Math.min(to ?? now, now);
      group.append(svg("rect", { class: `seg ${kind}`, x: x(from), y: mid, width: Math.max(x(stop) - x(from), 2), height: ROW - 8 }));
    };
    const started = job.start_at ?? job.end_at;
    segment("queued", job.submitted_at, started);
    if (job.start_at !== null && job.end_at !== null && job.start_at < job.end_at) segment("running", job.start_at, job.end_at);
    else if (job.start_at !== null && job.end_at === null) segment("running", job.start_at, now);
    if (TERMINAL[state] && job.end_at !== null) segment(TERMINAL[state], job.end_at, job.expires_at);
    if (TERMINAL[state] && job.expires_at !== null) {
      // the rest of its retention: its results stay readable until it expires
      const from = x(Math.max(job.end_at ?? now, now));
      group.append(svg("rect", { class: "seg expiry", x: from, y: mid, width: Math.max(x(job.expires_at) - from, 2), height: ROW - 8 },
        svg("title", {}, `kept until t = ${seconds(job.expires_at)} s, then expired`)));
    }
    for (const tick of ticks(entries)) {
      group.append(
        svg("line", { class: `tick tick-${tick.kind}`, x1: x(tick.entry.t), x2: x(tick.entry.t), y1: y + 1, y2: y + ROW - 1 },
          svg("title", {}, describe(tick))),
      );
    }
    return group;
  }

  select(id) {
    this.open = id;
    for (const node of this.chart.querySelectorAll("g.job")) node.classList.toggle("selected", node.dataset.job === id);
    return this.showJob(id);
  }

  close() {
    this.open = null;
    this.detail.hidden = true;
  }

  async showJob(id) {
    const [job, journal] = await Promise.all([
      get(`jobs/${encodeURIComponent(id)}`).catch((error) => ({ id, gone: error.message })),
      get(`journal${query({ request_id: id, limit: 200 })}`),
    ]);
    if (this.open !== id) return;
    this.detail.hidden = false;
    this.detail.querySelector("#job-id").textContent = id;
    const facts = job.gone
      ? [["job", job.gone]]
      : [
          ["provider", job.provider], ["model", job.model], ["state", `${job.state} (${job.wire_status})`],
          ["submitted", seconds(job.submitted_at)], ["started", seconds(job.start_at)],
          ["finished", seconds(job.end_at)], ["expires", seconds(job.expires_at)],
          ["polls", job.polls], ["cost", text(job.cost)],
          ["failure", job.failure ? `${job.failure.error} (${job.failure.error_type ?? "no type"}, at ${job.failure.surface ?? "?"})` : "none"],
        ];
    this.detail.querySelector("#job-facts").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, text(v))]));
    rows(this.detail.querySelector("#job-entries tbody"), journal.entries, (e) => [
      e.seq, seconds(e.t), e.method, e.path, e.status ?? "no answer", fault(e), e.validation, e.problems.join("; "), e.job,
    ]);
  }
}

/** Each entry of a job, as a tick: its submit, a poll, a fault, or a retry (a repeat of an
 * operation whose previous answer was none, a 429 or a 5xx). */
function ticks(entries) {
  const previous = new Map();
  return entries.map((entry) => {
    const before = previous.get(entry.operation);
    previous.set(entry.operation, entry);
    let kind = entry.operation === "submit" || entry.operation === "sync" ? "submit" : "poll";
    if (before && (before.status === null || before.status === 429 || before.status >= 500)) kind = "retry";
    if (entry.fault) kind = "fault";
    return { kind, entry };
  });
}

function describe({ kind, entry }) {
  const answer = entry.status ?? "no answer";
  const why = entry.fault ? ` (fault ${entry.fault}: ${entry.effect ?? ""})` : "";
  return `${kind} #${entry.seq} at ${seconds(entry.t)} s: ${entry.method} ${entry.path} -> ${answer}${why}`;
}

function fault(entry) {
  return entry.fault ? `${entry.fault} (${entry.effect ?? ""})` : "";
}

function niceStep(raw) {
  const power = 10 ** Math.floor(Math.log10(Math.max(raw, 1e-3)));
  for (const m of [1, 2, 5, 10]) if (m * power >= raw) return m * power;
  return 10 * power;
}
