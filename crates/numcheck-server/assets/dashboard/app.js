// The numcheck dashboard: sign in with an API key, upload files, follow tasks, read their
// results. Plain ES modules against the same API as curl; no build step.

import { client } from './api.js';
import { donut, bars } from './charts.js';
import {
  h, formatNumber, formatDate, formatBytes, humanize, safeUrl,
} from './dom.js';

const STORAGE_KEY = 'numcheck.apiKey';
const POLL_MS = 2000;
const ACTIVE = new Set(['pending', 'processing']);
const STATUS_LABELS = {
  pending: 'Pending',
  processing: 'Processing',
  exported: 'Done',
  failed: 'Failed',
  cancelled: 'Cancelled',
};
const TASK_TYPES = { active_check: 'Activity check', number_info: 'Number facts' };
const ACCEPTED = new Set(['txt', 'csv', 'tsv', 'xlsx']);
const PREVIEWED = new Set(['csv', 'tsv', 'xlsx']);
const VERDICTS = [
  { key: 'active', label: 'Active', tone: 'active' },
  { key: 'inactive', label: 'Inactive', tone: 'inactive' },
  { key: 'unknown', label: 'Unknown', tone: 'unknown' },
];
const REASONS = {
  invalid_number: 'Invalid number',
  disconnected: 'Disconnected',
  no_evidence: 'No evidence',
  insufficient_evidence: 'Too little evidence',
  recent_activity: 'Recent activity',
  repeated_failures: 'Repeated failures',
  inconclusive: 'Inconclusive',
  temporary_failures: 'Temporary failures',
};
const REASON_TONES = {
  recent_activity: 'active',
  invalid_number: 'inactive',
  disconnected: 'inactive',
  repeated_failures: 'inactive',
};
const REJECTIONS = {
  not_a_number: 'Not a number',
  unknown_country_code: 'Unknown country code',
  national_without_region: 'National number, no region',
  too_short: 'Too short',
  too_long: 'Too long',
  line_too_long: 'Line too long',
  not_utf8: 'Not UTF-8 text',
};
const LINE_TYPES = {
  fixed_line: 'Fixed line',
  fixed_line_or_mobile: 'Fixed line or mobile',
  toll_free: 'Toll free',
  premium_rate: 'Premium rate',
  shared_cost: 'Shared cost',
  voip: 'VoIP',
  uan: 'UAN',
};

const $ = (id) => document.getElementById(id);

const state = {
  key: null,
  api: null,
  /** task_id → {view, row, parts} for the rows of the list. */
  tasks: new Map(),
  cursor: null,
  file: null,
  previewSeq: 0,
  pollTimer: null,
  /** Keep the status message over the next route change. */
  keepStatus: false,
  /** The task shown in the detail view: {id, view, parts, summaryShown}. */
  detail: null,
};

// ---------------------------------------------------------------- storage

function storedKey() {
  try {
    return window.localStorage.getItem(STORAGE_KEY) || window.sessionStorage.getItem(STORAGE_KEY);
  } catch {
    return null;
  }
}

function storeKey(key, remember) {
  forgetKey();
  try {
    (remember ? window.localStorage : window.sessionStorage).setItem(STORAGE_KEY, key);
  } catch {
    // Storage refused (private mode): the session still works until the tab closes.
  }
}

function forgetKey() {
  try {
    window.localStorage.removeItem(STORAGE_KEY);
    window.sessionStorage.removeItem(STORAGE_KEY);
  } catch {
    // Nothing stored.
  }
}

// ---------------------------------------------------------------- helpers

function announce(text) {
  const region = $('status');
  region.textContent = '';
  // A fresh node after a tick makes screen readers repeat an identical message.
  window.setTimeout(() => { region.textContent = text; }, 50);
}

function showError(target, error) {
  if (error && error.status === 401 && state.key) {
    signOut(error.message);
    return;
  }
  target.textContent = error && error.message ? error.message : String(error);
}

function taskName(view) {
  return view.file_name || `Task ${view.task_id}`;
}

function statusLabel(status) {
  return STATUS_LABELS[status] || humanize(status);
}

function statusClass(status) {
  return `badge status-${STATUS_LABELS[status] ? status : 'other'}`;
}

function extension(name) {
  const dot = name.lastIndexOf('.');
  return dot < 0 ? '' : name.slice(dot + 1).toLowerCase();
}

const regionNames = (() => {
  try {
    return new Intl.DisplayNames(['en'], { type: 'region' });
  } catch {
    return null;
  }
})();

function regionLabel(code) {
  if (code === 'none' || code === '') return 'No region';
  if (code === '001') return 'Non-geographic';
  let name = null;
  try {
    name = regionNames ? regionNames.of(code) : null;
  } catch {
    name = null;
  }
  return name && name !== code ? `${name} (${code})` : code;
}

