// The journal, live, with the control plane's own filters (GET /_mock/journal?...).

import { get, query } from "./api.js";
import { rows, seconds } from "./dom.js";

const MAX_SHOWN = 1000;

export class Journal {
  constructor(root) {
    this.root = root;
    this.form = root.querySelector("#journal-filters");
    this.form.addEventListener("submit", (event) => event.preventDefault());
  }

  filters() {
    const wanted = Object.fromEntries(new FormData(this.form));
    const limit = Number.parseInt(wanted.limit, 10);
    wanted.limit = Number.isFinite(limit) && limit > 0 ? Math.min(limit, MAX_SHOWN) : 200;
    for (const name of Object.keys(wanted)) if (typeof wanted[name] === "string") wanted[name] = wanted[name].trim();
    return wanted;
  }

  async refresh() {
    const page = await get(`journal${query(this.filters())}`);
    const counts = Object.entries(page.counts ?? {}).map(([name, n]) => `${name} ${n}`).join(", ");
    const dropped = page.dropped ? `; ${page.dropped} dropped (the journal is bounded)` : "";
    this.root.querySelector("#journal-summary").textContent =
      `${page.count} matching of ${page.total ?? page.count} recorded${dropped}` + (counts ? ` — ${counts}` : "");
    const newest = [...page.entries].reverse();
    rows(this.root.querySelector("#journal-entries tbody"), newest, (e) => [
      e.seq, seconds(e.t), e.provider, e.operation, e.method, e.path, e.key, e.request_id,
      e.status ?? "no answer", e.fault ? `${e.fault} (${e.effect ?? ""})` : "", e.validation,
      [...e.problems, ...(e.job ? [`job ${e.job}`] : [])].join("; "),
    ], MAX_SHOWN);
  }
}
