// Definitions: download the broker's (GET /api/definitions, saved as a JSON file) and upload a file of
// them (POST /api/definitions), in RabbitMQ's format, so an export from RabbitMQ's UI loads here too.

import { api, get } from "./api.js";
import { actionForm, field, h } from "./dom.js";

function download(name, text) {
  const link = h("a", { href: URL.createObjectURL(new Blob([text], { type: "application/json" })), download: name });
  document.body.append(link);
  link.click();
  link.remove();
}

export async function definitionsPage() {
  const downloadForm = actionForm("Download", [h("p", {}, "Users, vhosts, permissions, policies, queues, "
    + "exchanges and bindings as one JSON file.")], "Download definitions", async () => {
    const definitions = await get("/definitions");
    const stamp = new Date().toISOString().slice(0, 19).replace(/[:T]/g, "-");
    download(`leveret-definitions-${stamp}.json`, JSON.stringify(definitions, null, 2));
    const count = (key) => (definitions?.[key] ?? []).length;
    return h("p", { class: "ok" }, `Downloaded ${count("queues")} queues, ${count("exchanges")} exchanges, `
      + `${count("bindings")} bindings, ${count("policies")} policies, ${count("users")} users.`);
  });
  const uploadForm = actionForm("Upload", [field("File", h("input", { name: "file", type: "file",
    accept: ".json,application/json" }))], "Upload definitions", async (data) => {
    if (!(data.file instanceof File) || !data.file.size) return h("p", { class: "error" }, "Choose a file first.");
    const text = await data.file.text();
    try {
      JSON.parse(text);
    } catch (error) {
      return h("p", { class: "error" }, `Not JSON: ${error.message}`);
    }
    await api("POST", "/definitions", text);
    return h("p", { class: "ok" }, `Imported ${data.file.name}.`);
  });
  return { element: h("div", {}, h("h1", {}, "Definitions"), h("div", { class: "actions" }, downloadForm, uploadForm)) };
}
