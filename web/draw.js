// The drawing dialog: a white canvas with pen, colours, sizes, eraser, undo
// and clear, for mouse, touch and stylus alike. Sending hands a PNG to the
// room page, which uploads it to file-srv and posts the message.

import { $, el, errorText } from './app.js';

const COLOURS = [
  ['Black', '#1b1d21'],
  ['Red', '#d7263d'],
  ['Orange', '#f08a24'],
  ['Yellow', '#f4d03f'],
  ['Green', '#2e9e5b'],
  ['Blue', '#2f6fde'],
  ['Purple', '#8e44ad'],
  ['Brown', '#8b5a2b'],
];
const PAPER = '#ffffff';
const UNDO_STEPS = 20;

/** Uploads a PNG to file-srv; answers its file id or throws a readable Error. */
export async function uploadDrawing(filesUrl, png) {
  if (!filesUrl) throw new Error('Drawings cannot be sent right now.');
  let response;
  try {
    response = await fetch(`${filesUrl}/files`, { method: 'POST', body: png, headers: { 'content-type': 'image/png' } });
  } catch {
    throw new Error('Cannot reach the drawing server. Check your connection.');
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok || typeof body.id !== 'string') {
    throw new Error(errorText(body.error?.code || `http_${response.status}`, body.error?.message || response.statusText));
  }
  return body.id;
}

/**
 * Wires the drawing dialog found in the page.
 * @param {object} o
 * @param {HTMLDialogElement} o.dialog
 * @param {(png: Blob) => Promise<void>} o.onSend throws an Error with a readable message on failure
 */
export function setupDrawing({ dialog, onSend }) {
  const canvas = $('canvas', dialog);
  const ctx = canvas.getContext('2d');
  const error = $('.error', dialog);
  const send = $('#draw-send', dialog);
  const size = $('#pen-size', dialog);
  const swatches = $('#swatches', dialog);
  const undoStack = [];
  let dirty = false;
  let stroke = null; // {id, x, y} of the pointer drawing now

  swatches.append(...COLOURS.map(([name, value], i) => {
    const input = el('input', { type: 'radio', name: 'colour', value, 'aria-label': name, checked: i === 0 });
    const label = el('label', { class: 'swatch', title: name }, input, el('span', { 'aria-hidden': 'true' }));
    label.style.setProperty('--swatch', value);
    // Picking a colour means drawing with it.
    input.addEventListener('change', () => { $('input[value="pen"]', dialog).checked = true; });
    return label;
  }));

  function clearPaper() {
    ctx.save();
    ctx.globalCompositeOperation = 'source-over';
    ctx.fillStyle = PAPER;
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.restore();
  }

  function remember() {
    undoStack.push(ctx.getImageData(0, 0, canvas.width, canvas.height));
    if (undoStack.length > UNDO_STEPS) undoStack.shift();
  }

  function reset() {
    clearPaper();
    undoStack.length = 0;
    dirty = false;
    error.textContent = '';
  }

  function tool() {
    return $('input[name="tool"]:checked', dialog).value;
  }

  function colour() {
    return $('input[name="colour"]:checked', dialog).value;
  }

  function point(e) {
    const r = canvas.getBoundingClientRect();
    return { x: ((e.clientX - r.left) * canvas.width) / r.width, y: ((e.clientY - r.top) * canvas.height) / r.height };
  }

  function line(from, to) {
    const eraser = tool() === 'eraser';
    ctx.strokeStyle = eraser ? PAPER : colour();
    ctx.lineWidth = Number(size.value) * (eraser ? 3 : 1);
    ctx.lineCap = 'round';
    ctx.lineJoin = 'round';
    ctx.beginPath();
    ctx.moveTo(from.x, from.y);
    // A zero-length line with round caps draws a dot for a simple tap.
    ctx.lineTo(to.x + (from.x === to.x && from.y === to.y ? 0.01 : 0), to.y);
    ctx.stroke();
    dirty = true;
  }

  canvas.addEventListener('pointerdown', (e) => {
    if (e.pointerType === 'mouse' && e.button !== 0) return;
    e.preventDefault();
    canvas.setPointerCapture(e.pointerId);
    remember();
    const p = point(e);
    stroke = { id: e.pointerId, ...p };
    line(p, p);
  });
  canvas.addEventListener('pointermove', (e) => {
    if (!stroke || e.pointerId !== stroke.id) return;
    const events = typeof e.getCoalescedEvents === 'function' ? e.getCoalescedEvents() : [];
    for (const ev of events.length ? events : [e]) {
      const p = point(ev);
      line(stroke, p);
      stroke.x = p.x;
      stroke.y = p.y;
    }
  });
  const end = (e) => {
    if (stroke && e.pointerId === stroke.id) stroke = null;
  };
  canvas.addEventListener('pointerup', end);
  canvas.addEventListener('pointercancel', end);

  $('#draw-undo', dialog).addEventListener('click', () => {
    const previous = undoStack.pop();
    if (previous) ctx.putImageData(previous, 0, 0);
    if (!undoStack.length) dirty = false;
  });
  $('#draw-clear', dialog).addEventListener('click', () => {
    remember();
    clearPaper();
    dirty = false;
  });
  $('#draw-cancel', dialog).addEventListener('click', () => dialog.close());

  send.addEventListener('click', async () => {
    if (!dirty) {
      error.textContent = 'Draw something first.';
      return;
    }
    error.textContent = '';
    send.disabled = true;
    send.textContent = 'Sending…';
    try {
      const png = await new Promise((resolve, reject) =>
        canvas.toBlob((b) => (b ? resolve(b) : reject(new Error('The drawing could not be saved.'))), 'image/png'));
      await onSend(png);
      reset();
      dialog.close();
    } catch (e) {
      error.textContent = e.message || 'The drawing could not be sent.';
    } finally {
      send.disabled = false;
      send.textContent = 'Send drawing';
    }
  });

  reset();
  return {
    open() {
      error.textContent = '';
      dialog.showModal();
    },
  };
}
