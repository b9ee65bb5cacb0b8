// The emulator's web page. It talks only to the emulator's own public UbiOps API (`/v2.1`, the same
// origin), as any client does: the form is built from the deployment's input fields, a request is
// sent as a multipart form (as curl sends it), and the history is UbiOps' request history. Every
// value shown is set as text, never as HTML: a deployment's output cannot inject markup.

const API = "/v2.1";
const TOKEN_KEY = "emulator-token";
const HISTORY_SIZE = 20;
const POLL_MS = 1000;
const HIDDEN_POLL_MS = 15000; // while the tab is hidden: every refresh asks each version for 3 lists
const UNFINISHED = ["pending", "processing"];
const IMAGE_NAME = /\.(jpe?g|png|gif|webp|bmp|avif)$/i;
const FILE_URI = /^ubiops-file:\/\/([^/]+)\/(.+)$/;
const SHOWN_CHARACTERS = 10000; // a longer text is cut, with a control that shows it all
const LOG_LINES = 50; // a failed request's newest log lines shown

const $ = (id) => document.getElementById(id);
const state = { project: null, deployment: null, fields: null, opened: null, poll: null, sending: new Set() };

class ApiProblem extends Error {
  constructor(message, status = null) {
    super(message);
    this.status = status; // the HTTP status, for an answer of the API
  }
}

/** An element with properties (`className`, `textContent`, `onclick`…), `data-` attributes and
 * children (strings become text). */
function el(tag, { dataset = {}, ...properties } = {}, ...children) {
  const node = Object.assign(document.createElement(tag), properties);
  Object.assign(node.dataset, dataset);
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
}

/** `text` as an element made by `el(tag, properties)`, cut after SHOWN_CHARACTERS with a note and a
 * "Show all" button: drawn whole, a 20 MB output made the page a million pixels tall, and its raw JSON
 * took seconds to open. */
function longText(tag, properties, text) {
  if (text.length <= SHOWN_CHARACTERS) return el(tag, { ...properties, textContent: text });
  // Not between the two halves of a character beyond the Basic Multilingual Plane.
  const end = /[\uD800-\uDBFF]/.test(text[SHOWN_CHARACTERS - 1]) ? SHOWN_CHARACTERS - 1 : SHOWN_CHARACTERS;
  const node = el(tag, { ...properties, textContent: text.slice(0, end) });
  const all = el("button", { type: "button", className: "small", textContent: "Show all" });
  const note = el("span", { className: "cut muted" },
    ` … cut: the first ${end.toLocaleString("en")} of ${text.length.toLocaleString("en")} characters shown. `, all);
  all.onclick = () => { node.textContent = text; note.remove(); };
  return el("div", { className: "long" }, node, note);
}

// JSON with the emulator's exact integers: JSON.parse would round one beyond 2^53 (an `int` is 64-bit)
// to the nearest double, so such an integer is read from its digits as sent, as a BigInt, and written
// back out as those digits.
const exactJson = (text) => JSON.parse(text, (key, value, context) =>
  (Number.isInteger(value) && !Number.isSafeInteger(value) && /^-?\d+$/.test(context?.source) ? BigInt(context.source) : value));
const jsonText = (value, indent) =>
  JSON.stringify(value, (key, item) => (typeof item === "bigint" ? JSON.rawJSON(String(item)) : item), indent);

const segment = (name) => encodeURIComponent(name);
const deploymentPath = () => `/projects/${segment(state.project)}/deployments/${segment(state.deployment)}`;

// ---- The token: asked for once, when the API answers 401, and kept in this tab's session only.

let tokenWaiters = [];

const tokenTyped = () => new Promise((resolve) => tokenWaiters.push(resolve));

function askForToken(problem) {
  $("token-box").hidden = false;
  $("token-problem").textContent = problem;
  $("token").focus();
  return tokenTyped();
}

// The emulator's own rule (TOKEN_RULE in emulator/api/auth.py, which refuses any other token at start):
// what an HTTP header can carry as typed. A token with any other character (a pasted non-breaking
// hyphen, say) would make every call fail in the browser before it is sent. Exported for the tests.
export const TOKEN_CHARACTERS = /^[\x21-\x7e]*$/;

