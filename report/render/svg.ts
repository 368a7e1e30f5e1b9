import { escapeHtml as h } from '../../lib/escape.js';

/**
 * Charts as inline SVG, drawn here rather than by a script in the page: the report opens with no
 * network, no JavaScript and a Content-Security-Policy that allows none, and prints as it shows.
 * Colours come from CSS classes (report/render/html.ts), never from style attributes (the policy
 * forbids those too). Every chart has a <title> and sits beside the table with the same numbers.
 */

export interface Series {
  name: string;
  /** CSS class of the series' marks: allowed, violation, denied, unsettled, unattributed. */
  cls: string;
  values: number[];
}

const W = 720;
const H = 240;
const PAD = { left: 56, right: 12, top: 16, bottom: 40 };

function niceMax(v: number): number {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

const fmt = (n: number) => (Number.isInteger(n) ? String(n) : n.toFixed(1));

/** A stacked bar per label (a day): each series a layer, bottom first. */
export function stackedBars(title: string, labels: string[], series: Series[]): string {
  const totals = labels.map((_, i) => series.reduce((a, s) => a + (s.values[i] ?? 0), 0));
  const max = niceMax(Math.max(0, ...totals));
  const iw = W - PAD.left - PAD.right;
  const ih = H - PAD.top - PAD.bottom;
  const slot = iw / Math.max(1, labels.length);
  const bw = Math.max(2, slot * 0.7);
  const y = (v: number) => PAD.top + ih - (v / max) * ih;
  const parts: string[] = [];
  // Five steps when four would not land on whole numbers (25 → 5, 10, ...).
  const steps = Number.isInteger(max / 4) || !Number.isInteger(max / 5) ? 4 : 5;
  for (let t = 0; t <= steps; t++) {
    const v = (max / steps) * t;
    parts.push(
      `<line class="grid" x1="${PAD.left}" x2="${W - PAD.right}" y1="${y(v)}" y2="${y(v)}"/>`,
      `<text class="axis" x="${PAD.left - 6}" y="${y(v) + 4}" text-anchor="end">${fmt(v)}</text>`,
    );
  }
  labels.forEach((label, i) => {
    const x = PAD.left + i * slot + (slot - bw) / 2;
    let base = 0;
    for (const s of series) {
      const v = s.values[i] ?? 0;
      if (v > 0) {
        const top = y(base + v);
        parts.push(
          `<rect class="${s.cls}" x="${x.toFixed(1)}" y="${top.toFixed(1)}" width="${bw.toFixed(1)}" height="${Math.max(1, y(base) - top).toFixed(1)}"><title>${h(label)}: ${h(s.name)} ${v}</title></rect>`,
        );
      }
      base += v;
    }
    parts.push(
      `<text class="axis" x="${(x + bw / 2).toFixed(1)}" y="${H - PAD.bottom + 16}" text-anchor="middle">${h(label)}</text>`,
    );
  });
  const step = Math.min(150, (W - PAD.left) / Math.max(1, series.length));
  const legend = series
    .map(
      (s, i) =>
        `<rect class="${s.cls}" x="${PAD.left + i * step}" y="${H - 14}" width="10" height="10"/><text class="axis" x="${PAD.left + i * step + 14}" y="${H - 5}">${h(s.name)}</text>`,
    )
    .join('');
  return `<svg class="chart" viewBox="0 0 ${W} ${H}" role="img" aria-label="${h(title)}"><title>${h(title)}</title>${parts.join('')}${legend}</svg>`;
}

/** Horizontal bars, one per labelled value, largest first (top violating workload pairs). */
export function horizontalBars(
  title: string,
  items: { label: string; value: number }[],
  cls: string,
): string {
  const rowH = 26;
  const labelW = 360;
  const height = Math.max(1, items.length) * rowH + 8;
  const max = niceMax(Math.max(0, ...items.map((i) => i.value)));
  const bw = W - labelW - 60;
  const rows = items.map((it, i) => {
    const y = 4 + i * rowH;
    const w = Math.max(1, (it.value / max) * bw);
    return `<text class="axis" x="${labelW - 8}" y="${y + 16}" text-anchor="end">${h(it.label)}</text><rect class="${cls}" x="${labelW}" y="${y + 4}" width="${w.toFixed(1)}" height="${rowH - 8}"><title>${h(it.label)}: ${it.value}</title></rect><text class="axis" x="${(labelW + w + 6).toFixed(1)}" y="${y + 16}">${it.value}</text>`;
  });
  if (items.length === 0) rows.push(`<text class="axis" x="8" y="20">none</text>`);
  return `<svg class="chart" viewBox="0 0 ${W} ${height}" role="img" aria-label="${h(title)}"><title>${h(title)}</title>${rows.join('')}</svg>`;
}
