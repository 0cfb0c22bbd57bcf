// One queue's page: its figures, bindings and consumers, and the actions on it: get messages, publish
// to it, purge it, move its messages, and a link to its dead-letter view.

import { api, ApiError, get, rows, seg } from "./api.js";
import { actionForm, dataTable, errorBox, facts, field, h, json, number, section } from "./dom.js";
import { moveForm } from "./deadletters.js";

async function queueInfo(vhost, name) {
  try {
    return await get(`/queues/${seg(vhost)}/${seg(name)}`);
  } catch (error) {
    // A broker without the one-queue endpoint: the vhost's listing has the same object.
    if (!(error instanceof ApiError) || (error.status !== 404 && error.status !== 405)) throw error;
    const found = (await rows(`/queues/${seg(vhost)}`)).find((queue) => queue.name === name);
    if (!found) throw error;
    return found;
  }
}

function messagesTable(messages) {
  return dataTable([
    { label: "#", value: (row) => messages.indexOf(row) + 1, numeric: true },
    { label: "Exchange", key: "exchange" }, { label: "Routing key", key: "routing_key" },
    { label: "Redelivered", value: (row) => (row.redelivered ? "yes" : "") },
    { label: "Properties", value: (row) => json(row.properties) },
    { label: "Payload", key: "payload" },
    { label: "Remaining", key: "message_count", numeric: true },
  ], messages, {}, { filter: false, className: "data messages" });
}

export async function queuePage({ vhost, name }) {
  const base = `/queues/${seg(vhost)}/${seg(name)}`;
  const summary = h("div");
  const bindings = h("div");
  const consumers = h("div");

  async function update() {
    const queue = await queueInfo(vhost, name);
    summary.replaceChildren(facts([
      ["Virtual host", queue.vhost], ["Type", queue.type], ["State", queue.state],
      ["Ready", number(queue.messages_ready)], ["Unacked", number(queue.messages_unacknowledged)],
      ["Total", number(queue.messages)], ["Consumers", number(queue.consumers)],
      ["Durable", queue.durable ? "yes" : "no"], ["Arguments", json(queue.arguments)],
      queue.policy ? ["Policy", queue.policy] : null,
      queue.operator_policy ? ["Operator policy", queue.operator_policy] : null,
      Object.keys(queue.effective_policy_definition ?? {}).length
        ? ["Effective policy", json(queue.effective_policy_definition)] : null,
    ]));
    try {
      bindings.replaceChildren(dataTable([
        { label: "From", value: (row) => row.source || "(AMQP default)" },
        { label: "Routing key", key: "routing_key" }, { label: "Arguments", value: (row) => json(row.arguments) },
      ], await rows(`${base}/bindings`), {}, { filter: false }));
    } catch (error) {
      bindings.replaceChildren(errorBox(error));
    }
    try {
      const mine = (await rows(`/consumers/${seg(vhost)}`)).filter((c) => c.queue?.name === name);
      consumers.replaceChildren(dataTable([
        { label: "Tag", key: "consumer_tag" }, { label: "Channel", key: "channel_details.name" },
        { label: "Ack required", value: (row) => (row.ack_required ? "yes" : "no") },
        { label: "Prefetch", key: "prefetch_count", numeric: true },
      ], mine, {}, { filter: false }));
    } catch (error) {
      consumers.replaceChildren(errorBox(error));
    }
  }
  await update();

  const getForm = actionForm("Get messages", [
    field("Ack mode", h("select", { name: "ackmode" },
      ["ack_requeue_true", "ack_requeue_false", "reject_requeue_true", "reject_requeue_false"]
        .map((mode) => h("option", { value: mode }, mode)))),
    field("Encoding", h("select", { name: "encoding" }, h("option", { value: "auto" }, "auto"),
      h("option", { value: "base64" }, "base64"))),
    field("Messages", h("input", { name: "count", type: "number", min: 1, value: 1 })),
  ], "Get messages", async (data) => {
    const messages = await api("POST", `${base}/get`, {
      count: Number(data.count), ackmode: data.ackmode, encoding: data.encoding, truncate: 50000 });
    await update();
    return messages.length ? messagesTable(messages) : h("p", {}, "The queue is empty.");
  });

  const publishForm = actionForm("Publish a message", [
    field("Payload", h("textarea", { name: "payload", rows: 3 })),
    field("Persistent", h("input", { name: "persistent", type: "checkbox", checked: true })),
  ], "Publish", async (data) => {
    const answer = await api("POST", `/exchanges/${seg(vhost)}/amq.default/publish`, {
      routing_key: name, payload: data.payload ?? "", payload_encoding: "string",
      properties: data.persistent ? { delivery_mode: 2 } : {} });
    await update();
    return h("p", { class: "ok" }, answer?.routed === false ? "Published, but not routed." : "Published.");
  });

  const purgeForm = actionForm("Purge", [h("p", {}, "Remove every ready message from this queue.")], "Purge",
    async () => {
      if (!window.confirm(`Purge every ready message of ${name}?`)) return h("p", {}, "Not purged.");
      await api("DELETE", `${base}/contents`);
      await update();
      return h("p", { class: "ok" }, "Purged.");
    });

  return {
    element: h("div", {},
      h("h1", {}, `Queue ${name}`),
      h("p", {}, h("a", { href: `#/dead-letters/${seg(vhost)}/${seg(name)}` }, "Dead-letter view of this queue")),
      summary,
      section("Bindings", bindings),
      section("Consumers", consumers),
      section("Actions", h("div", { class: "actions" }, getForm, publishForm, purgeForm,
        moveForm(vhost, name, update))),
    ),
    update,
  };
}
