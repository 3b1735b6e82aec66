import { describe, expect, it } from 'vitest'
import { mount } from '@vue/test-utils'
import TimeChart from './TimeChart.vue'

describe('TimeChart', () => {
  it('shows an empty state without points', () => {
    expect(mount(TimeChart, { props: { points: [], emptyText: 'No record yet.' } }).text()).toContain('No record yet.')
  })

  it('draws a canvas and the last value, red below zero', () => {
    const w = mount(TimeChart, { props: { points: [{ x: 1, y: 1 }, { x: 2, y: -1 }], label: 'P&L', currency: 'USD' } })
    expect(w.find('canvas').exists()).toBe(true)
    expect(w.get('[data-testid=chart-last]').text()).toBe('−1.00 USD')
    expect(w.get('[data-testid=chart-last]').classes()).toContain('text-danger')
    w.unmount()
  })
})