function entries(map) {
  return Object.entries(map && typeof map === 'object' ? map : {})
    .filter(([, v]) => typeof v === 'number')
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
}

function setProgress(bar, text, view, name) {
  const total = Number(view.total) || 0;
  const done = (Number(view.success) || 0) + (Number(view.failure) || 0);
  const max = Math.max(total, 1);
  bar.max = max;
  bar.value = view.status === 'exported' ? max : Math.min(done, max);
  bar.setAttribute('aria-label', `Progress of ${name}`);
  bar.setAttribute('aria-valuetext', `${formatNumber(done)} of ${formatNumber(total)} lines`);
  text.textContent = `${formatNumber(done)} / ${formatNumber(total)}`;
}

// ---------------------------------------------------------------- session

function showOnly(view) {
  $('loading').hidden = true;
  $('signin-view').hidden = view !== 'signin';
  $('app-view').hidden = view !== 'app';
  $('detail-view').hidden = view !== 'detail';
  $('session').hidden = view === 'signin';
}

function showSignIn(message) {
  showOnly('signin');
  $('signin-error').textContent = message || '';
  document.title = 'Sign in · numcheck';
}

async function onSignIn(event) {
  event.preventDefault();
  const input = $('api-key');
  const error = $('signin-error');
  const button = $('signin-submit');
  const key = input.value.trim();
  error.textContent = '';
  input.removeAttribute('aria-invalid');
  if (!key) {
    error.textContent = 'Enter an API key.';
    input.setAttribute('aria-invalid', 'true');
    input.focus();
    return;
  }
  button.disabled = true;
  button.textContent = 'Signing in…';
  try {
    const balance = await client(key).balance();
    storeKey(key, $('remember').checked);
    input.value = '';
    startSession(key, balance);
  } catch (e) {
    error.textContent = e.message;
    input.setAttribute('aria-invalid', 'true');
    input.focus();
  } finally {
    button.disabled = false;
    button.textContent = 'Sign in';
  }
}

function startSession(key, balance) {
  state.key = key;
  state.api = client(key);
  renderBalance(balance);
  route(true);
  loadTasks(true);
}

function signOut(message) {
  forgetKey();
  window.clearTimeout(state.pollTimer);
  Object.assign(state, {
    key: null, api: null, cursor: null, pollTimer: null, detail: null,
  });
  state.tasks.clear();
  $('tasks-body').replaceChildren();
  $('ledger-body').replaceChildren();
  $('detail-summary').replaceChildren();
  $('detail-rows').replaceChildren();
  $('callback-secret').textContent = '';
  $('callback-secret').hidden = true;
  clearFile();
  for (const id of ['tasks-error', 'upload-error', 'account-error', 'detail-error', 'status', 'secret-error']) {
    $(id).textContent = '';
  }
  if (window.location.hash) window.history.replaceState(null, '', window.location.pathname);
  showSignIn(message || '');
  if (!message) announce('Signed out.');
  $('api-key').focus();
}

// ---------------------------------------------------------------- routing

function route(initial = false) {
  if (!state.key) return;
  // Messages belong to the view they were said in, except one that leads here (a deletion).
  if (state.keepStatus) state.keepStatus = false;
  else $('status').textContent = '';
  const match = /^#\/tasks\/([A-Za-z0-9_-]{1,64})$/.exec(window.location.hash);
  if (match) {
    showDetail(match[1], !initial);
  } else {
    const from = state.detail && state.detail.id;
    state.detail = null;
    showOnly('app');
    document.title = 'Dashboard · numcheck';
    if (!initial) {
      const entry = from && state.tasks.get(from);
      (entry ? entry.parts.link : $('dashboard-title')).focus();
    }
  }
}

// ---------------------------------------------------------------- balance

function statList(target, items) {
  target.replaceChildren(...items.map(([label, value]) => h('div', { class: 'stat' },
    h('dt', {}, label),
    h('dd', {}, value))));
}

