// The search page: a query (words or an example image), filters, a grid of results paged
// as you scroll, the viewer and the library panel.

import { api, ApiError, onKeyRequired } from "./api.js";
import { clock, el, fileName, markedLine, pageOf, sceneRange } from "./format.js";
import { Library } from "./library.js";
import { Viewer } from "./viewer.js";

const PAGE = 40;
const $ = (id) => document.getElementById(id);

const state = {
  query: "",
  example: null, // {upload: File, url, label} or {fileId, url, label}
  results: [],
  offset: 0,
  exhausted: true,
  loading: false,
  generation: 0, // a newer search makes older answers stale
  tookMs: 0,
  weaker: 0, // results the model's relevance floor left out of the last page
  showWeaker: false, // asked for: the query's weaker matches are shown too
};

const viewer = new Viewer($("viewer"), {
  onSimilar: (hit, page) => searchByFile(hit, page),
  onClose: (index) => focusCard(index),
});
const library = new Library({
  onFoldersChanged: (folders) => fillFolderFilter(folders),
  onBusyChanged: (queued) => {
    const badge = $("library-badge");
    badge.hidden = !queued;
    badge.textContent = queued ? `${queued} to index` : "";
  },
});

// --- searching ---------------------------------------------------------------------

function filters() {
  const options = { limit: PAGE, offset: state.offset, group_by_file: true };
  const type = $("f-type").value;
  if (type) options.media_types = [type];
  const folder = $("f-folder").value;
  if (folder) options.folder = folder;
  if ($("f-after").value) options.taken_after = `${$("f-after").value}T00:00:00`;
  if ($("f-before").value) options.taken_before = `${$("f-before").value}T23:59:59`;
  if (state.showWeaker) options.min_score = -1;
  return options;
}

function hasQuery() {
  return Boolean(state.query || state.example);
}

async function runSearch({ append = false } = {}) {
  if (!hasQuery()) {
    showIntro();
    return;
  }
  if (!append) {
    state.offset = 0;
    state.results = [];
  }
  const generation = ++state.generation;
  state.loading = true;
  setBusy(true, append);
  try {
    const options = filters();
    let answer;
    if (state.example && state.example.upload) {
      answer = await api.searchByUpload(state.example.upload, options);
    } else if (state.example) {
      const page = state.example.page ? { page: state.example.page } : {};
      answer = await api.searchByFile({ file_id: state.example.fileId, ...page, ...options });
    } else {
      answer = await api.searchText({ query: state.query, ...options });
    }
    if (generation !== state.generation) return;
    state.results.push(...answer.results);
    state.offset += PAGE;
    state.exhausted = answer.results.length < PAGE;
    state.tookMs = answer.took_ms;
    state.weaker = answer.weaker || 0;
    render(append ? answer.results : state.results, append);
  } catch (error) {
    if (generation === state.generation) showError(error);
  } finally {
    if (generation === state.generation) {
      state.loading = false;
      setBusy(false, append);
    }
  }
}

function searchText(text) {
  state.query = text.trim();
  state.showWeaker = false;
  setExample(null);
  rememberQuery();
  runSearch();
}

function searchByUpload(file) {
  if (!file || !file.type.startsWith("image/")) {
    showError(new ApiError(400, "not_an_image", "That is not an image: drop or paste a picture."));
    return;
  }
  state.query = "";
  $("q").value = "";
  setExample({ upload: file, url: URL.createObjectURL(file), label: file.name || "pasted image" });
  rememberQuery();
  runSearch();
}

// More like this file, or (a document's ``page``) like that page.
function searchByFile(hit, page = null) {
  state.query = "";
  $("q").value = "";
  const url = page ? `/api/v1/files/${encodeURIComponent(hit.file_id)}/thumbnail?page=${page}`
    : hit.thumbnail_url;
  const label = page ? `${fileName(hit.path)}, page ${page}` : fileName(hit.path);
  setExample({ fileId: hit.file_id, page, url, label });
  rememberQuery();
  runSearch();
}

