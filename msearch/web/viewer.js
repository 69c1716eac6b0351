// The viewer: one result large, with its metadata; videos play from the matching scene,
// the other matching scenes are chips that seek to them.

import { api } from "./api.js";
import { bytes, clock, el, fileName, markedLine, pageOf, sceneRange, when } from "./format.js";

function pagesNote(document) {
  if (!document) return "";
  return document.partial ? `${document.pages} (${document.partial})` : String(document.pages);
}

function enhancementNote(enhancement) {
  if (!enhancement) return "";
  if (enhancement.applied) {
    return `${enhancement.steps.join("; ")} (${enhancement.seconds.toFixed(1)} s)`;
  }
  return `no: ${enhancement.reason}`;
}

export class Viewer {
  constructor(dialog, { onSimilar, onClose }) {
    this.dialog = dialog;
    this.onSimilar = onSimilar;
    this.onClose = onClose;
    this.results = [];
    this.index = -1;
    this.page = null; // the page of a document shown
    this.part = (name) => dialog.querySelector(`#viewer-${name}`);
    this.part("close").addEventListener("click", () => this.close());
    this.part("prev").addEventListener("click", () => this.show(this.index - 1));
    this.part("next").addEventListener("click", () => this.show(this.index + 1));
    this.part("similar").addEventListener("click", () => {
      const hit = this.results[this.index];
      const page = this.page;
      this.close();
      this.onSimilar(hit, page);
    });
    dialog.addEventListener("close", () => this.stopMedia());
    dialog.addEventListener("cancel", (event) => {
      event.preventDefault();
      this.close();
    });
    dialog.addEventListener("keydown", (event) => {
      if (["VIDEO", "AUDIO"].includes(event.target.tagName) || event.target.closest(".scenes")) {
        return;
      }
      if (event.key === "ArrowLeft") this.show(this.index - 1);
      if (event.key === "ArrowRight") this.show(this.index + 1);
    });
    // A click on the backdrop (outside the dialog's box) closes it.
    dialog.addEventListener("click", (event) => {
      if (event.target === dialog) this.close();
    });
  }

  open(results, index) {
    this.results = results;
    if (!this.dialog.open) this.dialog.showModal();
    this.show(index);
  }

  close() {
    this.stopMedia();
    if (this.dialog.open) this.dialog.close();
    this.onClose(this.index);
  }

  stopMedia() {
    const player = this.part("media").querySelector("video, audio");
    if (player) player.pause();
  }

  async show(index) {
    this.page = null;
    if (index < 0 || index >= this.results.length) return;
    this.stopMedia();
    this.index = index;
    const hit = this.results[index];
    this.part("title").textContent = fileName(hit.path);
    this.part("prev").disabled = index === 0;
    this.part("next").disabled = index === this.results.length - 1;
    const media = this.part("media");
    const scenes = this.part("scenes");
    scenes.replaceChildren();
    const content = `/api/v1/files/${encodeURIComponent(hit.file_id)}/content`;
    if (hit.media_type === "video") {
      const video = el("video", { controls: true, playsinline: true, preload: "auto",
                                  "aria-label": `Video ${fileName(hit.path)}` });
      video.muted = true; // browsers only start playback by themselves when muted
      media.replaceChildren(video);
      const start = hit.speech ? hit.speech.start : hit.scene ? hit.scene.start : 0;
      video.dataset.sceneStart = String(start);
      // what is said, as subtitles (an empty track when nothing is)
      video.append(el("track", { kind: "subtitles", label: "Transcript", srclang: "en",
                                 default: true, src: `/api/v1/files/${encodeURIComponent(hit.file_id)}/transcript?format=vtt` }));
      video.addEventListener("loadedmetadata", () => this.seek(video, start), { once: true });
      video.src = content;
      this.renderScenes(video, hit);
      this.renderTranscript(video, hit, index);
    } else if (hit.media_type === "audio") {
      const audio = el("audio", { controls: true, preload: "auto",
                                  "aria-label": `Sound ${fileName(hit.path)}` });
      media.replaceChildren(audio);
      const start = hit.audio ? hit.audio.start : hit.speech ? hit.speech.start : 0;
      audio.addEventListener("loadedmetadata", () => this.seek(audio, start), { once: true });
      audio.src = content;
      this.renderScenes(audio, hit);
      this.renderTranscript(audio, hit, index);
    } else if (hit.media_type === "document") {
      this.showPage(hit, (pageOf(hit) || { number: 1 }).number);
      this.renderPages(hit);
    } else {
      // Formats a browser cannot show (HEIC, TIFF) come as a JPEG rendition instead.
      const image = el("img", { src: content, alt: fileName(hit.path) });
      image.addEventListener("error", () => {
        image.src = `/api/v1/files/${encodeURIComponent(hit.file_id)}/preview`;
      }, { once: true });
      media.replaceChildren(image);
    }
    this.renderMeta(hit, null);
    try {
      const detail = await api.file(hit.file_id);
      if (this.index === index) this.renderMeta(hit, detail);
    } catch (error) {
      if (this.index === index) {
        this.part("meta").append(el("dt", {}, "Error"), el("dd", {}, error.message));
      }
    }
  }

