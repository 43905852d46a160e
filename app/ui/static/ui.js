// The GlanceSync status page: fills the matrix and the task lists from the page's JSON
// endpoints, polls the tasks for live progress, and sends the sync / cancel requests.
"use strict";

const app = document.getElementById("app");
const csrf = document.querySelector('meta[name="csrf-token"]').content;
const canSync = app.dataset.canSync === "true";
const pollMs = Math.max(200, parseFloat(app.dataset.poll) * 1000);
let matrix = null;
const MATRIX_PAGE = 1000; // rows drawn at most (the server's limit)
let nameTimer = null;
let serverFiltered = false; // rows were left out by the server: a new name asks again
let syncing = new Set();

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

async function call(method, url) {
  const options = { method, headers: { "X-CSRF-Token": csrf }, credentials: "same-origin" };
  const answer = await fetch(url, options);
  if (answer.status === 401) {
    window.location.href = "/ui/signin";
    throw new Error("signed out");
  }
  const body = await answer.json();
  if (!answer.ok) {
    const error = body.error || {};
    throw new Error(`${answer.status} ${error.message || ""} ${error.description || ""}`.trim());
  }
  return body;
}

function bytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

// -- matrix --------------------------------------------------------------------------
function cellTitle(image, cell) {
  const lines = [
    `${image.name}`,
    `size: ${image.size} bytes (${bytes(image.size)})`,
    `checksum: ${image.checksum || "none"}`,
    `status: ${cell.status}`,
    `a sync would: ${cell.action}`,
  ];
  if (cell.message) lines.push(cell.message);
  return lines.join("\n");
}

function renderCounts() {
  const head = document.querySelector("#matrix thead");
  let row = document.getElementById("counts");
  if (row) row.remove();
  row = el("tr", { id: "counts" }, el("th", {}, "ok / pending / error"));
  for (const region of matrix.regions) {
    const c = region.counts || {};
    const text = region.error ? "unreachable" : `${c.ok || 0} / ${c.pending || 0} / ${c.error || 0}`;
    const th = el("th", { class: "counts", dataset: { region: region.name } }, text);
    if (region.error) th.title = region.error;
    row.append(th);
  }
  head.append(row);
}

function renderMatrix() {
  const body = document.querySelector("#matrix tbody");
  body.replaceChildren();
  for (const image of matrix.images) {
    const row = el("tr", { dataset: { image: image.name } }, el("th", { class: "image" }, image.name));
    for (const region of matrix.regions) {
      const cell = image.cells[region.name];
      const td = cell
        ? el("td", { class: `cell ${cell.class}`, title: cellTitle(image, cell),
                     dataset: { region: region.name, status: cell.status } }, cell.status)
        : el("td", { class: "cell none", title: "not synchronised to this region",
                     dataset: { region: region.name, status: "" } }, "—");
      row.append(td);
    }
    body.append(row);
  }
  renderCounts();
  applyFilters();
}

async function loadMatrix() {
  const state = document.getElementById("matrix-state");
  try {
    // The server filters by name and sends one page: the page stays light with
    // thousands of images (the rest are counted, not drawn).
    const name = document.getElementById("filter-name").value.trim();
    const query = new URLSearchParams({ name, limit: String(MATRIX_PAGE) });
    matrix = await call("GET", `/ui/api/matrix?${query}`);
    serverFiltered = Boolean(name) || matrix.total > matrix.images.length;
    renderMatrix();
    const shown = matrix.total > matrix.images.length
      ? ` (first ${matrix.images.length} of ${matrix.total} images: narrow the name)` : "";
    state.textContent = `statuses read at ${new Date().toLocaleTimeString()}${shown}`;
  } catch (error) {
    state.textContent = `cannot read the statuses: ${error.message}`;
  }
}

function statusMatches(status, wanted) {
  if (!wanted) return true;
  if (wanted === "ok" || wanted === "pending" || wanted === "error") return status.startsWith(wanted);
  return status === wanted;
}

function applyFilters() {
  const wanted = document.getElementById("filter-status").value;
  const target = document.getElementById("filter-target").value;
  const name = document.getElementById("filter-name").value.trim().toLowerCase();
  const shown = new Set();
  for (const th of document.querySelectorAll("#matrix thead tr:first-child th.region")) {
    const visible = !target || th.dataset.target === target;
    if (visible) shown.add(th.dataset.region);
  }
  for (const node of document.querySelectorAll("#matrix [data-region]")) {
    node.hidden = !shown.has(node.dataset.region);
  }
  for (const node of document.querySelectorAll(".region-tasks")) {
    node.hidden = !shown.has(node.dataset.region);
  }
  for (const row of document.querySelectorAll("#matrix tbody tr")) {
    const cells = [...row.querySelectorAll("td")].filter((td) => shown.has(td.dataset.region));
    const byName = !name || row.dataset.image.toLowerCase().includes(name);
    const byStatus = cells.some((td) => td.dataset.status && statusMatches(td.dataset.status, wanted));
    row.hidden = !(byName && (byStatus || !wanted));
  }
}

