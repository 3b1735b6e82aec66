// Chart.js configuration for the dashboard's time series, as pure functions (unit-tested
// without a canvas): points [{x: epoch seconds, y: number}] on a time axis with date
// labels, a value axis with the currency, tooltips with the time and the value, and the
// line and its area red wherever the value is below zero. Axis text and grid lines take
// the theme's ink (lib/theme.js chartInk), so the chart reads in light and dark mode.
import { chartInk } from './theme'

export const POSITIVE = 'rgb(25, 135, 84)' // Bootstrap's success green
export const NEGATIVE = 'rgb(220, 53, 69)' // Bootstrap's danger red
const POSITIVE_FILL = 'rgba(25, 135, 84, 0.12)'
const NEGATIVE_FILL = 'rgba(220, 53, 69, 0.15)'

/** A time label for an epoch-seconds value: the date, and the time when the span is short. */
export function timeLabel(seconds, spanSeconds = Infinity) {
  const d = new Date(seconds * 1000)
  if (Number.isNaN(d.getTime())) return ''
  if (spanSeconds <= 2 * 86400) return d.toLocaleString(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' })
  return d.toLocaleDateString(undefined, { year: spanSeconds > 300 * 86400 ? '2-digit' : undefined, month: 'short', day: 'numeric' })
}

/** The value as the axis and tooltips show it: the number and the currency, if any. */
export function valueLabel(value, currency = '', digits = 2) {
  const n = Number(value)
  if (!Number.isFinite(n)) return '—'
  const text = `${n < 0 ? '−' : ''}${Math.abs(n).toFixed(digits)}`
  return currency ? `${text} ${currency}` : text
}

/** The segment's colour: red when either end is below zero, else the series' colour. */
export function segmentColor(y0, y1, color = POSITIVE) {
  return y0 < 0 || y1 < 0 ? NEGATIVE : color
}

/**
 * The full Chart.js config of one series.
 * @param {{x: number, y: number}[]} points
 * @param {{label?: string, axis?: string, currency?: string, digits?: number, step?: boolean, color?: string, fill?: boolean, theme?: string}} options
 *   axis: the value axis' title (default: the label), with the currency appended;
 *   theme: "light" or "dark", whose ink the axes and grid take.
 */
export function chartConfig(points, { label = '', axis = '', currency = '', digits = 2, step = false, color = POSITIVE, fill = true, theme = 'light' } = {}) {
  const ink = chartInk(theme)
  const data = points.map((p) => ({ x: Number(p.x), y: Number(p.y) }))
  const xs = data.map((p) => p.x)
  const span = xs.length ? Math.max(...xs) - Math.min(...xs) : 0
  // One instant: a minute either side, so the axis shows that time, not a padded range.
  const around = xs.length && span === 0 ? { min: xs[0] - 60, max: xs[0] + 60 } : {}
  const title = axis || label || 'Value'
  return {
    type: 'line',
    data: {
      datasets: [
        {
          label,
          data,
          borderColor: color,
          backgroundColor: color,
          borderWidth: 2,
          pointRadius: data.length <= 40 ? 3 : 0,
          pointBackgroundColor: data.map((p) => (p.y < 0 ? NEGATIVE : color)),
          pointBorderColor: data.map((p) => (p.y < 0 ? NEGATIVE : color)),
          stepped: step ? 'after' : false,
          tension: 0,
          segment: { borderColor: (ctx) => segmentColor(ctx.p0.parsed.y, ctx.p1.parsed.y, color) },
          fill: fill ? { target: 'origin', above: POSITIVE_FILL, below: NEGATIVE_FILL } : false,
        },
      ],
    },
    options: {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      parsing: false,
      normalized: true,
      interaction: { mode: 'nearest', axis: 'x', intersect: false },
      scales: {
        x: {
          type: 'linear',
          ...around,
          title: { display: true, text: 'Time', color: ink.text },
          ticks: { maxTicksLimit: 6, color: ink.text, callback: (value) => timeLabel(value, span) },
          grid: { color: ink.grid },
        },
        y: {
          type: 'linear',
          title: { display: true, text: currency ? `${title} (${currency})` : title, color: ink.text },
          ticks: { maxTicksLimit: 6, color: ink.text, callback: (value) => valueLabel(value, '', step ? 0 : digits) },
          grid: { color: (ctx) => (ctx.tick?.value === 0 ? ink.zero : ink.grid) },
        },
      },
      plugins: {
        legend: { display: false },
        tooltip: {
          callbacks: {
            title: (items) => (items.length ? timeLabel(items[0].parsed.x, 0) : ''),
            label: (item) => `${label ? `${label}: ` : ''}${valueLabel(item.parsed.y, currency, step ? 0 : digits)}`,
          },
        },
      },
    },
  }
}