$("token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const token = $("token").value.trim();
  if (!TOKEN_CHARACTERS.test(token)) {
    $("token-problem").textContent = "A token has only printable ASCII characters, no spaces; type it again.";
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  $("token").value = "";
  $("token-box").hidden = true;
  const waiting = tokenWaiters;
  tokenWaiters = [];
  waiting.forEach((resolve) => resolve());
});

/** A call to the API: its JSON answer, or an ApiProblem with the emulator's `error` text. */
async function call(path, options = {}) {
  for (;;) {
    const token = sessionStorage.getItem(TOKEN_KEY);
    const headers = { ...(options.headers || {}), ...(token ? { Authorization: `Token ${token}` } : {}) };
    const response = await fetch(API + path, { ...options, headers });
    const type = response.headers.get("content-type") || "";
    const text = await response.text();
    const body = type.includes("json") ? exactJson(text) : text;
    if (response.status === 401) {
      // Calls run in parallel: only the first to find the token refused asks; the others wait for the
      // new one, or simply retry if it was typed meanwhile.
      const stored = sessionStorage.getItem(TOKEN_KEY);
      if (stored === token) {
        sessionStorage.removeItem(TOKEN_KEY);
        await askForToken(token ? "That token was refused; type it again." : "");
      } else if (stored === null) {
        await tokenTyped();
      }
      continue;
    }
    if (!response.ok) {
      const message = typeof body === "object" && body !== null ? body.error || jsonText(body) : body;
      throw new ApiProblem(`${response.status}: ${message}`, response.status);
    }
    return body;
  }
}

/** A problem over the page: one `lasting` (a deployment gone) stays until a deployment is picked, where a
 * history refresh that succeeds hides the others (the emulator answers again); the refresh that came
 * right after a gone deployment's notice hid it. */
function showPageProblem(error, lasting = false) {
  $("page-problem").hidden = false;
  $("page-problem").dataset.lasting = lasting ? "yes" : "";
  $("page-problem").textContent = error instanceof ApiProblem ? error.message : `The page failed: ${error}`;
}

// ---- Picking a project, deployment and version.

function fillSelect(select, items, chosen) {
  select.replaceChildren(...items.map(([value, label]) => el("option", { value, textContent: label })));
  if (chosen !== undefined && items.some(([value]) => value === chosen)) select.value = chosen;
}

async function loadProjects() {
  const projects = await call("/projects");
  fillSelect($("project"), projects.map((p) => [p.name, p.name]));
  await loadDeployments();
}

// A pick made while an earlier one still loads wins: the earlier one's answers are dropped.

async function loadDeployments() {
  const project = (state.project = $("project").value);
  const deployments = await call(`/projects/${segment(project)}/deployments`);
  if (state.project !== project) return;
  fillSelect($("deployment"), deployments.map((d) => [d.name, d.name]));
  if (!deployments.length) throw new ApiProblem(`Project ${project} has no deployments yet.`);
  await loadDeployment();
}

async function loadDeployment() {
  const name = (state.deployment = $("deployment").value);
  state.opened = null;
  $("outcome-card").hidden = true;
  const [deployment, versions] = await Promise.all([call(deploymentPath()), call(`${deploymentPath()}/versions`)]);
  if (state.deployment !== name) return;
  showVersions(versions, deployment.default_version);
  state.fields = { input: deployment.input_fields, output: deployment.output_fields };
  buildForm(deployment.input_fields);
  $("fields").dataset.deployment = state.deployment;
  $("page-problem").hidden = true;
  $("page-problem").dataset.lasting = "";
  await refreshHistory();
}

/** The version menu, each version noted as the API shows it now (default, building…). A deployment's
 * load picks `pick`; the history's refresh notes the versions again (a version opened while building
 * stayed "building" beside its answers) and keeps the pick while it exists, else picks the default. */
function showVersions(versions, pick) {
  const labels = versions.map((v) => {
    const notes = [v.default ? "default" : null, v.status !== "available" ? v.status : null].filter(Boolean);
    return [v.version, notes.length ? `${v.version} (${notes.join(", ")})` : v.version];
  });
  const options = [...$("version").options];
  if (pick === undefined && options.length === labels.length && options.every((o, i) => o.value === labels[i][0])) {
    options.forEach((option, i) => { option.textContent = labels[i][1]; }); // a menu the user has open stays open
  } else {
    const kept = pick ?? $("version").value;
    const stays = versions.some((v) => v.version === kept);
    fillSelect($("version"), labels, stays ? kept : versions.find((v) => v.default)?.version);
    // The chosen version deleted (or renamed): the menu shows another one, which Send now goes to.
    if (pick !== undefined) $("version-gone").hidden = true;
    else if (kept && !stays) versionGone(kept, versions.find((v) => v.version === $("version").value));
  }
  allowSending();
}

