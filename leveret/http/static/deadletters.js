// Dead letters: a queue's messages with their x-death decoded (GET .../dead-letters, which takes nothing
// from the queue), a summary per reason and original queue, and replay: a server-side move task
// (POST /api/move-tasks) that moves them back to each message's original queue, or anywhere else,
// whose progress is followed here and which can be cancelled.

import { api, get, rows, seg } from "./api.js";
import { actionForm, dataTable, errorBox, facts, field, h, json, number, section } from "./dom.js";

const POLL_MS = 500;

// Follow a move task until it is no longer running; `show(task)` is called with each state.
async function follow(task, show) {
  show(task);
  while (task.state === "running") {
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    task = await get(`/move-tasks/${seg(task.id)}`);
    show(task);
  }
  return task;
}

function progress(task) {
  const done = task.total ? Math.round((100 * task.moved) / task.total) : 100;
  return h("div", { class: "task", dataset: { state: task.state } },
    h("progress", { max: 100, value: done }),
    h("span", {}, ` ${task.state}: ${number(task.moved)} of ${number(task.total)} moved`
      + (task.reason ? ` (${task.reason})` : "") + (task.resumed ? " (resumed after a restart)" : "")));
}

async function startMove(body, onDone) {
  const holder = h("div");
  const task = await api("POST", "/move-tasks", body);
  follow(task, (t) => holder.replaceChildren(progress(t))).then(onDone, (error) =>
    holder.replaceChildren(errorBox(error)));
  return holder;
}

// The move form of a queue's page: to the original queues (from x-death), a queue, or an exchange.
export function moveForm(vhost, source, onDone = () => {}) {
  return actionForm("Move messages", [
    field("To", h("select", { name: "to" }, h("option", { value: "original" }, "each message's original queue"),
      h("option", { value: "queue" }, "queue"), h("option", { value: "exchange" }, "exchange"))),
    field("Name", h("input", { name: "name", placeholder: "queue or exchange" })),
    field("Routing key", h("input", { name: "routing_key", placeholder: "(the message's own)" })),
    field("At most", h("input", { name: "count", type: "number", min: 1, placeholder: "all" })),
    field("Max rate /s", h("input", { name: "max_rate", type: "number", min: 1, placeholder: "no limit" })),
  ], "Move", async (data) => {
    const body = { vhost, source };
    if (data.to === "queue") body.queue = data.name;
    if (data.to === "exchange") {
      body.exchange = data.name;
      if (data.routing_key) body.routing_key = data.routing_key;
    }
    if (data.count) body.count = Number(data.count);
    if (data.max_rate) body.max_rate = Number(data.max_rate);
    return startMove(body, onDone);
  });
}

function countsTable(title, counts) {
  const entries = Object.entries(counts ?? {});
  return dataTable([{ label: title, key: "key" }, { label: "Messages", key: "count", numeric: true }],
    entries.map(([key, count]) => ({ key, count })), {}, { filter: false });
}

export async function deadLettersPage({ vhost, name }) {
  const view = h("div");
  const replayResult = h("div", { class: "result" });

  async function update() {
    try {
      const answer = await get(`/queues/${seg(vhost)}/${seg(name)}/dead-letters?count=100&encoding=auto`);
      const summary = answer.summary ?? {};
      view.replaceChildren(
        facts([["Ready messages", number(answer.messages_ready)],
               ["Examined for the summary", `${number(summary.examined)}${summary.complete ? " (all)" : ""}`]]),
        h("div", { class: "columns" }, countsTable("Reason", summary.by_reason),
          countsTable("Original queue", summary.by_queue)),
        section("Messages (first 100)", dataTable([
          { label: "Reason", key: "dead_letter.reason" },
          { label: "Original queue", key: "dead_letter.queue" },
          { label: "Exchange", value: (row) => (row.dead_letter?.exchange === "" ? "(AMQP default)"
            : row.dead_letter?.exchange) },
          { label: "Routing keys", value: (row) => (row.dead_letter?.routing_keys ?? []).join(", ") },
          { label: "Deaths", key: "dead_letter.count", numeric: true },
          { label: "Time", value: (row) => formatTime(row.dead_letter?.time) },
          { label: "Replays", key: "dead_letter.replay_count", numeric: true },
          { label: "Payload", key: "payload" },
        ], answer.items ?? [], {}, { filterKey: "dead_letter.queue" })));
    } catch (error) {
      view.replaceChildren(errorBox(error));
    }
  }
  await update();

  const replay = h("button", { type: "button", class: "replay", onclick: async () => {
    replay.disabled = true;
    try {
      replayResult.replaceChildren(await startMove({ vhost, source: name, replay_count: true }, update));
    } catch (error) {
      replayResult.replaceChildren(errorBox(error));
    } finally {
      replay.disabled = false;
    }
  } }, "Replay all to their original queues");

  return {
    element: h("div", {}, h("h1", {}, `Dead letters in ${name}`),
      h("p", {}, h("a", { href: `#/queues/${seg(vhost)}/${seg(name)}` }, "Queue page"), " · ",
        h("a", { href: "#/dead-letters" }, "All queues")),
      h("div", { class: "replay-bar" }, replay, replayResult), view),
  };
}

function formatTime(value) {
  if (value === undefined || value === null) return "";
  const date = typeof value === "number" ? new Date(value * 1000) : new Date(value);
  return Number.isNaN(date.getTime()) ? String(value) : date.toISOString().replace("T", " ").slice(0, 19);
}

// Every queue, likely dead-letter queues first, and the move tasks.
export async function deadLetterIndexPage() {
  const tasks = h("div");
  async function update() {
    try {
      const list = await rows("/move-tasks");
      tasks.replaceChildren(dataTable([
        { label: "Task", key: "id" }, { label: "From", key: "source" }, { label: "State", key: "state" },
        { label: "Moved", key: "moved", numeric: true }, { label: "Total", key: "total", numeric: true },
        // A durable task a restart interrupted goes on: how many times it was resumed.
        { label: "Resumed", key: "resumed", numeric: true, format: (times) => (times ? `after ${times} restart${times > 1 ? "s" : ""}` : "") },
        { label: "", value: () => "", format: (_, row) => row.state === "running" ? h("button", {
          type: "button", onclick: async () => { await api("DELETE", `/move-tasks/${seg(row.id)}`); await update(); },
        }, "Cancel") : "" },
      ], list, {}, { filter: false }));
    } catch (error) {
      tasks.replaceChildren(errorBox(error));
    }
  }
  await update();
  const queues = await rows("/queues");
  // Queues named as dead-letter queues usually are (dlq, dead, dlx, error, failed), then the fullest.
  const likely = (q) => Number(/(^|[-_.])(dlq|dead|dlx|error|failed)/i.test(q.name));
  const order = (a, b) => likely(b) - likely(a) || (b.messages_ready ?? 0) - (a.messages_ready ?? 0);
  return {
    element: h("div", {}, h("h1", {}, "Dead letters"),
      h("p", {}, "Open a queue's dead-letter view to see why each message died and replay them."),
      dataTable([
        { label: "Virtual host", key: "vhost" },
        { label: "Queue", key: "name", link: (q) => `#/dead-letters/${seg(q.vhost)}/${seg(q.name)}` },
        { label: "Ready", key: "messages_ready", numeric: true },
        { label: "Arguments", value: (q) => json(q.arguments) },
      ], [...queues].sort(order), { filter: "" }),
      section("Move tasks", tasks)),
    update,
  };
}