// -- tasks ---------------------------------------------------------------------------
// A task that has not ended (syncing, or waiting for a worker where the service queues).
function active(task) {
  return task.status !== "synced" && task.status !== "failed";
}

function progressOf(task) {
  const p = task.progress;
  if (!p || !p.bytesTotal) return null;
  const rate = p.images.filter((i) => i.state === "uploading").reduce((s, i) => s + i.rate, 0);
  const percent = Math.floor((100 * p.bytesDone) / p.bytesTotal);
  const text = `${bytes(p.bytesDone)} of ${bytes(p.bytesTotal)} (${percent}%)` +
    (active(task) ? `, ${bytes(rate)}/s` : "");
  return el("div", { class: "progress", dataset: { done: p.bytesDone, total: p.bytesTotal } },
    el("progress", { max: p.bytesTotal, value: p.bytesDone }), " ", el("span", {}, text));
}

// keep_old's rows (action delete_old) name a renamed old version, which has no status
// of its own: they say what became of it.
const OLD_VERSION = {
  "deleted (keep_old)": "old version deleted (keep_old)",
  planned: "old version to delete (keep_old)",
  not_run: "old version kept (keep_old)",
  failed: "old version not deleted (keep_old)",
};

function resultText(image) {
  const error = image.error ? `: ${image.error}` : "";
  if (image.action === "delete_old") {
    return `${image.name}: ${OLD_VERSION[image.result] || image.result}${error}`;
  }
  const before = image.statusBefore ? `${image.statusBefore} → ` : "";
  return `${image.name}: ${before}${image.action}, ${image.result}${error}`;
}

function resultsOf(task) {
  if (!task.images || !task.images.length) return null;
  const list = el("ul", { class: "results" });
  for (const image of task.images) {
    const attrs = image.action === "delete_old" ? { class: "old-version" } : {};
    list.append(el("li", attrs, resultText(image)));
  }
  return list;
}

function taskItem(region, task) {
  const cancel = canSync && active(task) && !task.cancelRequested
    ? el("button", { type: "button", class: "cancel", dataset: { region, task: task.taskId } }, "Cancel")
    : null;
  const note = task.cancelRequested && active(task) ? " (cancelling)" : "";
  return el("li", { class: `task ${task.status}`, dataset: { task: task.taskId, status: task.status } },
    el("span", { class: "task-status" }, task.status + note), " ",
    el("span", { class: "task-meta" }, `${task.created} by ${task.user}`), " ",
    cancel,
    task.message ? el("div", { class: "task-message" }, task.message) : null,
    progressOf(task), resultsOf(task));
}

async function loadTasks() {
  let body;
  try {
    body = await call("GET", "/ui/api/tasks");
  } catch (error) {
    return;
  }
  const nowSyncing = new Set();
  for (const region of body.regions) {
    const box = document.querySelector(`.region-tasks[data-region="${CSS.escape(region.name)}"] .task-list`);
    if (!box) continue;
    box.replaceChildren(...region.tasks.map((task) => taskItem(region.name, task)));
    if (!region.tasks.length) box.append(el("li", { class: "none" }, "no task yet"));
    for (const task of region.tasks) if (active(task)) nowSyncing.add(task.taskId);
  }
  const ended = [...syncing].some((id) => !nowSyncing.has(id));
  syncing = nowSyncing;
  if (ended) loadMatrix();
}

async function syncNow(region) {
  if (!window.confirm(`Sync region ${region} now?`)) return;
  try {
    const task = await call("POST", `/ui/api/regions/${encodeURIComponent(region)}/tasks`);
    syncing.add(task.taskId);
  } catch (error) {
    window.alert(`The sync of ${region} did not start: ${error.message}`);
  }
  loadTasks();
}

async function cancelTask(region, taskId) {
  if (!window.confirm(`Cancel the running sync of ${region}?`)) return;
  try {
    await call("POST", `/ui/api/regions/${encodeURIComponent(region)}/tasks/${taskId}/cancel`);
  } catch (error) {
    window.alert(`The sync of ${region} was not cancelled: ${error.message}`);
  }
  loadTasks();
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("button");
  if (!button) return;
  if (button.classList.contains("sync-now")) syncNow(button.dataset.region);
  if (button.classList.contains("cancel")) cancelTask(button.dataset.region, button.dataset.task);
});
for (const id of ["filter-status", "filter-target", "filter-name"]) {
  document.getElementById(id).addEventListener("input", applyFilters);
}
// A new name asks the server again (after a pause in typing) when rows were left out.
document.getElementById("filter-name").addEventListener("input", () => {
  if (!matrix || !serverFiltered) return;
  window.clearTimeout(nameTimer);
  nameTimer = window.setTimeout(loadMatrix, 300);
});

async function poll() {
  await loadTasks();
  window.setTimeout(poll, pollMs);
}

loadMatrix();
poll();
