// The virtual clock: read it, advance it, set its speed, freeze it (speed 0).

import { call, get } from "./api.js";
import { seconds } from "./dom.js";

export class Clock {
  constructor(root, changed, failed) {
    this.root = root;
    this.changed = changed;
    this.failed = failed;
    const on = (selector, kind, handler) => root.querySelector(selector).addEventListener(kind, (event) => {
      event.preventDefault();
      handler(event);
    });
    on("#advance-form", "submit", () => this.move({ advance: Number(root.querySelector("#advance-seconds").value) }));
    on("#speed-form", "submit", () => this.move({ speed: Number(root.querySelector("#speed-value").value) }));
    on("#freeze", "click", () => this.move({ speed: 0 }));
    for (const button of root.querySelectorAll(".advance-by")) {
      button.addEventListener("click", () => this.move({ advance: Number(button.dataset.seconds) }));
    }
  }

  async refresh() {
    this.show(await get("clock"));
  }

  show(clock) {
    this.root.querySelector("#clock-now").textContent = seconds(clock.now);
    this.root.querySelector("#clock-speed").textContent = clock.speed === 0 ? "0 (frozen)" : String(clock.speed);
  }

  async move(body) {
    try {
      this.show(await call("POST", "clock", body));
    } catch (error) {
      this.failed(error);
      return;
    }
    await this.changed();
  }
}
