import { describe, expect, it } from 'vitest'
import { chartConfig, NEGATIVE, POSITIVE, segmentColor, timeLabel, valueLabel } from './chart'

describe('chartConfig', () => {
  const points = [{ x: 1_700_000_000, y: 2 }, { x: 1_700_086_400, y: -1.5 }, { x: 1_700_172_800, y: 3 }]
  const config = chartConfig(points, { label: 'Profit', currency: 'USD' })
  const [dataset] = config.data.datasets

  it('plots time against value with labelled axes carrying the currency', () => {
    expect(dataset.data).toEqual(points)
    expect(config.options.scales.x.title.text).toBe('Time')
    expect(config.options.scales.y.title.text).toBe('Profit (USD)')
    expect(config.options.scales.x.ticks.callback(1_700_000_000)).toMatch(/\d/)
    expect(config.options.scales.y.ticks.callback(-1.5)).toBe('−1.50')
  })

  it('draws below zero in red: segments, points and the area under the line', () => {
    const segment = (y0, y1) => dataset.segment.borderColor({ p0: { parsed: { y: y0 } }, p1: { parsed: { y: y1 } } })
    expect(segment(2, -1.5)).toBe(NEGATIVE)
    expect(segment(2, 3)).toBe(POSITIVE)
    expect(dataset.pointBackgroundColor).toEqual([POSITIVE, NEGATIVE, POSITIVE])
    expect(dataset.fill.target).toBe('origin')
    expect(dataset.fill.below).toMatch(/^rgba\(220, 53, 69/)
  })

  it('shows the time and the value with its currency in tooltips', () => {
    const { title, label } = config.options.plugins.tooltip.callbacks
    expect(label({ parsed: { y: -1.5 } })).toBe('Profit: −1.50 USD')
    expect(title([{ parsed: { x: 1_700_000_000 } }])).toMatch(/\d/)
  })

  it('steps whole counts without a fill when asked', () => {
    const steps = chartConfig([{ x: 1, y: 1 }, { x: 2, y: 2 }], { step: true, fill: false, label: 'Subscribers' })
    expect(steps.data.datasets[0].stepped).toBe('after')
    expect(steps.data.datasets[0].fill).toBe(false)
    expect(steps.options.scales.y.ticks.callback(2)).toBe('2')
  })
})

describe('labels', () => {
  it('formats values and times', () => {
    expect(valueLabel('12.5', 'EUR')).toBe('12.50 EUR')
    expect(valueLabel('x')).toBe('—')
    expect(segmentColor(0, 0)).toBe(POSITIVE)
    expect(timeLabel(Number.NaN)).toBe('')
  })
})

describe('one point', () => {
  it('shows a minute either side of a single instant', () => {
    const one = chartConfig([{ x: 1000, y: 0 }], { label: 'P&L', axis: 'P&L', currency: 'EUR' })
    expect([one.options.scales.x.min, one.options.scales.x.max]).toEqual([940, 1060])
    expect(one.options.scales.y.title.text).toBe('P&L (EUR)')
  })
})