function renderBalance(b) {
  const unlimited = Boolean(b.unlimited);
  const who = b.name || b.user_id;
  $('user-name').textContent = who ? `Signed in as ${who}` : '';
  $('balance-chip').textContent = unlimited
    ? 'Unlimited credits'
    : `${formatNumber(b.available)} credits available`;
  statList($('balance-stats'), [
    ['Balance', unlimited ? 'Unlimited' : formatNumber(b.balance)],
    ['Held by running tasks', formatNumber(b.held)],
    ['Available', unlimited ? 'Unlimited' : formatNumber(b.available)],
  ]);
  const usage = b.usage || {};
  statList($('usage-stats'), [
    ['Tasks', formatNumber(usage.tasks)],
    ['Numbers checked', formatNumber(usage.numbers_checked)],
    ['Credits charged', formatNumber(usage.credits_charged)],
  ]);
  const ledger = Array.isArray(b.ledger) ? b.ledger.slice(0, 10) : [];
  $('ledger-body').replaceChildren(...ledger.map((e) => {
    const amount = Number(e.amount) || 0;
    const what = h('td', {}, h('span', { class: 'ledger-kind' }, humanize(e.kind)));
    if (e.task_id) {
      what.append(' ', h('a', { href: `#/tasks/${encodeURIComponent(e.task_id)}`, class: 'mono small' }, e.task_id));
    }
    if (e.note) what.append(h('span', { class: 'muted small block' }, e.note));
    return h('tr', {},
      h('td', { class: 'nowrap' }, h('time', { datetime: e.at }, formatDate(e.at))),
      what,
      h('td', { class: `num ${amount < 0 ? 'negative' : 'positive'}` },
        `${amount > 0 ? '+' : ''}${formatNumber(amount)}`));
  }));
  $('ledger-empty').hidden = ledger.length > 0;
}

/** The callback-signing secret: shown on request, rotated after a confirmation. */
async function showSecret(rotate) {
  if (!state.api) return;
  const error = $('secret-error');
  error.textContent = '';
  if (rotate && !(await confirmDialog('Rotate the callback secret? Receivers that check signatures with the old one will refuse new callbacks until they have the new one.'))) {
    return;
  }
  try {
    const answer = rotate ? await state.api.rotateCallbackSecret() : await state.api.callbackSecret();
    const field = $('callback-secret');
    field.textContent = String(answer.secret || '');
    field.hidden = false;
    announce(rotate ? 'The callback secret was rotated.' : 'The callback secret is shown.');
  } catch (e) {
    showError(error, e);
  }
}

async function refreshBalance() {
  if (!state.api) return;
  try {
    renderBalance(await state.api.balance());
    $('account-error').textContent = '';
  } catch (e) {
    showError($('account-error'), e);
  }
}

// ---------------------------------------------------------------- task list

function buildRow(id) {
  const parts = {
    link: h('a', { class: 'task-link', href: `#/tasks/${encodeURIComponent(id)}` }),
    id: h('span', { class: 'mono small muted block' }, id),
    kind: h('span', { class: 'small muted block task-type' }),
    verdicts: h('span', { class: 'small block verdict-counts' }),
    message: h('span', { class: 'row-message small block' }),
    time: h('time'),
    badge: h('span'),
    bar: h('progress', { max: 1, value: 0 }),
    barText: h('span', { class: 'progress-text small' }),
    download: h('a', { class: 'button small', hidden: true }, 'Download'),
    cancel: h('button', { type: 'button', class: 'button small', hidden: true }, 'Cancel'),
    remove: h('button', { type: 'button', class: 'button small danger-ghost' }, 'Delete'),
  };
  parts.cancel.addEventListener('click', () => cancelTask(id, parts.cancel, $('tasks-error')));
  parts.remove.addEventListener('click', () => deleteTask(id, $('tasks-error')));
  const row = h('tr', { 'data-task-id': id },
    h('td', { 'data-label': 'File', class: 'cell-file' }, h('div', {}, parts.link, parts.kind, parts.id, parts.message)),
    h('td', { 'data-label': 'Created', class: 'nowrap' }, h('div', {}, parts.time)),
    h('td', { 'data-label': 'Status' }, h('div', {}, parts.badge, parts.verdicts)),
    h('td', { 'data-label': 'Progress', class: 'cell-progress' }, h('div', {}, parts.bar, parts.barText)),
    h('td', { class: 'cell-actions' },
      h('div', { class: 'actions' }, parts.download, parts.cancel, parts.remove)));
  return { row, parts, view: null };
}

/** Fills the link, cancel and delete controls shared by a row and the detail header. */
function fillActions(parts, view, name) {
  const url = view.status === 'exported' ? safeUrl(view.result_url) : null;
  parts.download.hidden = !url;
  if (url) {
    parts.download.href = url;
    parts.download.setAttribute('download', `${view.task_id}.zip`);
    parts.download.setAttribute('aria-label', `Download results of ${name}`);
  } else {
    parts.download.removeAttribute('href');
  }
  parts.cancel.hidden = !ACTIVE.has(view.status);
  parts.cancel.setAttribute('aria-label', `Cancel ${name}`);
  parts.remove.setAttribute('aria-label', `Delete ${name}`);
}