function versionGone(name, now) {
  const instead = !now ? "" : now.default ? `; the default version, ${now.version}, is now selected` : `; ${now.version} is now selected`;
  $("version-gone").textContent = `Version ${name} is gone (deleted or renamed)${instead}.`;
  $("version-gone").hidden = false;
}

$("project").addEventListener("change", () => loadDeployments().catch(showPageProblem));
$("deployment").addEventListener("change", () => loadDeployment().catch(showPageProblem));
$("version").addEventListener("change", () => { $("version-gone").hidden = true; });

// ---- The input form, generated from the input fields and their widgets.

const widgetConfig = (field) => (field.widget && field.widget.configuration) || {};
const isFileType = (type) => type === "file" || type === "array_file";

function widgetOptions(field) {
  const options = widgetConfig(field).options;
  if (Array.isArray(options)) return options.map(String);
  return typeof options === "string" && options.trim() ? options.split(",").map((o) => o.trim()) : null;
}

function fileInput(field) {
  const input = el("input", { type: "file", name: field.name, multiple: field.data_type === "array_file" });
  if (field.widget && field.widget.type === "image_preview") input.accept = "image/*";
  const preview = el("img", { className: "preview", alt: "", hidden: true });
  const dropped = el("span", { className: "problem dropped", hidden: true });
  const zone = el("label", { className: "dropzone" }, input,
    el("span", { className: "muted", textContent: input.multiple ? "or drop files here" : "or drop a file here" }), dropped, preview);
  const show = () => {
    const files = [...input.files];
    const image = files.find((f) => f.type.startsWith("image/"));
    if (preview.src) URL.revokeObjectURL(preview.src);
    preview.hidden = !image;
    preview.src = image ? URL.createObjectURL(image) : "";
  };
  input.addEventListener("change", () => { dropped.hidden = true; show(); });
  zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    const files = event.dataTransfer.files;
    dropped.hidden = input.multiple || files.length <= 1;
    if (dropped.hidden) {
      input.files = files;
    } else {
      // A `file` field takes one file: given several, the request is refused (400).
      const first = new DataTransfer();
      first.items.add(files[0]);
      input.files = first.files;
      dropped.textContent = `This field takes one file: of the ${files.length} dropped, only the first (${files[0].name}) is kept.`;
    }
    show();
  });
  return zone;
}

/** A widget's default as the form shows it: a dict or array as the JSON the field is typed in. */
function defaultText(value) {
  if (value === undefined || value === null) return "";
  return typeof value === "object" ? jsonText(value) : String(value);
}

function fieldInput(field) {
  const config = widgetConfig(field);
  const initial = defaultText(config.default);
  const type = field.data_type;
  const options = widgetOptions(field);
  if (isFileType(type)) return fileInput(field);
  if (type === "bool") {
    return el("input", { type: "checkbox", name: field.name, checked: ["true", "1"].includes(initial.toLowerCase()) });
  }
  if (options) {
    const select = el("select", { name: field.name });
    fillSelect(select, options.map((o) => [o, o]), initial);
    return select;
  }
  if (type === "int" || type === "double") {
    const slider = field.widget && field.widget.type === "slider" && config.min !== undefined && config.max !== undefined;
    const input = el("input", { type: slider ? "range" : "number", name: field.name, step: config.step || (type === "int" ? "1" : "any") });
    if (config.min !== undefined) input.min = config.min;
    if (config.max !== undefined) input.max = config.max;
    input.value = initial;
    if (!slider) return input;
    // A range input always has a value (its middle, without a default): until it is moved, a slider
    // without a default is left out of the request, as an empty number box is.
    if (initial === "") input.dataset.unset = "";
    const shown = el("output", { textContent: initial === "" ? "not set" : input.value });
    input.addEventListener("input", () => { delete input.dataset.unset; shown.textContent = input.value; });
    return el("span", { className: "slider" }, input, shown);
  }
  if (type === "string") return el("input", { type: "text", name: field.name, value: initial });
  const example = type === "dict" ? '{"key": "value"}' : "[…]";
  return el("textarea", { name: field.name, rows: 3, placeholder: `JSON, e.g. ${example}`, value: initial });
}

