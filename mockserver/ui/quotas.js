// Credits (the ledger) and rate limits, as the control plane lists them.

import { get } from "./api.js";
import { rows, text } from "./dom.js";

export class Quotas {
  constructor(root) {
    this.root = root;
  }

  async refresh() {
    const [credits, limits] = await Promise.all([get("credits"), get("rate-limits")]);
    const accounts = credits.accounts ?? [];
    this.root.querySelector("#credits-summary").textContent = credits.enabled
      ? `credits on; default balance ${credits.default === null ? "none" : text(credits.default)}; ${accounts.length} account${accounts.length === 1 ? "" : "s"}`
      : "credits off: every key may spend without limit";
    rows(this.root.querySelector("#credit-accounts tbody"), accounts, (a) => [a.key, text(a.balance), text(a.spent)]);
    this.root.querySelector("#limits-summary").textContent = limits.limits.length
      ? `${limits.limits.length} limit${limits.limits.length === 1 ? "" : "s"} in force`
      : "no rate limits";
    rows(this.root.querySelector("#rate-limits tbody"), limits.limits, (l) => [l.key ?? "every key", text(l.rpm), l.scope]);
  }
}