function fillRow(entry, view) {
  const { parts } = entry;
  const name = taskName(view);
  entry.view = view;
  parts.link.textContent = name;
  parts.time.setAttribute('datetime', view.created_at);
  parts.time.textContent = formatDate(view.created_at);
  parts.badge.className = statusClass(view.status);
  parts.badge.textContent = statusLabel(view.status);
  parts.message.textContent = view.status === 'failed' && view.message ? view.message : '';
  parts.kind.textContent = TASK_TYPES[view.task_type] || humanize(view.task_type || '');
  setProgress(parts.bar, parts.barText, view, name);
  fillActions(parts, view, name);
  if (view.status === 'exported') showVerdictCounts(entry);
}

/**
 * An exported row's verdict counts ("3 active · 1 inactive · 2 unknown"), read once from the
 * task's summary; a task with no number at all says so.
 */
async function showVerdictCounts(entry) {
  const id = entry.view.task_id;
  if (entry.countsFor === id || !state.api) return;
  entry.countsFor = id;
  try {
    const detail = await state.api.task(id);
    const byStatus = (detail.summary && detail.summary.by_status) || {};
    const parts = VERDICTS
      .filter((v) => Number(byStatus[v.key]) > 0)
      .map((v) => `${formatNumber(byStatus[v.key])} ${v.label.toLowerCase()}`);
    entry.parts.verdicts.textContent = parts.length ? parts.join(' · ') : 'no numbers';
  } catch (e) {
    entry.countsFor = null;
  }
}

function upsertRow(view, where) {
  let entry = state.tasks.get(view.task_id);
  if (!entry) {
    if (!where) return;
    entry = buildRow(view.task_id);
    state.tasks.set(view.task_id, entry);
    $('tasks-body')[where](entry.row);
  }
  fillRow(entry, view);
}

function removeRow(id) {
  const entry = state.tasks.get(id);
  if (entry) {
    entry.row.remove();
    state.tasks.delete(id);
  }
  $('tasks-empty').hidden = state.tasks.size > 0;
}

async function loadTasks(reset) {
  if (!state.api) return;
  const error = $('tasks-error');
  const more = $('load-more');
  more.disabled = true;
  try {
    const page = await state.api.tasks(reset ? null : state.cursor);
    if (reset) {
      state.tasks.clear();
      $('tasks-body').replaceChildren();
    }
    for (const view of Array.isArray(page.tasks) ? page.tasks : []) upsertRow(view, 'append');
    state.cursor = page.next_cursor || null;
    more.hidden = !state.cursor;
    $('tasks-empty').hidden = state.tasks.size > 0;
    error.textContent = '';
    schedulePoll();
  } catch (e) {
    showError(error, e);
  } finally {
    more.disabled = false;
  }
}

/** A fresh view of one task: its row and, when open, the detail view. */
function applyView(view) {
  upsertRow(view, null);
  if (state.detail && state.detail.id === view.task_id) renderDetail(view);
}

function anyActive() {
  for (const entry of state.tasks.values()) {
    if (ACTIVE.has(entry.view.status)) return true;
  }
  return Boolean(state.detail && state.detail.view && ACTIVE.has(state.detail.view.status));
}

function schedulePoll() {
  if (state.pollTimer || !state.api || !anyActive()) return;
  state.pollTimer = window.setTimeout(poll, POLL_MS);
}

async function poll() {
  state.pollTimer = null;
  const api = state.api;
  if (!api) return;
  const ids = new Set();
  for (const [id, entry] of state.tasks) if (ACTIVE.has(entry.view.status)) ids.add(id);
  if (state.detail && state.detail.view && ACTIVE.has(state.detail.view.status)) ids.add(state.detail.id);
  let ended = false;
  await Promise.all([...ids].map(async (id) => {
    try {
      const view = await api.task(id);
      if (state.api !== api) return;
      applyView(view);
      if (!ACTIVE.has(view.status)) ended = true;
    } catch (e) {
      if (state.api !== api) return;
      if (e.status === 401) signOut(e.message);
      else if (e.status === 404) removeRow(id);
      // Anything else (a restart, a dropped connection): the next round tries again.
    }
  }));
  if (state.api !== api) return;
  if (ended) refreshBalance();
  schedulePoll();
}

async function cancelTask(id, button, errorTarget) {
  errorTarget.textContent = '';
  button.disabled = true;
  try {
    const view = await state.api.cancel(id);
    applyView(view);
    announce(`${taskName(view)} cancelled.`);
    refreshBalance();
  } catch (e) {
    showError(errorTarget, e);
    if (e.code === 'task_finished' && state.api) {
      state.api.task(id).then(applyView, () => {});
    }
  } finally {
    button.disabled = false;
  }
}

