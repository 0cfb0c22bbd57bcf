// The listing pages: overview (live totals and rate charts), queues, exchanges, connections and channels,
// policies (policies.js), and users/vhosts/permissions (read-only). Each page is `async (params) => ({element, update})`:
// `update`, when there is one, is called every few seconds to refresh the figures in place.

import { get, rows, seg } from "./api.js";
import { History, legend, lineChart } from "./chart.js";
import { at, bytes, dataTable, errorBox, facts, h, number, section } from "./dom.js";

const rate = (path) => (row) => at(row, `message_stats.${path}_details.rate`);
const queueLink = (row) => `#/queues/${seg(row.vhost)}/${seg(row.name)}`;

// Kept across visits so the charts have history when the overview is opened again.
const queued = new History(["Ready", "Unacked", "Total"]);
const rates = new History(["Publish", "Deliver", "Acknowledge"]);
const RATE_COLORS = { Publish: "#2f6fbf", Deliver: "#3c9a4a", Acknowledge: "#c7802a" };
const QUEUED_COLORS = { Ready: "#2f6fbf", Unacked: "#c7802a", Total: "#6a4fa3" };
let lastCounts = null;

function sampleOverview(overview) {
  const totals = overview.queue_totals ?? {};
  queued.add("Ready", totals.messages_ready);
  queued.add("Unacked", totals.messages_unacknowledged);
  queued.add("Total", totals.messages);
  const stats = overview.message_stats ?? {};
  const fields = { Publish: "publish", Deliver: "deliver_get", Acknowledge: "ack" };
  const now = Date.now();
  for (const [name, field] of Object.entries(fields)) {
    const detail = stats[`${field}_details`];
    if (detail && typeof detail.rate === "number") {
      rates.add(name, detail.rate, now);
    } else if (typeof stats[field] === "number" && lastCounts && lastCounts[field] !== undefined) {
      // Counters without rates: the rate between two of our own samples.
      rates.add(name, Math.max(0, (stats[field] - lastCounts[field]) / ((now - lastCounts.time) / 1000)), now);
    }
  }
  lastCounts = { ...Object.fromEntries(Object.values(fields).map((f) => [f, stats[f]])), time: now };
}

function chartPanel(title, history, colors, format, unit) {
  const series = Object.entries(history.points).map(([name, points]) => ({ name, color: colors[name], points }));
  return h("div", { class: "panel" }, h("h3", {}, title), lineChart(series, { unit }), legend(series, format));
}

export async function overviewPage() {
  const figures = h("div");
  const charts = h("div", { class: "charts" });
  async function update() {
    const overview = await get("/overview");
    sampleOverview(overview);
    const objects = overview.object_totals ?? {};
    const totals = overview.queue_totals ?? {};
    figures.replaceChildren(h("div", { class: "tiles" }, [
      ["Connections", objects.connections], ["Channels", objects.channels], ["Exchanges", objects.exchanges],
      ["Queues", objects.queues], ["Consumers", objects.consumers], ["Ready", totals.messages_ready],
      ["Unacked", totals.messages_unacknowledged], ["Total messages", totals.messages],
    ].map(([label, value]) => h("div", { class: "tile", dataset: { tile: label } },
      h("span", { class: "tile-value" }, number(value ?? 0)), h("span", { class: "tile-label" }, label)))),
    facts([
      ["Broker", `${overview.product_name ?? "leveret"} ${overview.product_version ?? ""}`],
      ["Node", overview.node],
      ["Memory", `${bytes(overview.mem_used)} of ${bytes(overview.mem_limit)}${overview.mem_alarm ? " (alarm)" : ""}`],
      ["Free disk", `${bytes(overview.disk_free)} (limit ${bytes(overview.disk_free_limit)})${overview.disk_free_alarm ? " (alarm)" : ""}`],
      ["Listeners", (overview.listeners ?? []).map((l) => `${l.protocol} ${l.ip_address}:${l.port}`).join(", ")],
    ]));
    charts.replaceChildren(
      chartPanel("Message rates (per second)", rates, RATE_COLORS, (v) => v.toFixed(1), "/s"),
      chartPanel("Queued messages", queued, QUEUED_COLORS, number, ""));
  }
  await update();
  return { element: h("div", {}, h("h1", {}, "Overview"), figures, charts), update };
}

