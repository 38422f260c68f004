// Building the page: elements from data (never HTML from strings, so nothing a block holds can
// become markup), amounts in coins, times, and the node's REST API.

/** @typedef {string | number | Node | null | undefined | false} Child */

/**
 * An element with attributes (`on…` functions become listeners) and children.
 * @param {string} tag
 * @param {Record<string, unknown>} [attrs]
 * @param {...(Child | Child[])} children
 * @returns {HTMLElement}
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), /** @type {EventListener} */ (v));
    else el.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

/** @param {string} href @param {Child} text @param {Record<string, unknown>} [attrs] */
export const link = (href, text, attrs = {}) => h('a', { href, ...attrs }, text);

/** A hash shortened for a table cell, whole in its title. @param {string} hex */
export const short = (hex) => (hex.length > 20 ? `${hex.slice(0, 10)}…${hex.slice(-8)}` : hex);

/** The network's coin: set once /node has answered. */
export const coin = { unit: 'CRN', decimals: 8 };

/**
 * Base units (a decimal string) in coins, exactly: bigint arithmetic, trailing zeros dropped.
 * @param {string | number} units
 */
export function coins(units) {
  const v = BigInt(units);
  const scale = 10n ** BigInt(coin.decimals);
  const whole = v / scale;
  const frac = (v % scale).toString().padStart(coin.decimals, '0').replace(/0+$/, '');
  return `${whole.toLocaleString('en-US')}${frac ? `.${frac}` : ''} ${coin.unit}`;
}

/** @param {number} seconds since the epoch */
export function when(seconds) {
  const ago = Math.max(0, Math.round(Date.now() / 1000 - seconds));
  const text = ago < 60 ? `${ago} s ago` : ago < 3600 ? `${Math.floor(ago / 60)} min ago` : ago < 86400 ? `${Math.floor(ago / 3600)} h ago` : new Date(seconds * 1000).toISOString().slice(0, 16).replace('T', ' ');
  return h('time', { datetime: new Date(seconds * 1000).toISOString(), title: new Date(seconds * 1000).toISOString() }, text);
}

/** A failed API call, with the node's error code. */
export class ApiError extends Error {
  /** @param {number} status @param {string} code @param {string} message */
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/**
 * GET from the node's REST API: JSON, or text for the paths that answer text.
 * @template T
 * @param {string} path
 * @returns {Promise<T>}
 */
export async function api(path) {
  const response = await fetch(path, { headers: { accept: 'application/json' } });
  const type = response.headers.get('content-type') ?? '';
  if (!response.ok) {
    const body = type.includes('json') ? /** @type {{ error?: { code?: string; message?: string } }} */ (await response.json()) : {};
    throw new ApiError(response.status, body.error?.code ?? 'HTTP', body.error?.message ?? `HTTP ${response.status}`);
  }
  return type.includes('json') ? response.json() : /** @type {T} */ (/** @type {unknown} */ (await response.text()));
}

/** @param {string} label @param {Child} value */
export const card = (label, value) => h('div', { class: 'card' }, h('div', { class: 'label' }, label), h('div', { class: 'value' }, value));

/** @param {[string, Child | Child[]][]} rows */
export const fields = (rows) => h('dl', { class: 'fields' }, rows.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));

/** A head starting with '#' is a number column. @param {string} head */
const columnClass = (head) => (head.startsWith('#') ? 'num' : undefined);

/**
 * One row of a table with these heads: for tables that grow a page at a time.
 * @param {string[]} heads @param {Child[]} cells @param {Record<string, unknown>} [attrs]
 */
export const row = (heads, cells, attrs = {}) => h('tr', attrs, cells.map((c, i) => h('td', { class: columnClass(heads[i] ?? '') }, c)));

/**
 * @param {string[]} heads  a head starting with '#' is a number column
 * @param {Child[][]} rows
 */
export function table(heads, rows) {
  return h(
    'table',
    {},
    h('thead', {}, h('tr', {}, heads.map((x) => h('th', { class: columnClass(x) }, x.replace(/^#/, ''))))),
    h('tbody', {}, rows.map((r) => row(heads, r))),
  );
}