function confirmDialog(text) {
  const dialog = $('confirm-dialog');
  $('confirm-text').textContent = text;
  dialog.returnValue = '';
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'confirm'), { once: true });
    dialog.showModal();
  });
}

async function deleteTask(id, errorTarget) {
  errorTarget.textContent = '';
  const known = state.tasks.get(id)?.view || state.detail?.view;
  const name = known ? taskName(known) : `Task ${id}`;
  const opener = document.activeElement;
  const running = known && ACTIVE.has(known.status);
  const sure = await confirmDialog(running
    ? `“${name}” is still running: it will be stopped and deleted. This cannot be undone.`
    : `“${name}” and its result file will be deleted. This cannot be undone.`);
  if (!sure) {
    if (opener && opener.isConnected) opener.focus();
    return;
  }
  try {
    await state.api.remove(id);
    removeRow(id);
    announce(`${name} deleted.`);
    refreshBalance();
    if (state.detail && state.detail.id === id) {
      state.keepStatus = true;
      window.location.hash = '#/';
    } else {
      $('tasks-title').focus();
    }
  } catch (e) {
    showError(errorTarget, e);
    if (opener && opener.isConnected) opener.focus();
  }
}

// ---------------------------------------------------------------- upload

function clearFile() {
  state.file = null;
  state.previewSeq += 1;
  $('file').value = '';
  $('file-info').hidden = true;
  $('column-field').hidden = true;
  $('phone-column').replaceChildren();
  $('sheet-field').hidden = true;
  $('sheet').replaceChildren();
  $('preview-status').textContent = '';
}

function setFile(file) {
  const error = $('upload-error');
  error.textContent = '';
  const ext = extension(file.name);
  if (ext === 'xls') {
    error.textContent = `“${file.name}” is an old Excel workbook (.xls), which numcheck does not read: save it as .xlsx or .csv and upload that.`;
    return;
  }
  if (!ACCEPTED.has(ext)) {
    error.textContent = `“${file.name}” is not a .txt, .csv, .tsv or .xlsx file.`;
    return;
  }
  clearFile();
  state.file = file;
  $('file-name').textContent = file.name;
  $('file-meta').textContent = formatBytes(file.size);
  $('file-info').hidden = false;
  if (PREVIEWED.has(ext)) loadPreview(file);
}

async function loadPreview(file, sheet) {
  const seq = ++state.previewSeq;
  const status = $('preview-status');
  status.textContent = 'Reading the file’s columns…';
  try {
    const preview = await state.api.preview(file, sheet);
    if (seq !== state.previewSeq) return;
    renderColumns(preview);
  } catch (e) {
    if (seq !== state.previewSeq) return;
    status.textContent = '';
    showError($('upload-error'), e);
  }
}

function renderColumns(preview) {
  const columns = Array.isArray(preview.columns) ? preview.columns : [];
  const status = $('preview-status');
  const sheets = (Array.isArray(preview.sheets) ? preview.sheets : [])
    .filter((name) => typeof name === 'string');
  const facts = [];
  if (columns.length) facts.push(`${columns.length} column${columns.length === 1 ? '' : 's'}`);
  if (preview.has_header) facts.push('the first row is a header');
  status.textContent = facts.length ? `Found ${facts.join(', ')}.` : '';
  renderSheets(sheets);
  if (columns.length <= 1) {
    $('column-field').hidden = true;
    return;
  }
  const select = $('phone-column');
  const detected = columns.some((c) => c.index === preview.phone_column);
  const options = columns.map((c) => {
    const samples = (Array.isArray(c.samples) ? c.samples : []).slice(0, 3).join(', ');
    const label = `${c.name || `Column ${c.index}`}${samples ? ` — ${samples}` : ''}`;
    return h('option', { value: c.index, selected: c.index === preview.phone_column }, label);
  });
  if (!detected) {
    options.unshift(h('option', { value: '', selected: true, disabled: true }, 'Choose a column…'));
  }
  select.replaceChildren(...options);
  $('column-hint').textContent = !detected
    ? 'No column looks like phone numbers: choose the one that holds them.'
    : preview.picked_by === 'header'
      ? 'Picked by its header; change it if another column holds the numbers.'
      : 'Picked from the values; change it if another column holds the numbers.';
  $('column-field').hidden = false;
}

/** A workbook with several sheets: choose one; its columns are read again. */
function renderSheets(sheets) {
  const select = $('sheet');
  if (sheets.length <= 1) {
    $('sheet-field').hidden = true;
    return;
  }
  // Keep the current choice when this preview answers for it.
  const current = select.value || null;
  if (!current || !sheets.includes(current)) {
    select.replaceChildren(...sheets.map((name) => h('option', { value: name }, name)));
  }
  $('sheet-field').hidden = false;
}

