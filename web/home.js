// The home page: open or create a room by name (a taken name offers free
// ones), and the rooms this browser visited lately.

import { $, el, roomApi, errorText, remember, roomNameProblem, roomPath, ago } from './app.js';

const form = $('#room-form');
const nameInput = $('#room-name');
const passwordInput = $('#room-password');
const error = $('#form-error');
const suggestions = $('#suggestions');

function showError(text) {
  error.textContent = text;
  nameInput.setAttribute('aria-invalid', text ? 'true' : 'false');
}

function busy(on) {
  for (const b of form.querySelectorAll('button')) b.disabled = on;
}

/** Goes to the room, carrying the password for its first join in this tab. */
function enter(name, password) {
  if (password) remember.setPassword(name, password);
  location.href = roomPath(name);
}

async function submit(mode, name = nameInput.value) {
  name = name.trim().normalize('NFC');
  suggestions.hidden = true;
  const problem = roomNameProblem(name);
  if (problem) {
    showError(problem);
    nameInput.focus();
    return;
  }
  showError('');
  const password = passwordInput.value;
  busy(true);
  try {
    const { data } = mode === 'create' ? await roomApi.create(name, password) : await roomApi.open(name, password);
    enter(data.name, password);
  } catch (e) {
    busy(false);
    if (e.code === 'room_exists') {
      showError(`A room named “${name}” already exists. Pick a free name, or press “Open room” to join it.`);
      showSuggestions(e.body.suggestions || e.body.error?.suggestions || []);
    } else if (e.status === 429) {
      showError(`${errorText(e.code, e.message)}${e.retryAfter ? ` (in ${e.retryAfter} s)` : ''}`);
    } else {
      showError(errorText(e.code, e.message));
    }
  }
}

function showSuggestions(names) {
  const list = $('#suggestion-list');
  list.replaceChildren(...names.map((n) =>
    el('li', {}, el('button', { type: 'button', class: 'chip', onclick: () => {
      nameInput.value = n;
      submit('create', n);
    } }, n))));
  suggestions.hidden = names.length === 0;
}

form.addEventListener('submit', (e) => {
  e.preventDefault();
  submit('open');
});
$('#create-room').addEventListener('click', () => submit('create'));
nameInput.addEventListener('input', () => {
  if (error.textContent) showError('');
});

function showRecent() {
  const rooms = remember.recentRooms();
  $('#recent').hidden = rooms.length === 0;
  $('#recent-list').replaceChildren(...rooms.map((r) =>
    el('li', {}, el('a', { href: roomPath(r.name) }, r.name), ' ', el('span', { class: 'muted' }, ago(r.at)))));
}
$('#forget-recent').addEventListener('click', () => {
  remember.forgetRecentRooms();
  showRecent();
});

// Coming back with the browser's back button shows a fresh list.
addEventListener('pageshow', () => {
  busy(false);
  showRecent();
});
showRecent();
