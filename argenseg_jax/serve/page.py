"""The page of `argenseg serve`: pick an image (or the bundled scene), type an expression
or a whole question, and see the answer, the overlay, the mask (with a download link)
and the mask decoded after each scale, as a strip and as an animation. It talks to
`POST /api/segment` like any client (overlay=1, previews=1)."""

PAGE = r'''<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>ARGenSeg</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 1.5rem auto; max-width: 62rem;
         padding: 0 1rem; color: #222; }
  h1 { font-size: 1.4rem; margin-bottom: 0.2rem; }
  .note { color: #666; font-size: 0.9rem; margin-top: 0; }
  form { display: flex; flex-wrap: wrap; gap: 0.5rem; align-items: center;
         padding: 0.8rem; background: #f3f4f6; border-radius: 6px; }
  #text { flex: 1; min-width: 16rem; padding: 0.35rem; }
  button { padding: 0.35rem 0.9rem; }
  #status { min-height: 1.4rem; }
  #status.error { color: #b00020; }
  .row { display: flex; flex-wrap: wrap; gap: 1rem; }
  figure { margin: 0; }
  .out { display: none; }
  body.answered .out { display: flex; }
  body.answered p.out, body.answered figure.out { display: block; }
  figure img { width: 224px; height: 224px; object-fit: contain; background: #ddd;
               image-rendering: pixelated; border: 1px solid #ccc; }
  figcaption { font-size: 0.85rem; color: #444; }
  #scales img { width: 96px; height: 96px; }
  #answer { font-family: ui-monospace, monospace; background: #f3f4f6; padding: 0 0.3rem; }
</style>
</head>
<body>
<h1>ARGenSeg: segmentation by generating the mask, coarse to fine</h1>
<p class="note" id="model"></p>
<form id="form">
  <input type="file" id="image" accept="image/*">
  <button type="button" id="scene">Bundled scene</button>
  <select id="mode">
    <option value="expression">expression</option>
    <option value="prompt">whole question</option>
  </select>
  <input type="text" id="text" placeholder="what to segment, e.g. the red circle">
  <button type="submit" id="go">Segment</button>
</form>
<p id="status"></p>
<p class="out">Answer: <span id="answer"></span></p>
<div class="row">
  <figure><img id="input" alt=""><figcaption>image</figcaption></figure>
  <figure class="out"><img id="overlay" alt="overlay"><figcaption>overlay</figcaption></figure>
  <figure class="out"><img id="mask" alt="mask"><figcaption>mask
    (<a id="download" download="mask.png">download PNG</a>)</figcaption></figure>
  <figure class="out"><img id="anim" alt="scales"><figcaption id="animcap">coarse to fine
    </figcaption></figure>
</div>
<p class="out">The mask decoded after each scale (one forward pass of the model per scale):</p>
<div class="row out" id="scales"></div>
<script>
const $ = (id) => document.getElementById(id);
let chosen = null;
let timer = null;
let info = null;

function status(text, error) {
  $('status').textContent = text;
  $('status').className = error ? 'error' : '';
}

function choose(file) {
  chosen = file;
  $('input').src = URL.createObjectURL(file);
}

const png = (b64) => 'data:image/png;base64,' + b64;

fetch('/api/info').then((r) => r.json()).then((j) => {
  info = j;
  $('model').textContent = 'Model: ' + j.model + '. Images up to ' +
    (j.limits.max_pixels / 1e6).toFixed(1) + ' megapixels and ' +
    Math.floor(j.limits.max_bytes / 1048576) + ' MB, text up to ' + j.limits.max_text +
    ' characters.';
  $('text').maxLength = j.limits.max_text;
});

$('image').addEventListener('change', () => {
  if ($('image').files.length) choose($('image').files[0]);
});

$('scene').addEventListener('click', async () => {
  const r = await fetch(info.scene.url);
  choose(new File([await r.blob()], 'scene.png', {type: 'image/png'}));
  $('mode').value = 'expression';
  $('text').value = info.scene.expression;
});

function show(j) {
  $('answer').textContent = JSON.stringify(j.text);
  const frames = j.scales_png.map(png);
  for (const id of ['overlay', 'mask', 'anim']) $(id).removeAttribute('src');
  $('download').removeAttribute('href');
  $('scales').replaceChildren();
  if (timer) clearInterval(timer);
  if (j.mask_png) {
    $('mask').src = png(j.mask_png);
    $('download').href = png(j.mask_png);
    $('overlay').src = png(j.overlay_png);
  }
  frames.forEach((src, k) => {
    const fig = document.createElement('figure');
    const img = document.createElement('img');
    const cap = document.createElement('figcaption');
    img.src = src;
    cap.textContent = 'after scale ' + (k + 1);
    fig.append(img, cap);
    $('scales').append(fig);
  });
  let k = 0;
  const step = () => {
    if (!frames.length) return;
    $('anim').src = frames[k];
    $('animcap').textContent = 'coarse to fine: scale ' + (k + 1) + ' of ' + frames.length;
    k = (k + 1) % frames.length;
  };
  step();
  timer = setInterval(step, 600);
  document.body.classList.add('answered');
}

$('form').addEventListener('submit', async (event) => {
  event.preventDefault();
  if (!chosen) return status('Choose an image file, or the bundled scene.', true);
  const data = new FormData();
  data.append('image', chosen, chosen.name);
  data.append($('mode').value, $('text').value);
  data.append('overlay', '1');
  data.append('previews', '1');
  status('Segmenting...');
  $('go').disabled = true;
  try {
    const r = await fetch('/api/segment', {method: 'POST', body: data});
    const j = await r.json();
    if (!r.ok) {
      document.body.classList.remove('answered');  // no earlier answer beside the error
      return status('Error ' + r.status + ': ' + j.error, true);
    }
    show(j);
    status(j.mask_png ? 'Answered in ' + j.seconds + ' s.'
                      : 'Answered in ' + j.seconds + ' s, without a mask.');
  } catch (err) {
    status('The server did not answer: ' + err, true);
  } finally {
    $('go').disabled = false;
  }
});
</script>
</body>
</html>
'''