async function onUpload(event) {
  event.preventDefault();
  const error = $('upload-error');
  error.textContent = '';
  if (!state.file) {
    error.textContent = 'Choose a file to check first.';
    $('file').focus();
    return;
  }
  const region = $('default-region').value.trim().toUpperCase();
  if (region && !/^[A-Z]{2}$/.test(region)) {
    error.textContent = 'The default region is a two-letter country code, such as GB or US.';
    $('default-region').focus();
    return;
  }
  const callback = $('callback-url').value.trim();
  if (callback && !safeUrl(callback)) {
    error.textContent = 'The callback URL must start with https:// or http://.';
    $('callback-url').focus();
    return;
  }
  const floor = $('min-confidence').value.trim();
  if (floor && !(Number(floor) >= 0 && Number(floor) <= 1)) {
    error.textContent = 'The confidence floor is a probability from 0 to 1, such as 0.97.';
    $('min-confidence').focus();
    return;
  }
  const columnPicked = !$('column-field').hidden;
  if (columnPicked && !$('phone-column').value) {
    error.textContent = 'Choose the column that holds the phone numbers.';
    $('phone-column').focus();
    return;
  }
  const form = new FormData();
  form.append('task_type', $('task-type').value);
  if (region) form.append('default_region', region);
  form.append('columns', $('opt-full').checked ? 'full' : 'basic');
  form.append('formats', $('opt-xlsx').checked ? 'csv,xlsx' : 'csv');
  if (callback) form.append('callback_url', callback);
  if (floor) form.append('min_confidence', floor);
  if (columnPicked) form.append('phone_column', $('phone-column').value);
  if (!$('sheet-field').hidden) form.append('sheet', $('sheet').value);
  form.append('file', state.file, state.file.name);

  const submit = $('upload-submit');
  const progress = $('upload-progress');
  const bar = $('upload-bar');
  const name = state.file.name;
  submit.disabled = true;
  bar.value = 0;
  progress.hidden = false;
  try {
    const created = await state.api.create(form, (share) => { bar.value = Math.round(share * 100); });
    clearFile();
    announce(`Check started for ${name}: ${formatNumber(created.total)} lines.`);
    await loadTasks(true);
    refreshBalance();
  } catch (e) {
    showError(error, e);
  } finally {
    submit.disabled = false;
    progress.hidden = true;
  }
}

function wireDropzone() {
  const zone = $('dropzone');
  let depth = 0;
  zone.addEventListener('dragenter', (e) => {
    e.preventDefault();
    depth += 1;
    zone.classList.add('dragging');
  });
  zone.addEventListener('dragover', (e) => {
    e.preventDefault();
    e.dataTransfer.dropEffect = 'copy';
  });
  zone.addEventListener('dragleave', () => {
    depth = Math.max(depth - 1, 0);
    if (!depth) zone.classList.remove('dragging');
  });
  zone.addEventListener('drop', (e) => {
    e.preventDefault();
    depth = 0;
    zone.classList.remove('dragging');
    const file = e.dataTransfer.files && e.dataTransfer.files[0];
    if (file) setFile(file);
  });
  // A file dropped beside the zone must not replace the page with the file.
  window.addEventListener('dragover', (e) => e.preventDefault());
  window.addEventListener('drop', (e) => e.preventDefault());
  $('file').addEventListener('change', (e) => {
    const file = e.target.files && e.target.files[0];
    if (file) setFile(file);
  });
  $('sheet').addEventListener('change', () => {
    if (state.file) loadPreview(state.file, $('sheet').value);
  });
  $('file-clear').addEventListener('click', () => {
    clearFile();
    $('file').focus();
  });
}

// ---------------------------------------------------------------- detail

function detailParts() {
  const parts = {
    download: h('a', { class: 'button small primary', hidden: true }, 'Download results'),
    cancel: h('button', { type: 'button', class: 'button small', hidden: true }, 'Cancel'),
    remove: h('button', { type: 'button', class: 'button small danger-ghost' }, 'Delete'),
    bar: h('progress', { max: 1, value: 0, id: 'detail-bar' }),
    barText: h('span', { class: 'progress-text' }),
  };
  parts.cancel.addEventListener('click', () => cancelTask(state.detail.id, parts.cancel, $('detail-error')));
  parts.remove.addEventListener('click', () => deleteTask(state.detail.id, $('detail-error')));
  $('detail-actions').replaceChildren(parts.download, parts.cancel, parts.remove);
  $('detail-progress').replaceChildren(
    h('label', { for: 'detail-bar', class: 'visually-hidden' }, 'Progress'),
    parts.bar,
    parts.barText,
  );
  return parts;
}

