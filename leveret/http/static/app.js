// The dashboard's shell: the login form, the navigation, and routing between pages by the URL's
// fragment (#/queues, #/queues/{vhost}/{name}, ...), refreshing the open page's figures every few seconds.

import { ApiError, clearCredentials, currentUser, get, hasCredentials, setCredentials } from "./api.js";
import { h, errorBox } from "./dom.js";
import { adminPage, connectionsPage, exchangesPage, overviewPage, policiesPage, queuesPage } from "./pages.js";
import { queuePage } from "./queue.js";
import { deadLetterIndexPage, deadLettersPage } from "./deadletters.js";
import { definitionsPage } from "./definitions.js";
import { shovelsPage } from "./shovels.js";

const REFRESH_MS = 5000;

// [fragment pattern, page, navigation label (none: not in the bar)]
const ROUTES = [
  [/^#\/(overview)?$/, overviewPage, "Overview", "#/"],
  [/^#\/queues$/, queuesPage, "Queues", "#/queues"],
  [/^#\/queues\/([^/]+)\/([^/]+)$/, queuePage],
  [/^#\/exchanges$/, exchangesPage, "Exchanges", "#/exchanges"],
  [/^#\/connections$/, connectionsPage, "Connections", "#/connections"],
  [/^#\/policies$/, policiesPage, "Policies", "#/policies"],
  [/^#\/admin$/, adminPage, "Admin", "#/admin"],
  [/^#\/definitions$/, definitionsPage, "Definitions", "#/definitions"],
  [/^#\/dead-letters$/, deadLetterIndexPage, "Dead letters", "#/dead-letters"],
  [/^#\/dead-letters\/([^/]+)\/([^/]+)$/, deadLettersPage],
  [/^#\/shovels$/, shovelsPage, "Shovels", "#/shovels"],
];

const main = document.getElementById("main");
let timer = null;
let shown = 0; // which render is current: a slow page that finishes after a newer one is dropped

function navigation() {
  const current = location.hash || "#/";
  document.getElementById("nav").replaceChildren(...ROUTES.filter((route) => route[2]).map(([pattern, , label, href]) =>
    h("a", { href, class: pattern.test(current) || current.startsWith(href + "/") ? "current" : "" }, label)));
  document.getElementById("who").textContent = currentUser();
}

function showLogin(message) {
  clearInterval(timer);
  document.body.classList.add("logged-out");
  const form = h("form", { id: "login", onsubmit: async (event) => {
    event.preventDefault();
    const data = new FormData(event.target);
    setCredentials(data.get("username"), data.get("password"));
    try {
      await get("/whoami");
    } catch (error) {
      clearCredentials();
      showLogin(error instanceof ApiError && error.status === 401 ? "Login failed." : error.message);
      return;
    }
    document.body.classList.remove("logged-out");
    route();
  } },
  h("h1", {}, "leveret"),
  h("label", {}, "Username", h("input", { name: "username", autocomplete: "username", required: true })),
  h("label", {}, "Password", h("input", { name: "password", type: "password", autocomplete: "current-password" })),
  h("button", { type: "submit" }, "Log in"),
  message ? h("p", { class: "error", role: "alert" }, message) : null);
  main.replaceChildren(form);
}

async function route() {
  if (!hasCredentials()) return showLogin();
  clearInterval(timer);
  navigation();
  const hash = location.hash || "#/";
  const found = ROUTES.map(([pattern, page]) => [hash.match(pattern), page]).find(([match]) => match);
  if (!found) {
    main.replaceChildren(h("p", {}, "No such page. ", h("a", { href: "#/" }, "Overview")));
    return;
  }
  const [match, page] = found;
  const params = match.length > 2 ? { vhost: decodeURIComponent(match[1]), name: decodeURIComponent(match[2]) } : {};
  const mine = ++shown;
  main.setAttribute("aria-busy", "true");
  try {
    const { element, update } = await page(params);
    if (mine !== shown) return;
    main.replaceChildren(element);
    if (update) {
      timer = setInterval(() => update().catch(failed), REFRESH_MS);
    }
  } catch (error) {
    if (mine === shown) failed(error);
  } finally {
    if (mine === shown) main.removeAttribute("aria-busy");
  }
}

function failed(error) {
  if (error instanceof ApiError && error.status === 401) {
    clearCredentials();
    showLogin("Your login is no longer accepted.");
    return;
  }
  main.prepend(errorBox(error));
}

document.getElementById("logout").addEventListener("click", () => {
  clearCredentials();
  showLogin();
});
window.addEventListener("hashchange", route);
route();
