// Charts as inline SVG. Each chart is a <figure> whose SVG has a text alternative (role=img
// with a <title> listing every value) and a data table beside or under it, so nothing is
// shown only as a picture.

import { h, svg, formatNumber, formatPercent } from './dom.js';

function describe(title, rows, whole) {
  if (!rows.length) return `${title}: none.`;
  const parts = rows.map((r) => `${r.label} ${formatNumber(r.value)} (${formatPercent(r.value, whole)})`);
  return `${title}: ${parts.join(', ')}.`;
}

function dataTable(id, title, rows, whole, { keyHeading, swatches }) {
  return h('table', { class: 'table data-table', id: `chart-${id}-table` },
    h('caption', { class: 'visually-hidden' }, title),
    h('thead', {},
      h('tr', {},
        h('th', { scope: 'col' }, keyHeading),
        h('th', { scope: 'col', class: 'num' }, 'Count'),
        h('th', { scope: 'col', class: 'num' }, 'Share'))),
    h('tbody', {},
      rows.map((r) => h('tr', { 'data-key': r.key },
        h('th', { scope: 'row' },
          swatches ? h('span', { class: `swatch tone-${r.tone}`, 'aria-hidden': 'true' }) : null,
          r.label),
        h('td', { class: 'num count' }, formatNumber(r.value)),
        h('td', { class: 'num share' }, formatPercent(r.value, whole))))));
}

/**
 * A donut of the parts of a whole, with its legend as a table.
 * rows: [{key, label, value, tone}], tone one of active / inactive / unknown / accent.
 */
export function donut({ id, title, rows, keyHeading = 'Verdict', unit = 'numbers' }) {
  const whole = rows.reduce((sum, r) => sum + r.value, 0);
  const titleId = `chart-${id}-title`;
  const radius = 58;
  const circumference = 2 * Math.PI * radius;
  const shown = rows.filter((r) => r.value > 0);
  // A hairline gap between segments keeps neighbours apart without a stroke colour.
  const gap = shown.length > 1 ? 2 : 0;
  const picture = svg('svg', {
    class: 'donut', viewBox: '0 0 160 160', width: 160, height: 160, role: 'img', 'aria-labelledby': titleId,
  },
  svg('title', { id: titleId }, describe(title, rows, whole)),
  svg('circle', { class: 'donut-track', cx: 80, cy: 80, r: radius, fill: 'none', 'stroke-width': 24 }));
  let offset = 0;
  for (const r of shown) {
    const length = (circumference * r.value) / whole;
    const drawn = Math.max(length - gap, 0.5);
    picture.append(svg('circle', {
      class: `donut-segment tone-${r.tone}`,
      cx: 80,
      cy: 80,
      r: radius,
      fill: 'none',
      'stroke-width': 24,
      'stroke-dasharray': `${drawn} ${circumference - drawn}`,
      'stroke-dashoffset': String(-offset),
      transform: 'rotate(-90 80 80)',
    }));
    offset += length;
  }
  // The total fits inside the ring (92 px across) however many digits it has: smaller type
  // past four characters (a class, since the page's CSP allows no inline style).
  const total = formatNumber(whole);
  const size = total.length <= 4 ? '' : total.length <= 6 ? ' long' : ' longer';
  picture.append(
    svg('text', {
      class: `donut-total${size}`, x: 80, y: 80, 'text-anchor': 'middle',
    }, total),
    svg('text', { class: 'donut-unit', x: 80, y: 100, 'text-anchor': 'middle' }, unit),
  );
  return h('figure', { class: 'chart chart-donut', id: `chart-${id}` },
    h('figcaption', {}, h('h3', {}, title)),
    h('div', { class: 'donut-layout' },
      picture,
      dataTable(id, title, rows, whole, { keyHeading, swatches: true })));
}

const ROW = 40;

/**
 * Horizontal bars, one row per item: the label and value above a bar scaled to the largest.
 * Widths are percentages, so the chart reflows with its box instead of scaling its text.
 */
export function bars({ id, title, rows, keyHeading, tone = 'accent', whole, note }) {
  const total = whole ?? rows.reduce((sum, r) => sum + r.value, 0);
  const titleId = `chart-${id}-title`;
  const figure = h('figure', { class: 'chart chart-bars', id: `chart-${id}` },
    h('figcaption', {}, h('h3', {}, title), note ? h('p', { class: 'hint' }, note) : null));
  if (!rows.length) {
    figure.append(h('p', { class: 'muted' }, 'Nothing to show.'));
    return figure;
  }
  const max = Math.max(...rows.map((r) => r.value), 1);
  const picture = svg('svg', {
    class: 'bars', width: '100%', height: rows.length * ROW, role: 'img', 'aria-labelledby': titleId,
  }, svg('title', { id: titleId }, describe(title, rows, total)));
  rows.forEach((r, i) => {
    const y = i * ROW;
    const width = r.value > 0 ? Math.max((r.value / max) * 100, 0.8) : 0;
    picture.append(
      svg('text', { class: 'bar-label', x: 0, y: y + 15 }, r.label),
      svg('text', { class: 'bar-value', x: '100%', y: y + 15, 'text-anchor': 'end' },
        `${formatNumber(r.value)} · ${formatPercent(r.value, total)}`),
      svg('rect', { class: 'bar-track', x: 0, y: y + 22, width: '100%', height: 10, rx: 5 }),
      svg('rect', {
        class: `bar tone-${r.tone || tone}`, x: 0, y: y + 22, width: `${width}%`, height: 10, rx: 5,
      }),
    );
  });
  figure.append(picture,
    h('details', { class: 'chart-data' },
      h('summary', {}, 'Show as a table'),
      dataTable(id, title, rows, total, { keyHeading, swatches: false })));
  return figure;
}
