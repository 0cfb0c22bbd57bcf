// Policies and operator policies: both listed, each with a delete button, and a form that sets one
// (PUT /api/policies/{vhost}/{name} or /api/operator-policies/...; the broker applies it to matching
// queues and exchanges at once, so a queue's page shows it on its next refresh).

import { api, rows, seg } from "./api.js";
import { actionForm, dataTable, errorBox, field, h, json, section } from "./dom.js";

const KINDS = { policies: "User policies", "operator-policies": "Operator policies" };
const APPLY_TO = ["queues", "exchanges", "all", "classic_queues", "quorum_queues", "streams"];

function columns(kind, refresh) {
  return [
    { label: "Virtual host", key: "vhost" }, { label: "Name", key: "name" }, { label: "Pattern", key: "pattern" },
    { label: "Apply to", key: "apply-to" }, { label: "Priority", key: "priority", numeric: true },
    { label: "Definition", value: (row) => json(row.definition) },
    { label: "", value: () => "", format: (_, row) => h("button", {
      type: "button", class: "delete", "aria-label": `Delete ${row.name}`, onclick: async (event) => {
        event.target.disabled = true;
        try {
          await api("DELETE", `/${kind}/${seg(row.vhost)}/${seg(row.name)}`);
        } catch (error) {
          event.target.closest("section").append(errorBox(error));
        }
        await refresh();
      } }, "Delete") },
  ];
}

async function listing(kind, state, refresh) {
  try {
    return section(KINDS[kind], dataTable(columns(kind, refresh), await rows(`/${kind}`), state));
  } catch (error) {
    return section(KINDS[kind], errorBox(error));
  }
}

function setForm(vhosts, refresh) {
  const select = (name, options) => h("select", { name },
    options.map((option) => [].concat(option)).map(([value, label = value]) => h("option", { value }, label)));
  return actionForm("Add or update a policy", [
    field("Kind", select("kind", [["policies", "user policy"], ["operator-policies", "operator policy"]])),
    field("Virtual host", select("vhost", vhosts)),
    field("Name", h("input", { name: "name", required: true })),
    field("Pattern", h("input", { name: "pattern", required: true, placeholder: "^jobs\\." })),
    field("Apply to", select("apply-to", APPLY_TO)),
    field("Priority", h("input", { name: "priority", type: "number", value: "0" })),
    field("Definition", h("textarea", { name: "definition", rows: 3, required: true,
      placeholder: '{"max-length": 1000, "message-ttl": 60000}' })),
  ], "Set policy", async (data) => {
    let definition;
    try {
      definition = JSON.parse(data.definition);
    } catch (error) {
      return h("p", { class: "error" }, `The definition is not JSON: ${error.message}`);
    }
    const body = { pattern: data.pattern, definition, "apply-to": data["apply-to"], priority: Number(data.priority || 0) };
    await api("PUT", `/${data.kind}/${seg(data.vhost)}/${seg(data.name)}`, body);
    await refresh();
    return h("p", { class: "ok" }, `Policy ${data.name} set.`);
  });
}

export async function policiesPage() {
  const states = { policies: {}, "operator-policies": {} };
  const holder = h("div");
  async function update() {
    holder.replaceChildren(...await Promise.all(Object.keys(KINDS).map((kind) => listing(kind, states[kind], update))));
  }
  let vhosts = ["/"];
  try {
    vhosts = (await rows("/vhosts")).map((vhost) => vhost.name);
  } catch {
    // A user who may not list vhosts still sets policies in the default one.
  }
  await update();
  return { element: h("div", {}, h("h1", {}, "Policies"), holder,
    section("Set a policy", h("div", { class: "actions" }, setForm(vhosts, update)))),
    update };
}
