// The journal, live, with the control plane's own filters (GET /_mock/journal?...). The key
// filter is the one exception: the page matches the fingerprint the journal shows (fp:…)
// itself, so that no API key is ever put in a URL (URLs end up in access logs).

import { get, query } from "./api.js";
import { rows, seconds } from "./dom.js";

const MAX_SHOWN = 1000;
const FINGERPRINT = /^fp:[0-9a-f]{8}$/;

export class Journal {
  constructor(root) {
    this.root = root;
    this.form = root.querySelector("#journal-filters");
    this.form.addEventListener("submit", (event) => event.preventDefault());
  }

  filters() {
    const wanted = Object.fromEntries(new FormData(this.form));
    for (const name of Object.keys(wanted)) if (typeof wanted[name] === "string") wanted[name] = wanted[name].trim();
    const limit = Number.parseInt(wanted.limit, 10);
    wanted.limit = Number.isFinite(limit) && limit > 0 ? Math.min(limit, MAX_SHOWN) : 200;
    return wanted;
  }

  async refresh() {
    const { key, ...wanted } = this.filters();
    const byKey = FINGERPRINT.test(key ?? "") ? key : null;
    const keyNote = key && !byKey ? "key: type a fingerprint as the journal shows it (fp: and 8 hex digits); a key itself is never sent. " : "";
    const page = await get(`journal${query({ ...wanted, limit: byKey ? MAX_SHOWN : wanted.limit })}`);
    let entries = page.entries;
    if (byKey) entries = entries.filter((e) => e.key === byKey).slice(-wanted.limit);
    const counts = Object.entries(page.counts ?? {}).map(([name, n]) => `${name} ${n}`).join(", ");
    const dropped = page.dropped ? `; ${page.dropped} dropped (the journal is bounded)` : "";
    const matching = byKey
      ? `${entries.length} of key ${byKey} among the newest ${page.entries.length} of ${page.count} matching`
      : `${page.count} matching`;
    this.root.querySelector("#journal-summary").textContent =
      `${keyNote}${matching} of ${page.total ?? page.count} recorded${dropped}` + (counts ? ` — ${counts}` : "");
    rows(this.root.querySelector("#journal-entries tbody"), [...entries].reverse(), (e) => [
      e.seq, seconds(e.t), e.provider, e.operation, e.method, e.path, e.key, e.request_id,
      e.status ?? "no answer", e.fault ? `${e.fault} (${e.effect ?? ""})` : "", e.validation,
      [...e.problems, ...(e.job ? [`job ${e.job}`] : [])].join("; "),
    ], MAX_SHOWN);
  }
}
