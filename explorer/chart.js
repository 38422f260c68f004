// Charts as SVG drawn here: block times and difficulty over recent blocks, and the mempool's fee
// histogram. No library: a few lines of geometry weigh less than any.
import { h } from './dom.js';

const NS = 'http://www.w3.org/2000/svg';

/**
 * @param {string} tag
 * @param {Record<string, string | number>} attrs
 * @param {(SVGElement | string)[]} children
 */
function s(tag, attrs, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  el.append(...children);
  return el;
}

/** @param {number} n */
const compact = (n) => (n >= 1e12 ? `${(n / 1e12).toFixed(1)}T` : n >= 1e9 ? `${(n / 1e9).toFixed(1)}G` : n >= 1e6 ? `${(n / 1e6).toFixed(1)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}k` : String(Math.round(n * 10) / 10));

/**
 * Two series over the same heights, each on its own scale (left and right axis).
 * @param {{ height: number; interval: number | null; difficulty: string }[]} points  difficulty a decimal string, as every big number of the API
 */
export function blockChart(points) {
  const W = 720;
  const H = 200;
  const pad = { l: 44, r: 54, t: 10, b: 22 };
  const xs = points.map((p) => p.height);
  const x0 = Math.min(...xs);
  const x1 = Math.max(...xs, x0 + 1);
  const intervals = points.filter((p) => p.interval !== null).map((p) => /** @type {number} */ (p.interval));
  const iMax = Math.max(1, ...intervals);
  // Difficulty moves by a few percent: scaled from its lowest to its highest, or it is a flat line.
  const ds = points.map((p) => Number(p.difficulty));
  const dMax = Math.max(1, ...ds);
  const dMin = Math.min(dMax, ...ds) * 0.98;
  const X = (/** @type {number} */ v) => pad.l + ((v - x0) / (x1 - x0)) * (W - pad.l - pad.r);
  const Y = (/** @type {number} */ v, /** @type {number} */ max) => H - pad.b - (v / max) * (H - pad.t - pad.b);
  const path = (/** @type {[number, number][]} */ pts) => pts.map(([x, y], i) => `${i ? 'L' : 'M'}${x.toFixed(1)},${y.toFixed(1)}`).join('');
  const svg = s(
    'svg',
    { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': 'Block times and difficulty over recent blocks' },
    s('line', { class: 'axis', x1: pad.l, y1: H - pad.b, x2: W - pad.r, y2: H - pad.b }),
    s('line', { class: 'axis', x1: pad.l, y1: pad.t, x2: pad.l, y2: H - pad.b }),
    s('line', { class: 'axis', x1: W - pad.r, y1: pad.t, x2: W - pad.r, y2: H - pad.b }),
    s('text', { x: pad.l - 6, y: pad.t + 10, 'text-anchor': 'end' }, `${iMax} s`),
    s('text', { x: pad.l - 6, y: H - pad.b, 'text-anchor': 'end' }, '0'),
    s('text', { x: W - pad.r + 6, y: pad.t + 10 }, compact(dMax)),
    s('text', { x: W - pad.r + 6, y: H - pad.b }, compact(dMin)),
    s('text', { x: pad.l, y: H - 6 }, `#${x0}`),
    s('text', { x: W - pad.r, y: H - 6, 'text-anchor': 'end' }, `#${x1}`),
    s('path', { class: 's1', d: path(points.filter((p) => p.interval !== null).map((p) => [X(p.height), Y(/** @type {number} */ (p.interval), iMax)])) }),
    s('path', { class: 's2', d: path(points.map((p) => [X(p.height), H - pad.b - ((Number(p.difficulty) - dMin) / Math.max(1e-9, dMax - dMin)) * (H - pad.t - pad.b)])) }),
  );
  return h('div', { class: 'chart', id: 'block-chart' }, svg, h('div', { class: 'legend' }, h('span', { class: 'k1' }, 'seconds since the previous block'), h('span', { class: 'k2' }, 'difficulty (expected hashes)')));
}

/**
 * Bars of pending bytes per fee, highest fee first.
 * @param {[string, number][]} histogram  [fee (base units, a decimal string), bytes]
 */
export function feeChart(histogram) {
  const W = 720;
  const H = 160;
  const pad = { l: 10, r: 10, t: 10, b: 34 };
  const max = Math.max(1, ...histogram.map(([, b]) => b));
  const w = (W - pad.l - pad.r) / Math.max(1, histogram.length);
  const bars = histogram.map(([fee, bytes], i) => {
    const bh = (bytes / max) * (H - pad.t - pad.b);
    const x = pad.l + i * w;
    return s('g', {}, s('rect', { class: 'bar', x: x + 2, y: H - pad.b - bh, width: Math.max(1, w - 4), height: bh }, s('title', {}, `fee ${fee}: ${bytes} bytes`)), s('text', { x: x + w / 2, y: H - pad.b + 14, 'text-anchor': 'middle' }, compact(Number(fee))));
  });
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': 'Pending bytes by fee' }, s('line', { class: 'axis', x1: pad.l, y1: H - pad.b, x2: W - pad.r, y2: H - pad.b }), ...bars, s('text', { x: W / 2, y: H - 4, 'text-anchor': 'middle' }, 'fee (base units), highest first'));
  return h('div', { class: 'chart', id: 'fee-chart' }, svg);
}