async function showDetail(id, moveFocus) {
  showOnly('detail');
  if (!state.detail || state.detail.id !== id) {
    state.detail = {
      id, view: null, parts: detailParts(), summaryShown: false,
    };
    $('detail-title').textContent = 'Loading task…';
    $('detail-id').textContent = id;
    $('detail-meta').replaceChildren();
    $('detail-summary').replaceChildren();
    $('detail-error').textContent = '';
  }
  try {
    const view = await state.api.task(id);
    if (!state.detail || state.detail.id !== id) return;
    renderDetail(view);
  } catch (e) {
    if (!state.detail || state.detail.id !== id) return;
    if (e.status === 404) $('detail-title').textContent = 'Task not found';
    showError($('detail-error'), e);
  }
  if (moveFocus && state.detail && state.detail.id === id) $('detail-title').focus();
}

function renderDetail(view) {
  const detail = state.detail;
  const name = taskName(view);
  detail.view = view;
  document.title = `${name} · numcheck`;
  $('detail-title').textContent = name;
  $('detail-id').textContent = `Task ${view.task_id}`;
  const badge = h('span', { class: statusClass(view.status), id: 'detail-status' }, statusLabel(view.status));
  const meta = [
    ['Status', badge],
    ['Check', TASK_TYPES[view.task_type] || humanize(view.task_type)],
    ['Lines', formatNumber(view.total)],
    ['Checked', formatNumber(view.success)],
    ['Rejected', formatNumber(view.failure)],
    ['Created', h('time', { datetime: view.created_at }, formatDate(view.created_at))],
    ['Updated', h('time', { datetime: view.updated_at }, formatDate(view.updated_at))],
  ];
  if (view.status === 'failed' && view.message) meta.push(['Failure', view.message]);
  const cb = view.callback && typeof view.callback === 'object' ? view.callback : null;
  if (cb) {
    const tries = Number(cb.attempts) > 0 ? `, ${formatNumber(cb.attempts)} attempt${cb.attempts === 1 ? '' : 's'}` : '';
    meta.push(['Completion callback', h('span', {},
      `${humanize(cb.state)}${tries}`,
      h('span', { class: 'muted small block mono callback-url' }, cb.url || ''),
      cb.last_error ? h('span', { class: 'row-message small block' }, cb.last_error) : null)]);
  }
  statList($('detail-meta'), meta);
  setProgress(detail.parts.bar, detail.parts.barText, view, name);
  fillActions(detail.parts, view, name);
  detail.parts.download.textContent = 'Download results';

  renderWarnings(Array.isArray(view.warnings) ? view.warnings : []);
  const summary = view.summary && typeof view.summary === 'object' ? view.summary : null;
  if (summary && !detail.summaryShown) {
    detail.summaryShown = true;
    $('detail-summary').replaceChildren(renderSummary(summary));
    loadRows(view.task_id);
  } else if (!summary) {
    detail.summaryShown = false;
    $('detail-rows').replaceChildren();
    const waiting = ACTIVE.has(view.status)
      ? 'The charts appear here when the check is done.'
      : 'This task has no results.';
    $('detail-summary').replaceChildren(h('div', { class: 'card' }, h('p', { class: 'muted' }, waiting)));
  }
  schedulePoll();
}

/** The result's first rows, as a table, so one number can be looked at without the zip. */
async function loadRows(id) {
  const target = $('detail-rows');
  try {
    const got = await state.api.rows(id, 50);
    if (!state.detail || state.detail.id !== id) return;
    const columns = Array.isArray(got.columns) ? got.columns : [];
    const rows = Array.isArray(got.rows) ? got.rows : [];
    if (!columns.length || !rows.length) {
      target.replaceChildren();
      return;
    }
    target.replaceChildren(h('section', { class: 'card', 'aria-labelledby': 'rows-title' },
      h('h2', { id: 'rows-title' }, got.more ? `The first ${formatNumber(rows.length)} rows` : 'Rows'),
      h('div', { class: 'table-wrap' },
        h('table', { class: 'table result-rows', id: 'result-rows' },
          h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col' }, c)))),
          h('tbody', {}, rows.map((r) => h('tr', {}, r.map((cell) => h('td', {}, cell))))))),
      got.more ? h('p', { class: 'muted small' }, 'Download the results for every row.') : null));
  } catch (e) {
    target.replaceChildren(h('p', { class: 'error' }, e.message || 'The rows could not be read.'));
  }
}

/** What most likely went wrong (no region for national numbers, no evidence, …), above the charts. */
function renderWarnings(warnings) {
  const box = $('detail-warnings');
  const items = warnings
    .filter((w) => w && typeof w.message === 'string')
    .map((w) => h('li', { 'data-code': String(w.code || '') }, w.message));
  box.hidden = items.length === 0;
  box.replaceChildren(
    h('h2', { class: 'small' }, items.length === 1 ? 'Worth knowing' : `Worth knowing (${items.length})`),
    h('ul', {}, items),
  );
}

