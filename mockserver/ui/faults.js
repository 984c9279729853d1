// The fault rules with their matched and fired counts; add one from JSON, remove one.

import { call, get } from "./api.js";
import { el, rows, text } from "./dom.js";

export class Faults {
  constructor(root, changed) {
    this.root = root;
    this.changed = changed;
    this.note = root.querySelector("#fault-note");
    root.querySelector("#fault-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.add();
    });
    root.querySelector("#fault-clear").addEventListener("click", () => this.act(() => call("DELETE", "faults"), "all rules removed"));
  }

  async refresh() {
    const { faults } = await get("faults");
    rows(this.root.querySelector("#fault-rules tbody"), faults, (rule) => [
      rule.id, rule.description, text(rule.match ?? {}), text(rule.effect), text(rule.scope ?? {}),
      el("span", { class: "matched" }, String(rule.matched)), el("span", { class: "fired" }, String(rule.fired)),
      el("button", { type: "button", class: "remove", "data-rule": rule.id, onclick: () => this.remove(rule.id) }, "Remove"),
    ]);
  }

  add() {
    const source = this.root.querySelector("#fault-json").value;
    try {
      JSON.parse(source);
    } catch (error) {
      this.say(`not JSON: ${error.message}`, true);
      return;
    }
    this.act(() => call("POST", "faults", source), (answer) => `added ${answer.id ?? answer.ids.join(", ")}`);
  }

  remove(id) {
    this.act(() => call("DELETE", `faults/${encodeURIComponent(id)}`), `removed ${id}`);
  }

  async act(action, done) {
    try {
      const answer = await action();
      this.say(typeof done === "function" ? done(answer) : done, false);
    } catch (error) {
      this.say(error.message, true);
    }
    await this.changed();
  }

  say(message, failed) {
    this.note.textContent = message;
    this.note.classList.toggle("error", failed);
  }
}
