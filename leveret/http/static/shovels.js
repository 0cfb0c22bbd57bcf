// The shovels page: every dynamic shovel of the vhosts the user may see (GET /api/shovels), its state,
// where it moves messages from and to, how many it moved, and why it stopped when it did.

import { rows } from "./api.js";
import { dataTable, h } from "./dom.js";

// One end as the listing names it: the URI (password already hidden by the API), then the queue, or the
// exchange and its key.
function end(row, side) {
  const uri = row[`${side}_uri`];
  if (uri === undefined) return "";
  const queue = row[`${side}_queue`];
  const exchange = row[`${side}_exchange`];
  const key = row[`${side}_exchange_key`];
  const what = queue !== undefined ? `queue ${queue}`
    : exchange !== undefined ? `exchange ${exchange || "(AMQP default)"}${key !== undefined ? ` (${key})` : ""}`
      : "";
  return what ? `${uri} ${what}` : uri;
}

const COLUMNS = [
  { label: "Name", key: "name" },
  { label: "Virtual host", key: "vhost" },
  { label: "State", key: "state" },
  { label: "Source", value: (row) => end(row, "src") },
  { label: "Destination", value: (row) => end(row, "dest") },
  { label: "Moved", key: "forwarded", numeric: true },
  { label: "Reason", value: (row) => row.reason ?? "" },
];

export async function shovelsPage() {
  const state = { sortBy: undefined };
  const holder = h("div");
  async function update() {
    const shovels = await rows("/shovels");
    holder.replaceChildren(shovels.length ? dataTable(COLUMNS, shovels, state)
      : h("p", { class: "empty" }, "No shovels. Define one with leveret shovels add, or PUT /api/parameters/shovel/{vhost}/{name}."));
  }
  await update();
  return { element: h("div", {}, h("h1", {}, "Shovels"), holder), update };
}
