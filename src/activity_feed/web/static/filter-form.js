// The filter form above the views: it shows the current filters and reports the user's changes. The
// text search applies after a pause in typing; the other fields apply when they change.

import { emptyFilters, isActive } from "./filters.js";

const SEARCH_DELAY_MS = 300;

export class FilterForm {
  /** `onChange(filters)` gets the filters the user asked for (the page decides what to do with them). */
  constructor({ form, correlationChip, clearButton, onChange }) {
    this.form = form;
    this.chip = correlationChip;
    this.clearButton = clearButton;
    this.onChange = onChange;
    this.filters = emptyFilters();
    let searchTimer;
    form.addEventListener("input", (e) => {
      if (e.target.name !== "q") return;
      clearTimeout(searchTimer);
      searchTimer = setTimeout(() => onChange(this.read()), SEARCH_DELAY_MS);
    });
    form.addEventListener("change", (e) => {
      if (e.target.name === "q") return; // the input handler above covers it
      onChange(this.read());
    });
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      clearTimeout(searchTimer);
      onChange(this.read());
    });
    clearButton.addEventListener("click", () => onChange(emptyFilters()));
    correlationChip.querySelector("button").addEventListener("click", () => onChange({ ...this.filters, correlation_id: "" }));
  }

  /** Show `filters` in the fields, the correlation chip and the clear button. */
  show(filters) {
    this.filters = filters;
    const fields = this.form.elements;
    fields.q.value = filters.q;
    fields.event_type.value = filters.event_type;
    fields.status.value = filters.status;
    fields.tool_name.value = filters.tool_name;
    fields.user_source.value = filters.user_source;
    this.chip.hidden = !filters.correlation_id;
    this.chip.querySelector(".chip-value").textContent = filters.correlation_id;
    this.clearButton.hidden = !isActive(filters);
  }

  /** The filters as the fields say; the correlation id (not a field) is kept. */
  read() {
    const v = (name) => this.form.elements[name].value.trim();
    return {
      ...emptyFilters(),
      q: v("q"),
      event_type: v("event_type"),
      status: v("status"),
      tool_name: v("tool_name"),
      user_source: v("user_source"),
      correlation_id: this.filters.correlation_id,
    };
  }

  focusSearch() {
    this.form.elements.q.focus();
  }

  /** Escape in a search with text empties it; true when it did. */
  clearSearch(target) {
    const search = this.form.elements.q;
    if (target !== search || !search.value) return false;
    search.value = "";
    this.onChange(this.read());
    return true;
  }
}