function setExample(example) {
  if (state.example && state.example.upload) URL.revokeObjectURL(state.example.url);
  state.example = example;
  $("example").hidden = !example;
  if (example) {
    $("example-img").src = example.url;
    $("example-label").textContent = `Like ${example.label}`;
  }
}

function rememberQuery() {
  const url = new URL(window.location.href);
  url.search = "";
  if (state.query) url.searchParams.set("q", state.query);
  if (state.example && state.example.fileId) url.searchParams.set("like", state.example.fileId);
  history.replaceState(null, "", url);
}

// --- rendering ---------------------------------------------------------------------

// Where a hit's sound is heard: its own window, or (grouped) its file's best one.
function heardAt(hit) {
  return hit.audio || (hit.more_audio && hit.more_audio[0]) || null;
}

// A sound has no picture: a bar is the recording, its mark the window heard.
function soundTile(hit) {
  const heard = heardAt(hit);
  const span = Math.max(heard ? heard.end : 1, (heard && heard.duration) || 0);
  const left = heard ? (100 * heard.start) / span : 0;
  const width = heard ? (100 * (heard.end - heard.start)) / span : 100;
  const mark = el("span", { class: "sound-heard" });
  // through the CSSOM: the page's CSP refuses style attributes
  mark.style.left = `${left}%`;
  mark.style.width = `${width}%`;
  return el("span", { class: "sound-tile", "aria-hidden": "true" },
    el("span", { class: "sound-note" }, "♪"), el("span", { class: "sound-bar" }, mark));
}

// Where a hit's words are said: its own passage, or (grouped) its file's best one.
function saidAt(hit) {
  return hit.speech || (hit.more_speech && hit.more_speech[0]) || null;
}

function card(hit, index) {
  const name = fileName(hit.path);
  const scene = hit.scene;
  const heard = heardAt(hit);
  const said = saidAt(hit);
  const page = pageOf(hit);
  const label = [name, hit.media_type === "video" && scene ? `video, ${sceneRange(scene)}` : null,
                 heard ? `heard at ${sceneRange(heard)}` : null,
                 said ? `said at ${clock(said.start)}` : null,
                 page ? `page ${page.number}` : null,
                 `score ${hit.score.toFixed(3)}`, `found by ${hit.kind}`].filter(Boolean).join(", ");
  let tag = null;
  if (hit.media_type === "video") {
    tag = el("span", { class: "tag" }, "▶ ", scene ? sceneRange(scene) : "video",
             hit.more_scenes && hit.more_scenes.length ? ` +${hit.more_scenes.length}` : "",
             heard ? ` · ♪ ${sceneRange(heard)}` : "");
  } else if (heard) {
    tag = el("span", { class: "tag" }, "♪ ", sceneRange(heard));
  } else if (page) {
    const others = hit.more_pages ? hit.more_pages.length : 0;
    tag = el("span", { class: "tag" }, `p. ${page.number}`, others ? ` +${others}` : "");
  } else if (said) {
    tag = el("span", { class: "tag" }, "“ ", clock(said.start));
  }
  return el("li", {},
    el("button", { type: "button", class: "card", dataset: { index }, "aria-label": label,
                   onclick: () => viewer.open(state.results, index) },
      hit.thumbnail_url
        ? el("img", { src: hit.thumbnail_url, alt: "", loading: "lazy", decoding: "async",
                      class: page ? "page" : null })
        : soundTile(hit),
      tag,
      said ? el("span", { class: "said", title: `said at ${clock(said.start)}` },
                "“", ...markedLine(said.text), "”") : null,
      page && page.text ? el("span", { class: "said", title: `on page ${page.number}` },
                             ...markedLine(page.text)) : null,
      el("span", { class: "card-info" },
        el("span", { class: "name", title: hit.path }, name),
        el("span", { class: "score", title: `${hit.kind} model's score` },
           hit.score.toFixed(3)))));
}

