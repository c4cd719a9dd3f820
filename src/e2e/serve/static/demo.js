// The demo pages: send the form's input to /api/NAME, show the JSON answer.
// Answers: {top: [{label, p}]} as bars, {text} as text, {gif} (a data URL) as an image.
(function () {
  const form = document.getElementById("demo-form");
  if (!form) return;
  const answer = document.getElementById("answer");
  const error = document.getElementById("error");
  const canvas = document.getElementById("canvas");
  let drawn = false;

  if (canvas) {  // a drawing pad: white strokes on black, like MNIST
    const ctx = canvas.getContext("2d");
    const clear = () => { ctx.fillStyle = "#000"; ctx.fillRect(0, 0, canvas.width, canvas.height); drawn = false; };
    clear();
    let down = false;
    const at = (e) => { const r = canvas.getBoundingClientRect(); return [e.clientX - r.left, e.clientY - r.top]; };
    canvas.addEventListener("pointerdown", (e) => { down = true; ctx.beginPath(); ctx.moveTo(...at(e)); });
    canvas.addEventListener("pointermove", (e) => {
      if (!down) return;
      ctx.lineTo(...at(e)); ctx.strokeStyle = "#fff"; ctx.lineWidth = 18; ctx.lineCap = "round";
      ctx.stroke(); drawn = true;
    });
    window.addEventListener("pointerup", () => { down = false; });
    document.getElementById("clear").addEventListener("click", clear);
  }

  function show(result) {
    answer.replaceChildren();
    if (result.top) {
      for (const { label, p } of result.top) {
        const row = document.createElement("div");
        row.className = "bar";
        row.innerHTML = '<span class="label"></span><span class="fill"></span><span class="p"></span>';
        row.querySelector(".label").textContent = label;
        row.querySelector(".fill").style.width = (p * 20) + "em";
        row.querySelector(".p").textContent = (100 * p).toFixed(1) + "%";
        answer.appendChild(row);
      }
    }
    if (result.text !== undefined) {
      const pre = document.createElement("pre");
      pre.className = "text";
      pre.textContent = result.text;
      answer.appendChild(pre);
    }
    if (result.gif) {
      const img = document.createElement("img");
      img.src = result.gif;
      img.alt = "the network driving";
      answer.appendChild(img);
    }
    if (result.note) {
      const p = document.createElement("p");
      p.className = "muted";
      p.textContent = result.note;
      answer.appendChild(p);
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    const data = new FormData(form);
    const file = document.getElementById("file");
    if (canvas && drawn && !(file && file.files.length)) {
      const blob = await new Promise((ok) => canvas.toBlob(ok, "image/png"));
      data.set("file", blob, "drawing.png");
    }
    answer.textContent = "working...";
    try {
      const response = await fetch(form.dataset.api, { method: "POST", body: data });
      const body = await response.json().catch(() => ({ error: response.statusText }));
      if (!response.ok) throw new Error(`${response.status}: ${body.error}`);
      show(body.answer);
    } catch (e) {
      answer.replaceChildren();
      error.textContent = e.message;
      error.hidden = false;
    }
  });
})();