function listingPage(title, path, columns, options = {}) {
  return async () => {
    const state = options.state ?? { sortBy: undefined };
    const holder = h("div");
    async function update() {
      holder.replaceChildren(dataTable(columns, await rows(path), state, options));
    }
    await update();
    return { element: h("div", {}, h("h1", {}, title), holder), update };
  };
}

export const queuesPage = listingPage("Queues", "/queues", [
  { label: "Virtual host", key: "vhost" },
  { label: "Name", key: "name", link: queueLink },
  { label: "Type", key: "type" },
  { label: "State", key: "state" },
  { label: "Ready", key: "messages_ready", numeric: true },
  { label: "Unacked", key: "messages_unacknowledged", numeric: true },
  { label: "Total", key: "messages", numeric: true },
  { label: "Consumers", key: "consumers", numeric: true },
  { label: "Incoming /s", value: rate("publish"), numeric: true },
  { label: "Deliver /s", value: rate("deliver_get"), numeric: true },
  { label: "Ack /s", value: rate("ack"), numeric: true },
]);

export const exchangesPage = listingPage("Exchanges", "/exchanges", [
  { label: "Virtual host", key: "vhost" },
  { label: "Name", value: (row) => row.name || "(AMQP default)" },
  { label: "Type", key: "type" },
  { label: "Durable", value: (row) => (row.durable ? "yes" : "no") },
  { label: "Internal", value: (row) => (row.internal ? "yes" : "") },
  { label: "In /s", value: rate("publish_in"), numeric: true },
  { label: "Out /s", value: rate("publish_out"), numeric: true },
  { label: "Delayed", key: "delayed_messages", numeric: true },
]);

// A section that reads one endpoint; a broker without it says so instead of failing the whole page.
async function tableSection(title, path, columns, state = {}, options = {}) {
  try {
    return section(title, dataTable(columns, await rows(path), state, options));
  } catch (error) {
    return section(title, errorBox(error));
  }
}

export async function connectionsPage() {
  const connections = { sortBy: undefined }, channels = { sortBy: undefined };
  const holder = h("div");
  async function update() {
    holder.replaceChildren(
      await tableSection("Connections", "/connections", [
        { label: "Name", key: "name" }, { label: "User", key: "user" }, { label: "Virtual host", key: "vhost" },
        { label: "Client", value: (row) => at(row, "client_properties.product") },
        { label: "State", key: "state" }, { label: "Channels", key: "channels", numeric: true },
      ], connections),
      await tableSection("Channels", "/channels", [
        { label: "Name", key: "name" }, { label: "User", key: "user" }, { label: "Virtual host", key: "vhost" },
        { label: "Consumers", key: "consumer_count", numeric: true },
        { label: "Unacked", key: "messages_unacknowledged", numeric: true },
        { label: "Prefetch", key: "prefetch_count", numeric: true },
        { label: "Confirm", value: (row) => (row.confirm ? "yes" : "") },
      ], channels));
  }
  await update();
  return { element: h("div", {}, h("h1", {}, "Connections and channels"), holder), update };
}

// The policies page (a form and delete buttons) is its own module.
export { policiesPage } from "./policies.js";

export async function adminPage() {
  return { element: h("div", {}, h("h1", {}, "Users, virtual hosts and permissions"),
    await tableSection("Users", "/users", [
      { label: "Name", key: "name" }, { label: "Tags", value: (row) => [].concat(row.tags ?? []).join(", ") },
    ]),
    await tableSection("Virtual hosts", "/vhosts", [
      { label: "Name", key: "name" }, { label: "Description", key: "description" },
      { label: "Messages", key: "messages", numeric: true },
    ]),
    await tableSection("Permissions", "/permissions", [
      { label: "User", key: "user" }, { label: "Virtual host", key: "vhost" },
      { label: "Configure", key: "configure" }, { label: "Write", key: "write" }, { label: "Read", key: "read" },
    ], {}, { filterKey: "user" })) };
}
