/**
 * Line charts for BENCHMARKS.md, drawn by the bench from its own figures: an SVG written here
 * (axes, ticks, one line per series, each point a median with its min–max as a whisker), turned
 * into a PNG by resvg (@resvg/resvg-js, a devDependency). No numbers are drawn by hand.
 */
import { writeFileSync } from 'node:fs';

export interface Point {
  readonly x: number;
  /** The median of the runs, and their spread. */
  readonly y: number;
  readonly min?: number;
  readonly max?: number;
}

export interface Series {
  readonly name: string;
  readonly points: readonly Point[];
}

export interface ChartSpec {
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  /** Work grows by orders of magnitude: a log x axis keeps 1k, 100k and 1M apart. */
  readonly logX?: boolean;
  /** For figures that fall by orders of magnitude too (every value must be above zero). */
  readonly logY?: boolean;
  readonly series: readonly Series[];
  /** A line for the reference a figure is judged against (a target, a machine limit). */
  readonly reference?: { readonly y: number; readonly label: string };
  /** Small print under the chart: the run it came from (date, commit, command, load). */
  readonly footer?: readonly string[];
}

const W = 720;
const H = 400;
const FOOTER_LINE = 15;
const M = { left: 80, right: 170, top: 48, bottom: 56 };
const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#17becf'];

function niceTicks(lo: number, hi: number, count = 5): number[] {
  const span = hi - lo || Math.abs(hi) || 1;
  const step0 = span / count;
  const mag = 10 ** Math.floor(Math.log10(step0));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= step0) ?? 10 * mag;
  const ticks: number[] = [];
  // The last tick at or above `hi`, so that no whisker leaves the plot.
  for (let t = Math.ceil(lo / step) * step; ticks.length === 0 || ticks.at(-1)! < hi - step * 1e-9; t += step) ticks.push(Number(t.toPrecision(12)));
  return ticks;
}

export function formatNumber(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e6) return `${+(v / 1e6).toPrecision(3)}M`;
  if (a >= 1e3) return `${+(v / 1e3).toPrecision(3)}k`;
  return `${+v.toPrecision(3)}`;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** The chart as an SVG document. */
export function lineChartSvg(spec: ChartSpec): string {
  const pts = spec.series.flatMap((s) => s.points);
  const xs = pts.map((p) => p.x);
  const ys = pts.flatMap((p) => [p.y, p.min ?? p.y, p.max ?? p.y]).concat(spec.reference ? [spec.reference.y] : []);
  const fx = spec.logX ? Math.log10 : (v: number) => v;
  const [x0, x1] = [Math.min(...xs.map(fx)), Math.max(...xs.map(fx))];
  const fy = spec.logY ? Math.log10 : (v: number) => v;
  const yTicks = spec.logY
    ? Array.from({ length: Math.ceil(Math.log10(Math.max(...ys))) - Math.floor(Math.log10(Math.min(...ys))) + 1 }, (_, i) => 10 ** (Math.floor(Math.log10(Math.min(...ys))) + i))
    : niceTicks(0, Math.max(...ys) * 1.05);
  const [y0, y1] = [fy(yTicks[0]!), fy(yTicks.at(-1)!)];
  const px = (x: number) => M.left + ((fx(x) - x0) / (x1 - x0 || 1)) * (W - M.left - M.right);
  const py = (y: number) => H - M.bottom - ((fy(y) - y0) / (y1 - y0 || 1)) * (H - M.top - M.bottom);
  const footer = spec.footer ?? [];
  const height = H + footer.length * FOOTER_LINE + (footer.length > 0 ? 6 : 0);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${height}" font-family="DejaVu Sans, Arial, sans-serif" font-size="12">`,
    `<rect width="${W}" height="${height}" fill="#ffffff"/>`,
    `<text x="${W / 2 - M.right / 2 + M.left / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold">${esc(spec.title)}</text>`,
  ];
  for (const t of yTicks) {
    out.push(`<line x1="${M.left}" x2="${W - M.right}" y1="${py(t)}" y2="${py(t)}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${M.left - 8}" y="${py(t) + 4}" text-anchor="end">${formatNumber(t)}</text>`);
  }
  const xTicks = [...new Set(xs)].sort((a, b) => a - b);
  for (const t of xTicks) out.push(`<text x="${px(t)}" y="${H - M.bottom + 18}" text-anchor="middle">${formatNumber(t)}</text>`);
  out.push(`<line x1="${M.left}" x2="${W - M.right}" y1="${H - M.bottom}" y2="${H - M.bottom}" stroke="#333"/>`);
  out.push(`<line x1="${M.left}" x2="${M.left}" y1="${M.top}" y2="${H - M.bottom}" stroke="#333"/>`);
  out.push(`<text x="${(M.left + W - M.right) / 2}" y="${H - 14}" text-anchor="middle">${esc(spec.xLabel)}${spec.logX ? ' (log scale)' : ''}</text>`);
  out.push(`<text x="18" y="${(M.top + H - M.bottom) / 2}" text-anchor="middle" transform="rotate(-90 18 ${(M.top + H - M.bottom) / 2})">${esc(spec.yLabel)}${spec.logY ? ' (log scale)' : ''}</text>`);
  if (spec.reference) {
    const y = py(spec.reference.y);
    out.push(`<line x1="${M.left}" x2="${W - M.right}" y1="${y}" y2="${y}" stroke="#888" stroke-dasharray="6 4"/>`);
    out.push(`<text x="${W - M.right + 6}" y="${y + 4}" fill="#666">${esc(spec.reference.label)}</text>`);
  }
  spec.series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length]!;
    const sorted = [...s.points].sort((a, b) => a.x - b.x);
    out.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${sorted.map((p) => `${px(p.x)},${py(p.y)}`).join(' ')}"/>`);
    for (const p of sorted) {
      if (p.min !== undefined && p.max !== undefined) out.push(`<line x1="${px(p.x)}" x2="${px(p.x)}" y1="${py(p.min)}" y2="${py(p.max)}" stroke="${color}" stroke-width="1.5"/>`);
      out.push(`<circle cx="${px(p.x)}" cy="${py(p.y)}" r="3.5" fill="${color}"/>`);
    }
    const ly = M.top + 16 + i * 20;
    out.push(`<line x1="${W - M.right + 10}" x2="${W - M.right + 30}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="2"/>`);
    out.push(`<text x="${W - M.right + 36}" y="${ly + 4}">${esc(s.name)}</text>`);
  });
  footer.forEach((line, i) => out.push(`<text x="8" y="${H + 4 + (i + 1) * FOOTER_LINE - 4}" font-size="10" fill="#555">${esc(line)}</text>`));
  out.push('</svg>');
  return out.join('\n');
}

/** Writes the chart as a PNG (and its SVG beside it, which diffs well in review). */
export async function writeChart(path: string, spec: ChartSpec): Promise<void> {
  const svg = lineChartSvg(spec);
  writeFileSync(path.replace(/\.png$/, '.svg'), svg);
  const { Resvg } = await import('@resvg/resvg-js');
  const png = new Resvg(svg, { font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' }, fitTo: { mode: 'width', value: W } }).render().asPng();
  writeFileSync(path, png);
}