function render(hits, append) {
  const grid = $("grid");
  if (!append) grid.replaceChildren();
  const start = append ? state.results.length - hits.length : 0;
  grid.append(...hits.map((hit, i) => card(hit, start + i)));
  hideMessage();
  const count = state.results.length;
  const what = state.example ? `like ${state.example.label}` : `for “${state.query}”`;
  $("summary").textContent = count
    ? `${count}${state.exhausted ? "" : "+"} result${count === 1 ? "" : "s"} ${what} · ${Math.round(state.tookMs)} ms`
    : "";
  if (!count && state.weaker) {
    showMessage("No close matches", `Nothing here looks much like “${state.query}”.`,
                "info", weakerButton());
  } else if (!count) {
    showMessage("Nothing matched", "Try other words, another example, or fewer filters.");
  }
  $("more").hidden = state.exhausted;
  const hidden = count && state.exhausted && state.weaker;
  $("weaker").hidden = !hidden;
  if (hidden) {
    $("weaker").replaceChildren(
      `${state.weaker} weaker match${state.weaker === 1 ? " is" : "es are"} not shown. `,
      weakerButton());
  }
}

// Weaker matches: what the model scores under its relevance floor, shown when asked.
function weakerButton() {
  return el("button", { type: "button", class: "link",
                        onclick: () => { state.showWeaker = true; runSearch(); } },
            `Show ${state.weaker} weaker match${state.weaker === 1 ? "" : "es"}`);
}

function setBusy(busy, append) {
  $("grid").setAttribute("aria-busy", String(busy));
  document.body.classList.toggle("searching", busy && !append);
  if (busy && !append) $("summary").textContent = "Searching…";
  $("more").disabled = busy;
  $("more").textContent = busy && append ? "Loading…" : "Load more";
}

function showMessage(title, text, kind = "info", action = null) {
  const box = $("message");
  box.className = `message ${kind}`;
  box.replaceChildren(el("strong", {}, title), el("p", {}, text), action);
  box.hidden = false;
}

function hideMessage() {
  $("message").hidden = true;
}

function showError(error) {
  $("grid").replaceChildren();
  $("summary").textContent = "";
  $("more").hidden = true;
  $("weaker").hidden = true;
  const unavailable = error instanceof ApiError && error.status === 503;
  showMessage(unavailable ? "Search is not available right now" : "Something went wrong",
              error.message || String(error), "error");
}

async function showIntro() {
  $("grid").replaceChildren();
  $("summary").textContent = "";
  $("more").hidden = true;
  $("weaker").hidden = true;
  try {
    const health = await api.health();
    const files = (health.counts && health.counts.files) || {};
    const indexed = files.indexed || 0;
    if (health.status === "starting") {
      showMessage("The model is loading…", "Search works in a moment.");
      setTimeout(() => { if (!$("q").value) showIntro(); }, 1000);
    } else if (health.status !== "ok") {
      showMessage("The model is not loaded", (health.model && health.model.error) || "", "error");
    } else if (!indexed) {
      showMessage("Nothing is indexed yet",
                  "Open the Library to watch a folder; its photos, videos, sounds and PDFs are indexed as they arrive.");
    } else {
      showMessage(`${indexed} files to search`,
                  "Describe what you look for, or drop, paste or pick an example image.");
    }
  } catch (error) {
    showError(error);
  }
}

function fillFolderFilter(folders) {
  const select = $("f-folder");
  const current = select.value;
  select.replaceChildren(el("option", { value: "" }, "Anywhere"),
    ...folders.map((f) => el("option", { value: f.path }, f.path)));
  select.value = folders.some((f) => f.path === current) ? current : "";
}

function focusCard(index) {
  const target = document.querySelector(`.card[data-index="${index}"]`);
  if (target) target.focus();
}

// Arrow keys move between cards, row by row as laid out.
function moveFocus(event) {
  const current = event.target.closest(".card");
  if (!current) return;
  const cards = [...document.querySelectorAll(".card")];
  const index = cards.indexOf(current);
  const columns = Math.max(1, cards.filter((c) => c.offsetTop === cards[0].offsetTop).length);
  const step = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: columns, ArrowUp: -columns }[event.key];
  if (step === undefined) return;
  const next = cards[index + step];
  if (next) {
    event.preventDefault();
    next.focus();
  }
}

