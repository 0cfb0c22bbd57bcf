// Building the page: elements from data (text is always set as text, never parsed as HTML, so a queue
// named "<img onerror=...>" is shown as its name), tables that sort and filter, numbers and errors.

export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) element.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(element.dataset, value);
    else element.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

export function number(value) {
  if (value === undefined || value === null || value === "") return "";
  if (typeof value !== "number") return String(value);
  return Number.isInteger(value) ? value.toLocaleString("en") : value.toFixed(1);
}

export function bytes(value) {
  if (typeof value !== "number") return "";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (value >= 1024 && i < units.length - 1) {
    value /= 1024;
    i += 1;
  }
  return `${i ? value.toFixed(1) : value} ${units[i]}`;
}

export function json(value) {
  return value === undefined || value === null ? "" : JSON.stringify(value);
}

// The value at a dotted path ("message_stats.publish_details.rate"), undefined when any step is missing.
export function at(row, path) {
  return path.split(".").reduce((value, step) => (value == null ? undefined : value[step]), row);
}

export function errorBox(error) {
  return h("p", { class: "error", role: "alert" }, error?.message ?? String(error));
}

export function section(title, ...children) {
  return h("section", {}, h("h2", {}, title), ...children);
}

// A table of `rows` with `columns` = [{label, key | value(row), numeric, link(row)}]: a click on a heading
// sorts by that column (again: the other way), and a filter box keeps the rows whose name matches
// (a plain substring, or a regular expression between slashes). `state` keeps the sort and filter across
// the page's refreshes.
export function dataTable(columns, rows, state = {}, options = {}) {
  const valueOf = (column, row) => (column.value ? column.value(row) : at(row, column.key));
  const body = h("tbody");
  const count = h("span", { class: "count" });
  const headings = columns.map((column, index) =>
    h("th", {
      class: column.numeric ? "numeric sortable" : "sortable",
      dataset: { column: column.key ?? column.label },
      onclick: () => {
        state.reverse = state.sortBy === index ? !state.reverse : false;
        state.sortBy = index;
        draw();
      },
    }, column.label));

  function matches(row) {
    const filter = state.filter ?? "";
    if (!filter) return true;
    const name = String(at(row, options.filterKey ?? "name") ?? "");
    if (filter.length > 2 && filter.startsWith("/") && filter.endsWith("/")) {
      try {
        return new RegExp(filter.slice(1, -1)).test(name);
      } catch {
        return false;
      }
    }
    return name.toLowerCase().includes(filter.toLowerCase());
  }

  function draw() {
    let shown = rows.filter(matches);
    if (state.sortBy !== undefined && columns[state.sortBy]) {
      const column = columns[state.sortBy];
      const key = (row) => valueOf(column, row) ?? (column.numeric ? -1 : "");
      shown = [...shown].sort((a, b) => {
        const x = key(a), y = key(b);
        const order = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y));
        return state.reverse ? -order : order;
      });
    }
    headings.forEach((th, index) => {
      th.classList.toggle("sorted", index === state.sortBy);
      th.classList.toggle("reverse", index === state.sortBy && !!state.reverse);
    });
    body.replaceChildren(...shown.map((row) => h("tr", {}, columns.map((column) => {
      const raw = valueOf(column, row);
      const text = column.format ? column.format(raw, row) : column.numeric ? number(raw) : raw ?? "";
      const content = column.link ? h("a", { href: column.link(row) }, text) : text;
      return h("td", { class: column.numeric ? "numeric" : "" }, content);
    }))));
    if (!shown.length) body.append(h("tr", {}, h("td", { colspan: columns.length, class: "empty" }, "Nothing here.")));
    count.textContent = `${shown.length} of ${rows.length}`;
  }

  const filterBox = options.filter === false ? null : h("input", {
    type: "search", class: "filter", placeholder: "Filter by name (/regex/)", value: state.filter ?? "",
    "aria-label": "Filter", oninput: (event) => {
      state.filter = event.target.value;
      draw();
    },
  });
  draw();
  return h("div", { class: "table-wrap" },
    filterBox ? h("div", { class: "table-tools" }, filterBox, count) : null,
    h("table", { class: options.className ?? "data" }, h("thead", {}, h("tr", {}, headings)), body));
}

// A small key/value table.
export function facts(pairs) {
  return h("table", { class: "facts" }, h("tbody", {}, pairs.filter(Boolean).map(([key, value]) =>
    h("tr", {}, h("th", {}, key), h("td", {}, value instanceof Node ? value : String(value ?? ""))))));
}

// A form that runs `action(fields)` on submit and shows what it returns (or its error) below itself.
export function actionForm(title, fields, submitLabel, action) {
  const result = h("div", { class: "result" });
  const element = h("form", {
    class: "action", onsubmit: async (event) => {
      event.preventDefault();
      const data = Object.fromEntries(new FormData(event.target).entries());
      result.replaceChildren(h("p", { class: "busy" }, "Working…"));
      try {
        result.replaceChildren(await action(data));
      } catch (error) {
        result.replaceChildren(errorBox(error));
      }
    },
  }, h("h3", {}, title), fields, h("button", { type: "submit" }, submitLabel), result);
  return element;
}

export const field = (label, input) => h("label", {}, h("span", {}, label), input);
