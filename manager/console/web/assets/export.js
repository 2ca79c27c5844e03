import * as api from "./api.js";
import { h, button, field, openDialog, toast, errorText } from "./ui.js";

const maxName = 255;
const ext = ".csv";

// filenameProblem mirrors the API's rule so the dialog can say it before
// asking: the name saved, the .csv added when missing included, is at most
// 255 characters. The API checks it again and its reason is shown if it
// refuses.
export function filenameProblem(name) {
  const n = [...name].length;
  const hasExt = name.toLowerCase().endsWith(ext);
  if (hasExt && n > maxName) return `The file name must be at most ${maxName} characters (it has ${n}).`;
  if (!hasExt && n + ext.length > maxName) {
    return `The file name must be at most ${maxName} characters with the ${ext} that is added: at most ${maxName - ext.length} before it (it has ${n}).`;
  }
  if (/[/\\]/.test(name)) return "The file name must not contain / or \\.";
  if (/[\u0000-\u001f\u007f-\u009f]/.test(name)) return "The file name must not contain control characters.";
  return "";
}

// exportDialog asks for a file name and downloads path?query&filename=NAME.
export function exportDialog({ title, path, query, defaultName, buttonLabel = "EXPORT CSV FILE" }) {
  const input = h("input", { type: "text", id: "export-filename", value: defaultName, maxlength: 1024 });
  const f = field("File name", input, `At most ${maxName} characters with the extension; .csv is added when missing.`);
  const msg = h("div", { class: "dialog-message" });
  return openDialog({ title, id: "export-dialog" }, (close) => {
    const go = async () => {
      f.setError();
      const name = input.value.trim();
      const problem = filenameProblem(name);
      if (problem) { f.setError(problem); return; }
      const q = new URLSearchParams(query || {});
      if (name) q.set("filename", name);
      try {
        const saved = await api.download(`${path}?${q}`);
        toast(`Downloaded ${saved}`);
        close(saved);
      } catch (e) {
        const fe = e.fieldErrors ? e.fieldErrors() : {};
        if (fe.filename) f.setError(fe.filename);
        else msg.replaceChildren(h("div", { class: "notice error" }, errorText(e)));
      }
    };
    input.addEventListener("keydown", (e) => { if (e.key === "Enter") go(); });
    return {
      body: [msg, f],
      actions: [button("CANCEL", () => close(), { class: "secondary" }), button(buttonLabel, go, { id: "export-submit" })],
    };
  });
}