function buildForm(fields) {
  const rows = fields.length
    ? fields.map((field) => el("div", { className: "field" },
        el("label", { htmlFor: `in-${field.name}` }, field.name, el("span", { className: "type", textContent: field.data_type })),
        fieldInput(field)))
    : [el("div", { className: "field" }, el("label", { htmlFor: "in-plain", textContent: "Plain input" }),
        el("textarea", { name: "plain", rows: 4 }))];
  $("fields").replaceChildren(...rows);
  for (const control of $("fields").querySelectorAll("[name]")) control.id = `in-${control.name}`;
}

/** The form as the request body: multipart, as curl sends it; a field left empty is left out, so the
 * emulator fills in its widget's default or says it is missing. */
function requestBody() {
  const fields = state.fields.input;
  if (!fields.length) {
    return { body: $("in-plain").value, headers: { "Content-Type": "text/plain" } };
  }
  const form = new FormData();
  for (const field of fields) {
    const control = $(`in-${field.name}`);
    if (isFileType(field.data_type)) {
      for (const file of control.files) form.append(field.name, file);
    } else if (field.data_type === "bool") {
      form.append(field.name, control.checked ? "true" : "false");
    } else if ((control.value !== "" && control.dataset.unset === undefined) || field.data_type === "string") {
      form.append(field.name, control.value);
    }
  }
  return { body: form, headers: {} };
}

/** A request goes to a version: a deployment without one says so, where sending posted to
 * `…/versions//requests` and showed a bare 404. Nor is it sent twice: Send waits for the shown
 * deployment's request to be answered, whoever asks (the history's refresh notes the versions). */
function allowSending() {
  const versionless = $("version").options.length === 0;
  $("no-version").hidden = !versionless;
  $("send").disabled = state.sending.has(deploymentPath()) || versionless;
}

$("request-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const sent = deploymentPath();
  state.sending.add(sent);
  allowSending();
  $("sending").hidden = false;
  try {
    const { body, headers } = requestBody();
    const version = $("version").value;
    let answer;
    try {
      answer = await call(`${deploymentPath()}/versions/${segment(version)}/requests`, { method: "POST", body, headers });
    } catch (error) {
      // Named: a refresh may have replaced a deleted version in the menu by the default meanwhile.
      throw new ApiProblem(`Request to version ${version}: ${error.message}`);
    }
    if (deploymentPath() !== sent) return; // another deployment was picked meanwhile: the answer is in its history
    state.opened = null;
    markOpened();
    showOutcome("Result", answer, answer.emulator_file_urls || {});
  } catch (error) {
    if (deploymentPath() === sent) showFailure(error);
  } finally {
    state.sending.delete(sent);
    allowSending();
    $("sending").hidden = true;
  }
  pollHistory();
});

// ---- An outcome: the output fields as a table, files inline, the raw JSON behind a toggle.

/** A URL to show a `ubiops-file://` file by: the one the answer gave, or a signed one from the files API. */
async function fileUrl(uri, known) {
  if (known[uri]) return known[uri];
  const [, bucket, name] = uri.match(FILE_URI) || [];
  if (!bucket) throw new ApiProblem(`not a file URI: ${uri}`);
  const answer = await call(`/projects/${segment(state.project)}/buckets/${segment(bucket)}/files/${segment(name)}/download`);
  return answer.url;
}