  // A document's page, screen-sized, and a link that opens the PDF itself there.
  showPage(hit, number) {
    this.page = number;
    const id = encodeURIComponent(hit.file_id);
    const image = el("img", { src: `/api/v1/files/${id}/preview?page=${number}`,
                              alt: `${fileName(hit.path)}, page ${number}` });
    const open = el("a", { href: `/api/v1/files/${id}/content#page=${number}`, target: "_blank",
                           rel: "noopener", class: "open-pdf" }, `Open the PDF at page ${number}`);
    this.part("media").replaceChildren(image, open);
  }

  // The matching pages, best first, with their words: each shows its page.
  renderPages(hit) {
    const pages = [hit.page, ...(hit.more_pages || [])].filter(Boolean);
    if (!pages.length) return;
    const lines = pages.map((page) => el("button", {
      type: "button",
      class: `line said${page === hit.page ? " best" : ""}`,
      "aria-label": `Show page ${page.number}`,
      onclick: () => this.showPage(hit, page.number),
    }, el("span", { class: "at" }, `p. ${page.number}`), " ", ...markedLine(page.text || "")));
    this.part("scenes").append(el("span", { class: "muted" }, "Matching pages"), ...lines);
  }

  seek(video, seconds) {
    video.currentTime = seconds;
    video.play().catch(() => {
      // playback refused (no codec, or no autoplay): the controls stay usable
    });
  }

  renderScenes(video, hit) {
    const scenes = [hit.scene, ...(hit.more_scenes || [])].filter(Boolean);
    scenes.sort((a, b) => a.start - b.start);
    const chips = scenes.map((scene) => el("button", {
      type: "button",
      class: `chip${scene === hit.scene ? " best" : ""}`,
      "aria-label": `Play from ${clock(scene.start)} (scene ${scene.index + 1})`,
      onclick: () => this.seek(video, scene.start),
    }, sceneRange(scene)));
    // where the words were heard: the hit's window and the file's other matching ones
    const heard = [hit.audio, ...(hit.more_audio || [])].filter(Boolean);
    heard.sort((a, b) => a.start - b.start);
    const heardChips = heard.map((span) => el("button", {
      type: "button",
      class: `chip heard${span === hit.audio ? " best" : ""}`,
      "aria-label": `Play from ${clock(span.start)} (heard there)`,
      onclick: () => this.seek(video, span.start),
    }, "♪ ", sceneRange(span)));
    // where the words were said, with the line
    const said = [hit.speech, ...(hit.more_speech || [])].filter(Boolean);
    said.sort((a, b) => a.start - b.start);
    const saidLines = said.map((line) => el("button", {
      type: "button",
      class: `line said${line === hit.speech ? " best" : ""}`,
      "aria-label": `Play from ${clock(line.start)} (said there)`,
      onclick: () => this.seek(video, line.start),
    }, el("span", { class: "at" }, clock(line.start)), " ", ...markedLine(line.text)));
    const parts = [];
    if (chips.length) parts.push(el("span", { class: "muted" }, "Matching scenes"), ...chips);
    if (heardChips.length) parts.push(el("span", { class: "muted" }, "Heard"), ...heardChips);
    if (saidLines.length) parts.push(el("span", { class: "muted" }, "Said"), ...saidLines);
    this.part("scenes").replaceChildren(...parts);
  }

  // The whole transcript under the matches: every line plays from where it is said.
  async renderTranscript(player, hit, index) {
    let transcript;
    try {
      transcript = await api.transcript(hit.file_id);
    } catch {
      return; // the matches and the file's facts are shown all the same
    }
    if (this.index !== index || !transcript.segments.length) return;
    const lines = transcript.segments.map((line) => el("button", {
      type: "button",
      class: "line",
      "aria-label": `Play from ${clock(line.start)}`,
      onclick: () => this.seek(player, line.start),
    }, el("span", { class: "at" }, clock(line.start)), " ", line.text));
    this.part("scenes").append(
      el("details", { class: "transcript" }, el("summary", {}, "Transcript"), ...lines));
  }

  renderMeta(hit, detail) {
    const rows = [["Path", hit.path], ["Score", hit.score.toFixed(3)]];
    if (detail) {
      const size = detail.width && detail.height ? `${detail.width} × ${detail.height}` : "";
      const sound = detail.audio;
      const tags = sound && sound.tags ? [sound.tags.title, sound.tags.artist].filter(Boolean) : [];
      rows.push(["Type", detail.mime || detail.media_type], ["Dimensions", size],
                ["Sound", sound ? `${sound.codec}, ${sound.sample_rate} Hz, ${sound.channels} ch` : ""],
                ["Title", tags.join(" — ")],
                ["File size", bytes(detail.size)],
                ["Duration", detail.duration ? clock(detail.duration) : ""],
                ["Pages", pagesNote(detail.document)],
                ["Title", detail.document ? [detail.document.title, detail.document.author].filter(Boolean).join(" — ") : ""],
                ["Taken", when(detail.taken_at)], ["Camera", detail.camera || ""],
                ["Indexed", detail.indexed_at ? when(new Date(detail.indexed_at * 1000).toISOString()) : ""],
                ["Enhanced", enhancementNote(detail.enhancement)]);
    }
    this.part("meta").replaceChildren(...rows.filter(([, value]) => value)
      .flatMap(([name, value]) => [el("dt", {}, name), el("dd", {}, value)]));
  }
}