// --- the API key -------------------------------------------------------------------

function askForKey() {
  const dialog = $("key-dialog");
  return new Promise((resolve) => {
    const form = $("key-form");
    const submit = async (event) => {
      event.preventDefault();
      try {
        await api.openSession($("key-input").value);
        form.removeEventListener("submit", submit);
        $("key-error").hidden = true;
        dialog.close();
        resolve();
      } catch (error) {
        $("key-error").textContent = error.message;
        $("key-error").hidden = false;
      }
    };
    form.addEventListener("submit", submit);
    dialog.addEventListener("cancel", (event) => event.preventDefault());
    if (!dialog.open) dialog.showModal();
    $("key-input").focus();
  });
}

// --- wiring ------------------------------------------------------------------------

function wire() {
  $("search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = $("q").value;
    if (text.trim()) searchText(text);
    else if (state.example) runSearch();
  });
  $("pick-image").addEventListener("click", () => $("image-input").click());
  $("image-input").addEventListener("change", (event) => {
    searchByUpload(event.target.files[0]);
    event.target.value = "";
  });
  $("example-clear").addEventListener("click", () => {
    setExample(null);
    rememberQuery();
    runSearch();
    $("q").focus();
  });
  for (const id of ["f-type", "f-folder", "f-after", "f-before"]) {
    $(id).addEventListener("change", () => hasQuery() && runSearch());
  }
  $("more").addEventListener("click", () => runSearch({ append: true }));
  $("grid").addEventListener("keydown", moveFocus);
  new IntersectionObserver((entries) => {
    if (entries.some((e) => e.isIntersecting) && !state.loading && !state.exhausted
        && state.results.length) {
      runSearch({ append: true });
    }
  }, { rootMargin: "400px" }).observe($("sentinel"));

  // Drag and drop an image anywhere, or paste one.
  const overlay = $("drop-overlay");
  let depth = 0;
  const carriesFiles = (event) => [...(event.dataTransfer?.types || [])].includes("Files");
  document.addEventListener("dragenter", (event) => {
    if (!carriesFiles(event)) return;
    depth += 1;
    overlay.hidden = false;
  });
  document.addEventListener("dragleave", () => {
    depth = Math.max(0, depth - 1);
    if (!depth) overlay.hidden = true;
  });
  document.addEventListener("dragover", (event) => {
    if (carriesFiles(event)) event.preventDefault();
  });
  document.addEventListener("drop", (event) => {
    if (!carriesFiles(event)) return;
    event.preventDefault();
    depth = 0;
    overlay.hidden = true;
    searchByUpload(event.dataTransfer.files[0]);
  });
  document.addEventListener("paste", (event) => {
    const item = [...(event.clipboardData?.items || [])].find((i) => i.type.startsWith("image/"));
    if (item) {
      event.preventDefault();
      searchByUpload(item.getAsFile());
    }
  });
  document.addEventListener("keydown", (event) => {
    const typing = /^(INPUT|TEXTAREA|SELECT)$/.test(document.activeElement?.tagName || "");
    if (event.key === "/" && !typing && !document.querySelector("dialog[open]")) {
      event.preventDefault();
      $("q").focus();
    }
  });
  $("library-toggle").addEventListener("click", () => library.toggle());
}

async function start() {
  onKeyRequired(askForKey);
  wire();
  try {
    const session = await api.session();
    if (!session.authenticated) await askForKey();
  } catch (error) {
    showError(error);
    return;
  }
  library.refresh();
  const params = new URLSearchParams(window.location.search);
  if (params.get("like")) {
    try {
      const file = await api.file(params.get("like"));
      searchByFile({ file_id: file.file_id, path: file.path, thumbnail_url: file.thumbnail_url });
      return;
    } catch {
      // an old link to a file that is gone: fall through to the query or the intro
    }
  }
  if (params.get("q")) {
    $("q").value = params.get("q");
    searchText(params.get("q"));
  } else {
    showIntro();
  }
}

start();
