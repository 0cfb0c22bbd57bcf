// A line chart in SVG, drawn by hand: a few series of (time, value) points over the last minutes, a
// y axis from 0 to a rounded maximum, and a legend with each series' latest value.

const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attributes = {}) {
  const element = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
  return element;
}

// The smallest of 1, 2, 5 x 10^n at least `value` (an axis maximum that reads well).
function roundUp(value) {
  if (value <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  return [1, 2, 5, 10].map((m) => m * power).find((candidate) => candidate >= value);
}

// series: [{name, color, points: [[timeMs, value], ...]}]; returns an <svg> `width` x `height`.
export function lineChart(series, { width = 640, height = 180, span = 300_000, unit = "" } = {}) {
  const left = 56, right = 8, top = 8, bottom = 22;
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img" });
  const now = Date.now();
  const max = roundUp(Math.max(0, ...series.flatMap((s) => s.points.map(([, v]) => v))));
  const x = (t) => left + ((t - (now - span)) / span) * (width - left - right);
  const y = (v) => top + (1 - v / max) * (height - top - bottom);

  for (const fraction of [0, 0.5, 1]) {
    const value = max * fraction;
    root.append(svg("line", { x1: left, x2: width - right, y1: y(value), y2: y(value), class: "grid" }));
    const label = svg("text", { x: left - 6, y: y(value) + 4, "text-anchor": "end", class: "axis" });
    label.textContent = `${Number.isInteger(value) ? value : value.toFixed(1)}${unit}`;
    root.append(label);
  }
  for (const [offset, text] of [[span, `${span / 60_000} min ago`], [0, "now"]]) {
    const label = svg("text", { x: x(now - offset), y: height - 6, class: "axis",
                                "text-anchor": offset ? "start" : "end" });
    label.textContent = text;
    root.append(label);
  }
  for (const { color, points } of series) {
    const visible = points.filter(([t]) => t >= now - span);
    if (!visible.length) continue;
    root.append(svg("polyline", {
      points: visible.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(" "),
      fill: "none", stroke: color, "stroke-width": 2,
    }));
  }
  return root;
}

export function legend(series, format) {
  const list = document.createElement("ul");
  list.className = "legend";
  for (const { name, color, points } of series) {
    const item = document.createElement("li");
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = color;
    const latest = points.length ? points[points.length - 1][1] : undefined;
    item.append(swatch, `${name}: `);
    const value = document.createElement("strong");
    value.textContent = latest === undefined ? "–" : format(latest);
    value.dataset.series = name;
    item.append(value);
    list.append(item);
  }
  return list;
}

// Samples kept for a chart, at most `limit` per series.
export class History {
  constructor(names, limit = 360) {
    this.limit = limit;
    this.points = Object.fromEntries(names.map((name) => [name, []]));
  }

  add(name, value, time = Date.now()) {
    if (typeof value !== "number" || Number.isNaN(value)) return;
    const points = this.points[name];
    points.push([time, value]);
    if (points.length > this.limit) points.shift();
  }
}
