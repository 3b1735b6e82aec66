// The public track record's series for charts, as pure functions: the equity curve
// (cumulative profit at stake, from GET /channels/{id}/track-record) within a window, and
// its drawdown (how far below its running peak the curve stands, ≤ 0).

export const WINDOWS = [
  { key: '7d', label: '7 days', days: 7 },
  { key: '30d', label: '30 days', days: 30 },
  { key: '90d', label: '90 days', days: 90 },
  { key: 'all', label: 'All time', days: null },
]

/** The equity points of a window, re-based so the window starts at zero profit. */
export function equityPoints(equity = [], windowKey = 'all', now = Date.now() / 1000) {
  const days = WINDOWS.find((w) => w.key === windowKey)?.days ?? null
  const from = days === null ? -Infinity : now - days * 86400
  const all = equity.map((e) => ({ x: Number(e.at), y: Number(e.profit) })).filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y))
  const before = all.filter((p) => p.x < from)
  const base = before.length ? before[before.length - 1].y : 0
  const inside = all.filter((p) => p.x >= from).map((p) => ({ x: p.x, y: round(p.y - base) }))
  // A window's curve starts at zero where the window starts; all time starts at the first
  // signal's own result.
  if (inside.length && days !== null) inside.unshift({ x: from, y: 0 })
  return inside
}

/** The drawdown below the running peak at each point (0 at a new high, negative below);
 * the peak starts at zero, the profit before the first signal. */
export function drawdownPoints(points) {
  let peak = 0
  return points.map((p) => {
    peak = Math.max(peak, p.y)
    return { x: p.x, y: round(p.y - peak) }
  })
}

function round(v) {
  return Math.round(v * 1e8) / 1e8
}
