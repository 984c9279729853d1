// The dashboard: tabs over the views, and a refresh of the clock and the open view about
// once a second while the page is visible (none while it is hidden or "live" is off).

import { setToken, tenant, whenTokenNeeded } from "./api.js";
import { Clock } from "./clock.js";
import { Faults } from "./faults.js";
import { Journal } from "./journal.js";
import { Quotas } from "./quotas.js";
import { Drift, Scorecard } from "./reports.js";
import { Timeline } from "./timeline.js";

const EVERY_MS = 1000;

const status = document.querySelector("#status");
const tokenForm = document.querySelector("#token-form");
const views = {
  timeline: new Timeline(document.querySelector("#view-timeline")),
  journal: new Journal(document.querySelector("#view-journal")),
  faults: new Faults(document.querySelector("#view-faults"), () => refresh()),
  quotas: new Quotas(document.querySelector("#view-quotas")),
  drift: new Drift(document.querySelector("#view-drift")),
  scorecard: new Scorecard(document.querySelector("#view-scorecard")),
};
const clock = new Clock(document.querySelector("#clock"), () => refresh(), fail);
let active = "timeline";
let running = null; // the refresh under way
let again = false; // another was asked for meanwhile
let reopened = false; // ...for a view just opened
let timer = null;
let waitingForToken = false;

const name = tenant();
document.querySelector("#tenant").textContent = name ? `tenant ${name}` : "default tenant";
document.title = name ? `nanobanana-mock: ${name}` : "nanobanana-mock dashboard";

function fail(error) {
  status.textContent = error.message;
  status.classList.add("error");
}

/** Refresh the clock and the open view now (``opened``: the view was just opened); a call
 * meanwhile runs once more after it. */
async function refresh(opened = false) {
  if (running) {
    again = true;
    reopened ||= opened;
    return running;
  }
  reopened = opened;
  running = (async () => {
    do {
      again = false;
      const fresh = reopened;
      reopened = false;
      try {
        await Promise.all([clock.refresh(), views[active].refresh(fresh)]);
        status.textContent = "";
        status.classList.remove("error");
        document.body.dataset.refreshed = String(Number(document.body.dataset.refreshed ?? 0) + 1);
      } catch (error) {
        fail(error);
      }
    } while (again);
  })();
  try {
    await running;
  } finally {
    running = null;
  }
}

function schedule() {
  window.clearTimeout(timer);
  timer = null;
  const live = document.querySelector("#live").checked;
  if (live && !waitingForToken && document.visibilityState === "visible") {
    timer = window.setTimeout(async () => {
      await refresh();
      schedule();
    }, EVERY_MS);
  }
}

function show(view) {
  active = view;
  for (const button of document.querySelectorAll("#tabs button")) button.classList.toggle("active", button.dataset.view === view);
  for (const [key] of Object.entries(views)) document.querySelector(`#view-${key}`).hidden = key !== view;
  refresh(true);
}

for (const button of document.querySelectorAll("#tabs button")) button.addEventListener("click", () => show(button.dataset.view));
document.querySelector("#live").addEventListener("change", () => {
  refresh();
  schedule();
});
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible") refresh();
  schedule();
});
document.querySelector("#journal-filters").addEventListener("input", () => refresh());
document.querySelector("#journal-filters").addEventListener("reset", () => window.setTimeout(refresh, 0));

whenTokenNeeded((message) => {
  waitingForToken = true;
  tokenForm.hidden = false;
  document.querySelector("#token-note").textContent = message;
  schedule();
});
tokenForm.addEventListener("submit", (event) => {
  event.preventDefault();
  setToken(document.querySelector("#token").value);
  waitingForToken = false;
  tokenForm.hidden = true;
  refresh().then(schedule);
});

refresh().then(schedule);