function renderSummary(s) {
  const n = (v) => (typeof v === 'number' ? v : 0);
  const byStatus = s.by_status || {};
  const verdictRows = VERDICTS.map((v) => ({ ...v, value: n(byStatus[v.key]) }));
  for (const [key, value] of entries(byStatus)) {
    if (!VERDICTS.some((v) => v.key === key)) {
      verdictRows.push({
        key, label: humanize(key), tone: 'accent', value,
      });
    }
  }
  const checked = verdictRows.reduce((sum, r) => sum + r.value, 0);
  const reasons = entries(s.by_reason).map(([key, value]) => ({
    key, value, label: REASONS[key] || humanize(key), tone: REASON_TONES[key] || 'unknown',
  }));
  const regionEntries = entries(s.by_region);
  const regions = regionEntries.slice(0, 10).map(([key, value]) => ({
    key, value, label: regionLabel(key),
  }));
  const lineTypes = entries(s.by_line_type).map(([key, value]) => ({
    key, value, label: LINE_TYPES[key] || humanize(key),
  }));
  const rejected = entries(s.failures_by_reason).map(([key, value]) => ({
    key, value, label: REJECTIONS[key] || humanize(key),
  }));

  const tiles = h('dl', { class: 'tiles', id: 'summary-tiles' });
  statList(tiles, [
    ['Lines', formatNumber(n(s.total))],
    ['Unique numbers', formatNumber(n(s.unique_numbers))],
    ['Duplicates', formatNumber(n(s.duplicates))],
    ['Valid', formatNumber(n(s.valid))],
    ['Invalid', formatNumber(n(s.invalid))],
    ['Possibly reassigned', formatNumber(n(s.possibly_reassigned))],
    ['Rejected lines', formatNumber(n(s.failure))],
  ]);
  if (checked === 0) {
    return h('section', { class: 'card', 'aria-labelledby': 'summary-title' },
      h('h2', { id: 'summary-title' }, 'Results'),
      tiles,
      h('p', { class: 'muted', id: 'summary-empty' },
        'No line of this file was read as a phone number, so there is nothing to chart. '
        + 'rejected.csv in the result lists each line with the reason.'));
  }
  const charts = h('div', { class: 'charts' },
    donut({
      id: 'verdicts', title: 'Verdicts', rows: verdictRows, unit: checked === 1 ? 'number' : 'numbers',
    }),
    bars({
      id: 'reasons',
      title: 'Reasons',
      rows: reasons,
      keyHeading: 'Reason',
      whole: checked,
      note: 'Coloured by the verdict each reason gives.',
    }),
    bars({
      id: 'regions',
      title: 'Top countries',
      rows: regions,
      keyHeading: 'Country',
      whole: checked,
      note: regionEntries.length > 10 ? `The 10 largest of ${regionEntries.length}.` : null,
    }),
    bars({
      id: 'line-types', title: 'Line types', rows: lineTypes, keyHeading: 'Line type', whole: checked,
    }));
  if (rejected.length) {
    charts.append(bars({
      id: 'rejected',
      title: 'Rejected lines',
      rows: rejected,
      keyHeading: 'Reason',
      tone: 'inactive',
      note: 'Lines that are not phone numbers; listed in rejected.csv of the result.',
    }));
  }
  return h('section', { class: 'card', 'aria-labelledby': 'summary-title' },
    h('h2', { id: 'summary-title' }, 'Results'),
    tiles,
    charts);
}

// ---------------------------------------------------------------- start

async function boot() {
  $('signin-form').addEventListener('submit', onSignIn);
  $('secret-show').addEventListener('click', () => showSecret(false));
  $('secret-rotate').addEventListener('click', () => showSecret(true));
  $('sign-out').addEventListener('click', () => signOut());
  $('upload-form').addEventListener('submit', onUpload);
  $('tasks-refresh').addEventListener('click', () => {
    loadTasks(true);
    refreshBalance();
  });
  $('load-more').addEventListener('click', () => loadTasks(false));
  $('default-region').addEventListener('input', (e) => {
    const { target } = e;
    target.value = target.value.toUpperCase();
  });
  wireDropzone();
  window.addEventListener('hashchange', () => route(false));

  const key = storedKey();
  if (!key) {
    showSignIn();
    return;
  }
  try {
    startSession(key, await client(key).balance());
  } catch (e) {
    if (e.status === 401) forgetKey();
    showSignIn(e.message);
  }
}

boot();
