// facemark's web page: send a photo to /v1/detect, draw what comes back, offer the JSON and the aligned crops.
"use strict";

const $ = (id) => document.getElementById(id);
const canvas = $("canvas"), ctx = canvas.getContext("2d");
let photo = null;      // the Blob last sent
let result = null;     // its /v1/detect answer

function setStatus(text, isError) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

function query() {
  const s = parseFloat($("min-score").value) || 0;
  return s > 0 ? `?min_score=${s}` : "";
}

async function send(blob, name) {
  photo = new File([blob], name || "photo.png", { type: blob.type || "image/png" });
  result = null;
  $("download-json").disabled = $("download-crops").disabled = true;
  $("count").textContent = ""; $("count").dataset.faces = ""; $("faces").innerHTML = "";
  setStatus("Finding faces...");
  const image = await createImageBitmap(blob).catch(() => null);
  const form = new FormData();
  form.append("image", photo);
  let answer;
  try {
    const r = await fetch("/v1/detect" + query(), { method: "POST", body: form });
    answer = await r.json();
    if (!r.ok) throw new Error(answer.error || r.statusText);
  } catch (e) {
    setStatus(String(e.message || e), true);
    return;
  }
  result = answer;
  if (image) draw(image, answer.faces);
  const n = answer.faces.length;
  $("count").textContent = `${n} face${n === 1 ? "" : "s"}`;
  $("count").dataset.faces = String(n);
  for (const f of answer.faces) {
    const li = document.createElement("li");
    const p = f.pose || {};
    li.textContent = `score ${f.score.toFixed(2)}` + (p.yaw !== undefined ?
      `, yaw ${p.yaw.toFixed(0)}, pitch ${p.pitch.toFixed(0)}, roll ${p.roll.toFixed(0)}` : "");
    $("faces").appendChild(li);
  }
  setStatus(`${answer.width} x ${answer.height} pixels`);
  $("download-json").disabled = false;
  $("download-crops").disabled = n === 0;
}

function draw(image, faces) {
  canvas.width = image.width; canvas.height = image.height;
  ctx.drawImage(image, 0, 0);
  const unit = Math.max(1, Math.round(Math.max(image.width, image.height) / 500));
  for (const f of faces) {
    const [x1, y1, x2, y2] = f.box;
    ctx.lineWidth = 2 * unit; ctx.strokeStyle = "#00c8ff";
    ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
    const r = Math.max(1.5, (x2 - x1) / 90);
    f.landmarks.forEach(([x, y], k) => {   // shaded by visibility where the model gives it: green seen, red covered
      const v = f.visibility ? Math.min(1, Math.max(0, f.visibility[k])) : 1;
      const colour = `rgb(${Math.round(255 * (1 - v))}, ${Math.round(255 * v)}, 80)`;
      ctx.beginPath(); ctx.arc(x, y, r, 0, 2 * Math.PI);
      if (v >= 0.5) { ctx.fillStyle = colour; ctx.fill(); } else { ctx.strokeStyle = colour; ctx.lineWidth = 1; ctx.stroke(); }
    });
    ctx.fillStyle = "#ff3b30";
    for (const [x, y] of f.five) { ctx.beginPath(); ctx.arc(x, y, r + 1, 0, 2 * Math.PI); ctx.fill(); }
    if (f.pose && f.pose.yaw !== undefined) {
      ctx.font = `${12 * unit}px system-ui, sans-serif`; ctx.fillStyle = "#ffd400";
      ctx.fillText(`yaw ${f.pose.yaw.toFixed(0)} pitch ${f.pose.pitch.toFixed(0)} roll ${f.pose.roll.toFixed(0)}`,
                   x1, Math.max(12 * unit, y1 - 4 * unit));
    }
  }
}

function save(blob, name) {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob); a.download = name;
  document.body.appendChild(a); a.click(); a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}

$("file").addEventListener("change", (e) => { const f = e.target.files[0]; if (f) send(f, f.name); });
const drop = $("drop");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault(); drop.classList.remove("over");
  const f = e.dataTransfer.files[0]; if (f) send(f, f.name);
});
$("download-json").addEventListener("click", () => {
  if (result) save(new Blob([JSON.stringify(result, null, 1)], { type: "application/json" }),
                   photo.name.replace(/\.[^.]*$/, "") + ".json");
});
$("download-crops").addEventListener("click", async () => {
  const form = new FormData(); form.append("image", photo);
  const r = await fetch("/v1/align" + query(), { method: "POST", body: form });
  if (!r.ok) { setStatus((await r.json()).error, true); return; }
  save(await r.blob(), photo.name.replace(/\.[^.]*$/, "") + "_aligned.zip");
});

// the webcam, where the browser allows it (a secure origin: localhost, or https)
let stream = null;
$("camera").addEventListener("click", async () => {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    setStatus("This browser gives this page no camera.", true); return;
  }
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: true });
  } catch (e) { setStatus(`No camera: ${e.message || e}`, true); return; }
  $("video").srcObject = stream; $("video").style.display = "block"; $("snap").disabled = false;
});
$("snap").addEventListener("click", () => {
  const v = $("video"), c = document.createElement("canvas");
  c.width = v.videoWidth; c.height = v.videoHeight; c.getContext("2d").drawImage(v, 0, 0);
  c.toBlob((b) => send(b, "webcam.png"), "image/png");
  for (const t of stream.getTracks()) t.stop();
  v.style.display = "none"; $("snap").disabled = true;
});
