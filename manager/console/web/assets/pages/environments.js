// Environments page (Administration > Environments): the images on the
// ALIVE agents, which agents have each, the pulls under way with their
// progress; PULL IMAGE (an image on chosen agents, or every schedulable
// one) and REMOVE of an image from one agent (refused while a container
// there uses it). Admins act; monitors read.
import * as api from "../api.js";
import { h, clear, button, notice, table, toast, errorText, confirmDialog, openDialog, field, shortId, meter, follow } from "../ui.js";
import { bytes } from "../format.js";

export async function render(main, ctx) {
  const msg = h("div", { id: "environments-message" });
  const holder = h("div", { id: "environments-table" });
  const bar = h("div", { class: "toolbar" },
    ctx.isAdmin ? button("PULL IMAGE", () => pullDialog(msg, acted), { id: "image-pull" }) : null);
  main.append(bar, msg, holder);

  let busy = false;
  let hurry = () => {};
  // acted: after a pull or a removal, the agents report the result with
  // their next heartbeat: shown at once and then followed closely.
  const acted = async () => { await load(); hurry(); };
  const load = async () => {
    let images;
    try {
      images = await api.listAll("/v1/images");
    } catch (e) {
      clear(msg, notice("error", `Cannot list images: ${errorText(e)}`));
      return;
    }
    busy = images.some((im) => (im.pulling || []).length);
    clear(holder, table([
      { title: "Image", cell: (im) => h("div", { class: "stack" }, h("span", { class: "image-name" }, im.name),
        im.digest ? h("span", { class: "hint" }, shortId(im.digest, 19)) : null) },
      { title: "Size", cell: (im) => (im.size ? bytes(im.size) : "") },
      { title: "Agents", cell: (im) => h("div", { class: "stack" }, (im.agents || []).map((id) => h("span", { class: "image-agent", "data-agent": id },
        shortId(id, 14),
        ctx.isAdmin ? button("REMOVE", () => removeImage(im.name, id, msg, acted), { class: "small secondary", "data-action": "remove-image", "data-image": im.name, "data-agent": id }) : null))) },
      { title: "Pulling", cell: (im) => h("div", { class: "meters" }, (im.pulling || []).map((p) => meter(shortId(p.agent, 14),
        p.done_bytes || 0, p.total_bytes || 0, p.total_bytes ? `${bytes(p.done_bytes || 0)} of ${bytes(p.total_bytes)}` : "starting",
        { "data-pull": im.name }))) },
    ], images, { id: "images-list", empty: "No agent reports an image." }));
  };
  await load();
  // Every 2 s while something is pulled (as the agents report it), else 10 s.
  hurry = follow(main, load, { soon: 2000, busy: () => busy });
}

async function removeImage(name, agent, msg, reload) {
  if (!(await confirmDialog("Remove image", `Remove ${name} from agent ${agent}? Sessions that need it there pull it again.`, "REMOVE"))) return;
  try {
    await api.del(`/v1/images/${name.split("/").map(encodeURIComponent).join("/")}?agent=${encodeURIComponent(agent)}`);
    toast(`${name} removed from ${agent}`);
  } catch (e) {
    clear(msg, notice("error", `Cannot remove ${name} from ${agent}: ${errorText(e)}`));
  }
  await reload();
}

async function pullDialog(msg, reload) {
  const agents = await api.listAll("/v1/agents?status=ALIVE").catch(() => []);
  const image = field("Image", h("input", { type: "text", id: "pull-image", autocomplete: "off", placeholder: "registry.example.com:5000/lab/python:3.12" }),
    "The registry object of its host (berth registry) gives the credentials; other hosts are pulled anonymously over HTTPS.");
  const boxes = agents.map((a) => h("label", { class: "check" },
    h("input", { type: "checkbox", value: a.id, "data-pull-agent": a.id }), ` ${a.id} (${a.address})`));
  const on = field("Agents", h("div", { class: "stack", id: "pull-agents" }, boxes), "None ticked: every ALIVE, schedulable agent.");
  const err = h("div", { class: "dialog-message" });
  await openDialog({ title: "Pull image", id: "pull-dialog" }, (close) => ({
    body: [err, image, on],
    actions: [button("CANCEL", () => close(), { class: "secondary" }), button("PULL", async () => {
      image.setError();
      clear(err);
      const name = image.input.value.trim();
      if (!name) { image.setError("Type the image to pull."); return; }
      const chosen = boxes.map((b) => b.querySelector("input")).filter((i) => i.checked).map((i) => i.value);
      try {
        const out = await api.post("/v1/images/pull", { image: name, agents: chosen.length ? chosen : undefined });
        close(true);
        toast(`Pulling ${out.image} on ${out.agents.join(", ")}`);
        if ((out.failed || []).length) clear(msg, notice("error", `Some agents did not take the pull: ${out.failed.join("; ")}`));
      } catch (e) {
        const fe = e.fieldErrors ? e.fieldErrors() : {};
        if (fe.image) image.setError(fe.image);
        else clear(err, notice("error", errorText(e)));
      }
    }, { id: "pull-submit" })],
  }));
  await reload();
}