function fileCell(uri, known) {
  const link = el("a", { textContent: uri.split("/").pop(), target: "_blank", rel: "noopener" });
  const image = IMAGE_NAME.test(uri) ? el("img", { className: "output-image", alt: uri }) : null;
  const figure = el("figure", {}, image, el("figcaption", {}, link));
  fileUrl(uri, known).then((url) => {
    if (!/^https?:\/\//.test(url)) return;
    link.href = url;
    if (image) image.src = url;
  }).catch((error) => figure.append(el("span", { className: "problem", textContent: ` ${error.message}` })));
  return figure;
}

function valueCell(field, value, known) {
  if (value === null || value === undefined) return el("span", { className: "muted", textContent: "null" });
  if (isFileType(field.data_type) && typeof value === "string" && FILE_URI.test(value)) return fileCell(value, known);
  if (field.data_type === "array_file" && Array.isArray(value)) {
    return el("div", {}, ...value.map((uri) => (FILE_URI.test(String(uri)) ? fileCell(uri, known) : el("code", { textContent: String(uri) }))));
  }
  if (typeof value === "object") return longText("code", {}, jsonText(value));
  return longText("span", {}, String(value));
}

function fieldTable(fields, data, known) {
  if (typeof data !== "object" || data === null || Array.isArray(data)) {
    return longText("pre", { className: "plain" }, typeof data === "string" ? data : jsonText(data, 2));
  }
  const names = fields.length ? fields : Object.keys(data).map((name) => ({ name, data_type: "" }));
  return el("table", { className: "fields" }, el("tbody", {}, ...names.map((field) =>
    el("tr", { dataset: { field: field.name } },
      el("th", { textContent: field.name }), el("td", {}, valueCell(field, data[field.name], known))))));
}

/** An answer shown in the outcome card, brought into view unless `reveal` is false (a followed
 * request's update, which must not pull the page away from the form). */
function showOutcome(title, answer, known, withInput = false, reveal = true) {
  const failed = answer.status === "failed";
  const parts = [
    el("p", { className: "summary" },
      el("span", { className: `status status-${answer.status}`, textContent: answer.status }),
      ` request ${answer.id} · version ${answer.version}`),
  ];
  if (failed) parts.push(longText("p", { className: "error", id: "error-message" }, answer.error_message || "The request failed."));
  if (withInput) {
    parts.push(el("h3", { textContent: "Input" }));
    parts.push(answer.request_data === null || answer.request_data === undefined
      ? el("p", { className: "muted", textContent: "Not kept (the version's request_retention_mode is not full)." })
      : fieldTable(state.fields.input, answer.request_data, known));
  }
  if (answer.status === "completed") {
    parts.push(el("h3", { textContent: "Output" }));
    parts.push(answer.result === null && withInput
      ? el("p", { className: "muted", textContent: "Not kept (the version's request_retention_mode is not full)." })
      : fieldTable(state.fields.output, answer.result, known));
  } else if (UNFINISHED.includes(answer.status)) {
    parts.push(el("p", { className: "muted", textContent: `This request is ${answer.status}; this view follows it.` }));
  }
  if (failed) parts.push(requestLogs(answer));
  parts.push(el("details", { className: "raw" }, el("summary", { textContent: "Raw JSON" }),
    longText("pre", {}, jsonText(answer, 2))));
  $("outcome-title").textContent = title;
  $("outcome").replaceChildren(...parts);
  $("outcome-card").hidden = false;
  if (reveal) revealOutcome();
}

function showFailure(error) {
  $("outcome-title").textContent = "Result";
  $("outcome").replaceChildren(longText("p", { className: "error", id: "error-message" }, error.message));
  $("outcome-card").hidden = false;
  revealOutcome();
}

/** The outcome card scrolled to the window's top when its own top is not in the window's upper half:
 * below 900 px the page is one column, the card under the form and the history, and a result shown
 * there was off-screen, the user seeing only a new history row. */
function revealOutcome() {
  const { top } = $("outcome-card").getBoundingClientRect();
  if (top < 0 || top > window.innerHeight / 2) $("outcome-card").scrollIntoView({ block: "start" });
}

// ---- A failed request's log lines, where UbiOps' error says "See the logs for details".

const shellQuote = (text) => `'${text.replaceAll("'", "'\\''")}'`;

/** The newest LOG_LINES lines `logs_list` finds by the request's id, oldest first, with the `ubiops logs`
 * command that finds them. Asked again each second until two answers agree: what the deployment printed
 * reaches the log through a pipe, after its answer can have come. */
function requestLogs(answer) {
  const query = `| deployment_request_id=${JSON.stringify(answer.id)}`;
  const params = new URLSearchParams({ query, limit: LOG_LINES });
  const command = ["ubiops logs --query", shellQuote(query)];
  if (answer.time_created) {
    // A request older than the default window (the last 24 hours) is found too.
    const end = new Date(Date.parse(answer.time_created) - 1000).toISOString();
    params.set("end", end);
    command.push("--end", end);
  }
  command.push("--limit", LOG_LINES, "--no_pager");
  const lines = el("div", { className: "log-lines" }, el("p", { className: "muted", textContent: "Loading…" }));
  const reload = el("button", { type: "button", className: "small", textContent: "Reload" });
  const path = `/projects/${segment(state.project)}/logs?${params}`;
  let shown = null;
  const load = async (tries) => {
    let found;
    try {
      found = await call(path);
    } catch (error) {
      if (lines.isConnected) lines.replaceChildren(el("p", { className: "problem", textContent: `The logs could not be read: ${error.message}` }));
      return;
    }
    if (!lines.isConnected) return; // another outcome is shown
    const key = found.map((line) => line.timestamp_str).join();
    if (key !== shown) {
      lines.replaceChildren(...logLines(found.reverse()));
      lines.scrollTop = lines.scrollHeight; // the newest lines, where the error is
    }
    if (key !== shown && tries > 1) setTimeout(() => load(tries - 1), POLL_MS);
    shown = key;
  };
  reload.onclick = () => load(1);
  load(10);
  return el("section", { className: "logs" },
    el("h3", {}, `Logs: the last ${LOG_LINES} lines of this request `, reload), lines,
    el("p", { className: "muted", textContent: "The same lines from a shell:" }),
    el("pre", { className: "cli", textContent: command.join(" ") }));
}

function logLines(found) {
  if (!found.length) return [el("p", { className: "muted", textContent: "No log lines found for this request." })];
  return found.map((line) => el("div", { className: `log-line level-${line.metadata.level}` },
    el("span", { className: "log-time", textContent: new Date(Number(BigInt(line.timestamp_str) / 1000000n)).toLocaleTimeString() }),
    el("span", { className: "log-source", textContent: line.metadata.system ? "emulator" : "deployment" }),
    longText("span", { className: "log-text" }, line.log)));
}

// ---- The request history, followed live while any request in it is unfinished or a version builds.

/** The deployment's versions and the newest requests of them all: its deployment-level history is its
 * default version's alone (UbiOps' "for the default version of a deployment"), so each version's is asked for. */
async function recentRequests() {
  const shown = deploymentPath();
  const versions = await call(`${shown}/versions`);
  // A version deleted since it was listed has no history left to show.
  const gone = (error) => { if (error instanceof ApiProblem && error.status === 404) return []; throw error; };
  // The history filters by status, and pending or processing can only be asked for alone.
  const lists = await Promise.all(versions.flatMap((v) => ["completed,failed,cancelled", "processing", "pending"].map((status) =>
    call(`${shown}/versions/${segment(v.version)}/requests?status=${status}&limit=${HISTORY_SIZE}`).catch(gone))));
  const byId = new Map(lists.flat().map((r) => [r.id, r]));
  const requests = [...byId.values()].sort((a, b) => b.time_created.localeCompare(a.time_created)).slice(0, HISTORY_SIZE);
  return { versions, requests };
}

async function refreshHistory() {
  clearTimeout(state.poll);
  state.poll = null;
  const shown = deploymentPath();
  let versions, requests;
  try {
    ({ versions, requests } = await recentRequests());
  } catch (error) {
    // The deployment itself is gone (renamed or deleted): the menu is reloaded, and it is followed no more.
    if (error instanceof ApiProblem && error.status === 404 && shown === deploymentPath()) return deploymentGone();
    throw error;
  }
  if (shown !== deploymentPath()) return;
  if (!$("page-problem").dataset.lasting) $("page-problem").hidden = true; // the emulator answers again
  showVersions(versions);
  showHistory(requests);
  $("history-empty").hidden = requests.length > 0;
  const openedUnfinished = await followOpened(shown);
  const building = versions.some((v) => v.status === "building");
  if (openedUnfinished || building || requests.some((r) => UNFINISHED.includes(r.status))) followHistory();
}

/** The history's rows, updated in place by request id: rebuilt each second while a request ran, a
 * row clicked as it was replaced lost the click, and a selection in it was reset. A refresh that
 * finds nothing new changes nothing. */
function showHistory(requests) {
  const body = $("history").tBodies[0];
  const rows = new Map([...body.rows].map((row) => [row.dataset.id, row]));
  requests.forEach((r, i) => {
    const row = rows.get(r.id) ?? historyRow(r);
    if (row.dataset.status !== r.status) {
      row.dataset.status = r.status;
      row.cells[3].replaceChildren(el("span", { className: `status status-${r.status}`, textContent: r.status }));
    }
    if (body.rows[i] !== row) body.insertBefore(row, body.rows[i] ?? null);
  });
  while (body.rows.length > requests.length) body.rows[body.rows.length - 1].remove();
}

function historyRow(r) {
  return el("tr", { dataset: { id: r.id }, className: state.opened && state.opened.id === r.id ? "opened" : "" },
    el("td", { textContent: new Date(r.time_created).toLocaleString() }),
    el("td", {}, el("button", { type: "button", className: "link", textContent: r.id.slice(0, 8), title: r.id,
                                onclick: () => openRequest(r.id, r.version).catch(showFailure) })),
    el("td", { textContent: r.version }),
    el("td"));
}

/** The opened request, while unfinished, asked of its own version: whether or not it is among the newest
 * rows of the history. Whether it is still unfinished (and followed). */
async function followOpened(shown) {
  const opened = state.opened;
  if (!opened || !UNFINISHED.includes(opened.status)) return false;
  let detail;
  try {
    detail = await call(`${shown}/versions/${segment(opened.version)}/requests/${segment(opened.id)}`);
  } catch (error) {
    if (!(error instanceof ApiProblem && error.status === 404)) throw error;
    if (state.opened !== opened || deploymentPath() !== shown) return false;
    state.opened = null;
    markOpened();
    $("outcome-title").textContent = "From the history";
    $("outcome").replaceChildren(el("p", { className: "error", id: "error-message",
      textContent: `Request ${opened.id} (version ${opened.version}) is gone: it or its version was deleted (${error.message}). This view no longer follows it.` }));
    $("outcome-card").hidden = false;
    return false;
  }
  if (state.opened !== opened || deploymentPath() !== shown) return false;
  if (detail.status !== opened.status) showOpened(detail, false);
  return UNFINISHED.includes(detail.status);
}

/** The shown deployment answered 404: renamed or deleted. The deployment menu is loaded again (showing
 * another deployment), and the page says what happened. */
async function deploymentGone() {
  const name = state.deployment;
  const gone = `Deployment ${name} is gone (renamed or deleted); the deployment list was loaded again.`;
  state.opened = null;
  try {
    await loadDeployments();
    showPageProblem(new ApiProblem(gone), true);
  } catch (error) {
    // Not thrown on: the poll that called this would retry the gone deployment every second.
    showPageProblem(new ApiProblem(`${gone} ${error.message}`), true);
  }
}

function followHistory() {
  // A refresh that fails (the emulator restarting) says so and tries again. A hidden tab is refreshed
  // seldom, and at once when shown again.
  clearTimeout(state.poll);
  state.poll = setTimeout(pollHistory, document.visibilityState === "hidden" ? HIDDEN_POLL_MS : POLL_MS);
}

/** A refresh now, tried again while it fails, whoever asks: a Send's or a Refresh click's refresh that
 * failed only said so, and if it had replaced the poll, the history was followed no more. */
function pollHistory() {
  state.poll = null;
  refreshHistory().catch((error) => {
    showPageProblem(error);
    followHistory();
  });
}

document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible" && state.poll !== null) {
    clearTimeout(state.poll);
    pollHistory();
  }
});

/** A request of the history, asked of its own version (the deployment-level call finds the default version's only). */
async function openRequest(id, version) {
  const shown = deploymentPath();
  const detail = await call(`${shown}/versions/${segment(version)}/requests/${segment(id)}`);
  if (deploymentPath() !== shown) return;
  showOpened(detail);
  if (UNFINISHED.includes(detail.status)) followHistory();
}

function showOpened(detail, reveal = true) {
  state.opened = { id: detail.id, version: detail.version, status: detail.status };
  markOpened();
  showOutcome("From the history", detail, {}, true, reveal);
}

function markOpened() {
  for (const row of $("history").tBodies[0].rows) row.classList.toggle("opened", state.opened !== null && row.dataset.id === state.opened.id);
}

$("refresh").addEventListener("click", pollHistory);

loadProjects().catch(showPageProblem);
