/**
 * A grouped horizontal bar chart as a standalone SVG (no library, no fonts to load): one group per
 * store, one bar per route, the value printed at the end of each bar.
 */
export interface ChartGroup {
  label: string
  bars: { label: string; value: number }[]
}

const COLOURS = ['#2f6fdf', '#e07b39', '#3aa675', '#8c6bc8']

export function barChart(title: string, unit: string, groups: ChartGroup[], note: string): string {
  const barHeight = 14
  const barGap = 3
  const groupGap = 14
  const left = 150
  const width = 760
  const plotWidth = width - left - 90
  const seriesLabels = groups[0]?.bars.map((bar) => bar.label) ?? []
  const max = Math.max(1, ...groups.flatMap((group) => group.bars.map((bar) => bar.value)))
  const groupHeight = seriesLabels.length * (barHeight + barGap) - barGap
  const top = 58
  const height = top + groups.length * (groupHeight + groupGap) + 30
  const escape = (text: string) => text.replace(/[&<>"]/g, (char) => `&#${char.charCodeAt(0)};`)
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${left}" y="22" font-size="15" font-weight="bold" fill="#1d2430">${escape(title)}</text>`,
  ]
  seriesLabels.forEach((label, i) => {
    const x = left + i * 130
    parts.push(`<rect x="${x}" y="34" width="12" height="12" fill="${COLOURS[i % COLOURS.length]}"/>`)
    parts.push(`<text x="${x + 17}" y="44" fill="#1d2430">${escape(label)}</text>`)
  })
  groups.forEach((group, g) => {
    const y = top + g * (groupHeight + groupGap)
    parts.push(`<text x="${left - 8}" y="${y + groupHeight / 2 + 4}" text-anchor="end" fill="#1d2430">${escape(group.label)}</text>`)
    group.bars.forEach((bar, b) => {
      const barY = y + b * (barHeight + barGap)
      const barWidth = Math.max(1, (bar.value / max) * plotWidth)
      parts.push(
        `<rect x="${left}" y="${barY}" width="${barWidth.toFixed(1)}" height="${barHeight}" fill="${COLOURS[b % COLOURS.length]}"/>`,
      )
      parts.push(
        `<text x="${(left + barWidth + 5).toFixed(1)}" y="${barY + barHeight - 3}" fill="#1d2430">${bar.value.toLocaleString('en-US')}${unit}</text>`,
      )
    })
  })
  parts.push(`<text x="${left}" y="${height - 10}" font-size="11" fill="#5a6270">${escape(note)}</text>`)
  parts.push('</svg>')
  return `${parts.join('\n')}\n`
}
