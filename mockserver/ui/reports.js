// The validating proxy's drift findings and the client resilience scorecard: each view says
// so plainly when the mock has none (the proxy is off; no scorecard route).

import { get } from "./api.js";
import { rows, text } from "./dom.js";

const MAX_ROWS = 500;

export class Drift {
  constructor(root) {
    this.root = root;
  }

  async refresh() {
    const summary = this.root.querySelector("#drift-summary");
    const table = this.root.querySelector("#drift-findings");
    let report;
    try {
      report = await get("drift");
    } catch (error) {
      if (error.status !== 404) throw error;
      summary.textContent = "No drift report: the validating proxy is off (start the mock with --proxy).";
      table.hidden = true;
      return;
    }
    table.hidden = false;
    const dropped = report.dropped ? `; ${report.dropped} findings dropped` : "";
    summary.textContent = `${report.verdict} — target ${report.target}, ${report.breaking} breaking${dropped}`;
    rows(table.querySelector("tbody"), report.findings, (f) => [
      f.severity, f.provider, f.operation, f.check, f.request, f.pointer || "/", f.expected, f.observed, f.times,
    ], MAX_ROWS);
  }
}

const SCORECARD_EVERY_MS = 5000; // the scorecard judges the whole journal: less often

export class Scorecard {
  constructor(root) {
    this.root = root;
    this.at = 0;
  }

  async refresh(opened = false) {
    if (!opened && Date.now() - this.at < SCORECARD_EVERY_MS) return;
    this.at = Date.now();
    const summary = this.root.querySelector("#scorecard-summary");
    const body = this.root.querySelector("#scorecard-body");
    let card;
    try {
      card = await get("scorecard");
    } catch (error) {
      if (error.status !== 404) throw error;
      summary.textContent = "scorecard not available";
      body.hidden = true;
      return;
    }
    body.hidden = false;
    const count = card.findings.length;
    const verdict = card.clean ? "clean: no finding" : `${count}${card.truncated ? "+" : ""} finding${count === 1 ? "" : "s"}`;
    const dropped = card.dropped ? ` (${card.dropped} older entries were dropped, not judged)` : "";
    summary.textContent = `${verdict} — ${card.entries} journal entries judged${dropped}`;
    summary.classList.toggle("clean", Boolean(card.clean));
    rows(body.querySelector("#scorecard-rules tbody"), card.rules, (r) => [r.rule, r.title, r.threshold, r.findings]);
    rows(body.querySelector("#scorecard-keys tbody"), card.keys, (k) => [
      k.key, k.requests, k.findings, k.wasted_requests, usd(k.wasted_usd),
    ], MAX_ROWS);
    rows(body.querySelector("#scorecard-findings tbody"), card.findings, (f) => [
      f.rule, f.key ?? "", f.provider, f.job ?? "", f.message, f.wasted_requests, usd(f.wasted_usd),
      (f.entries ?? []).map((seq) => `#${seq}`).join(" "),
    ], MAX_ROWS);
  }
}

function usd(value) {
  return typeof value === "number" ? `$${value.toFixed(4)}` : text(value);
}
