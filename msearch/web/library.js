// The library panel: the model, watched folders with live counts, adding and removing
// folders, and the files that failed with their errors.

import { api } from "./api.js";
import { el } from "./format.js";

const $ = (id) => document.getElementById(id);
const FAST_POLL_MS = 1000;
const SLOW_POLL_MS = 10000;

export class Library {
  constructor({ onFoldersChanged, onBusyChanged }) {
    this.onFoldersChanged = onFoldersChanged;
    this.onBusyChanged = onBusyChanged;
    this.timer = null;
    this.busy = false;
    this.panel = $("library");
    $("library-close").addEventListener("click", () => this.toggle(false));
    this.panel.addEventListener("keydown", (event) => {
      if (event.key === "Escape") this.toggle(false);
    });
    $("folder-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.add();
    });
    $("retry-failed").addEventListener("click", () => this.retry(null));
  }

  get open() {
    return !this.panel.hidden;
  }

  toggle(force) {
    const show = force === undefined ? !this.open : force;
    this.panel.hidden = !show;
    $("library-toggle").setAttribute("aria-expanded", String(show));
    document.body.classList.toggle("library-open", show);
    if (show) {
      $("folder-path").focus();
      this.refresh();
    } else {
      $("library-toggle").focus();
    }
  }

  schedule() {
    clearTimeout(this.timer);
    const delay = this.busy || this.open ? FAST_POLL_MS : SLOW_POLL_MS;
    this.timer = setTimeout(() => this.refresh(), delay);
  }

  async refresh() {
    try {
      const [health, answer] = await Promise.all([api.health(), api.folders()]);
      const folders = answer.folders;
      this.busy = folders.some((f) => f.scanning || f.pending_changes || f.counts.queued);
      this.onFoldersChanged(folders);
      this.onBusyChanged(folders.reduce((n, f) => n + f.counts.queued + f.pending_changes, 0));
      if (this.open) {
        this.renderHealth(health);
        this.renderFolders(folders);
        await Promise.all([this.renderFailed(), this.renderSkipped()]);
      }
    } catch (error) {
      if (this.open) $("health").textContent = error.message;
    } finally {
      this.schedule();
    }
  }

  renderHealth(health) {
    const files = (health.counts && health.counts.files) || {};
    const model = health.model || {};
    if (health.status === "ok") {
      // one engine per kind of content (visual, audio, …), each with its own model
      const engines = (health.engines || []).map(
        (engine) => `${engine.kind}: ${engine.model} (${engine.vectors} vectors)`);
      const switching = (health.switching || []).map(
        (s) => `switching ${s.kind} model to ${s.to}: ${s.remaining} files to go (search uses ${s.from} until then)`);
      $("health").textContent =
        [`${files.indexed || 0} indexed`, ...engines, ...switching].join(" · ");
    } else if (health.status === "starting") {
      $("health").textContent = `Loading the model ${model.id}…`;
    } else {
      $("health").textContent = `The model is not loaded: ${model.error || health.status}`;
    }
  }

  renderFolders(folders) {
    const list = $("folders");
    if (!folders.length) {
      list.replaceChildren(el("li", { class: "muted" }, "No watched folders yet."));
      return;
    }
    list.replaceChildren(...folders.map((folder) => {
      const { indexed, queued, failed, skipped = 0, total } = folder.counts;
      const done = indexed + failed + skipped;
      let activity = folder.watching ? `watching (${folder.watching})` : "not watched";
      if (!folder.present) activity = "folder not found (unmounted?); its files are kept";
      else if (folder.scanning) activity = "scanning…";
      else if (queued || folder.pending_changes) {
        activity = `indexing: ${queued} queued${folder.pending_changes ? `, ${folder.pending_changes} changing` : ""}`;
      }
      return el("li", { class: "folder", dataset: { id: folder.id } },
        el("div", { class: "folder-path", title: folder.path }, folder.path),
        el("progress", { max: Math.max(total, 1), value: done,
                         "aria-label": `${done} of ${total} files processed` }),
        el("div", { class: "folder-counts" },
          el("span", { class: "count-indexed" }, `${indexed} indexed`),
          el("span", { class: "count-queued" }, `${queued} queued`),
          el("span", { class: `count-failed${failed ? " bad" : ""}` }, `${failed} failed`),
          ...(skipped ? [el("span", { class: "count-skipped" }, `${skipped} skipped`)] : [])),
        el("div", { class: "folder-state", role: "status" }, activity),
        el("div", { class: "row" },
          el("button", { type: "button", onclick: () => this.rescan(folder) }, "Rescan"),
          el("button", { type: "button", class: "danger", onclick: () => this.remove(folder) },
             "Remove")));
    }));
  }

  async renderFailed() {
    const answer = await api.files({ status: "failed", limit: 50 });
    $("failed-count").textContent = answer.total ? `(${answer.total})` : "";
    $("retry-failed").hidden = !answer.total;
    const list = $("failed");
    list.replaceChildren(...(answer.files.length
      ? answer.files.map((file) => el("li", {},
        el("div", { class: "folder-path", title: file.path }, file.path),
        el("div", { class: "error" },
           file.error ? `${file.error.code}: ${file.error.message}` : "failed"),
        el("button", { type: "button", class: "retry",
                       onclick: () => this.retry([file.file_id]) }, "Retry")))
      : [el("li", { class: "muted" }, "None.")]));
  }

  async renderSkipped() {
    const answer = await api.files({ status: "skipped", limit: 1 });
    $("skipped-count").textContent = answer.total ? `(${answer.total})` : "";
    const reasons = Object.entries(answer.reasons || {})
      .map(([reason, count]) => `${reason} ×${count}`).join(", ");
    $("skipped").textContent = answer.total
      ? `Not media msearch indexes: ${reasons}.` : "None.";
  }

  async retry(fileIds) {
    await this.attempt(async () => {
      const job = await api.retryFiles(fileIds);
      const count = job.files.length;
      $("retry-state").textContent = count
        ? `Retrying ${count} file${count === 1 ? "" : "s"}…` : "Nothing to retry.";
      this.busy = true;
    });
  }

  async add() {
    await this.attempt(async () => {
      await api.addFolder($("folder-path").value.trim(), $("folder-recursive").checked);
      $("folder-path").value = "";
      this.busy = true;
    });
  }

  async rescan(folder) {
    await this.attempt(() => api.rescanFolder(folder.id));
  }

  async remove(folder) {
    if (!window.confirm(`Stop watching ${folder.path}? Its files leave the index (the files themselves are not touched).`)) {
      return;
    }
    await this.attempt(() => api.removeFolder(folder.id));
  }

  async attempt(action) {
    const error = $("folder-error");
    error.hidden = true;
    try {
      await action();
    } catch (failure) {
      error.textContent = failure.message;
      error.hidden = false;
    }
    this.refresh();
  }
}
