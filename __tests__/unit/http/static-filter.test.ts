import { DEFAULT_STATIC_FILTER, matchesDefault, pathOf, staticMatcher } from '../../../lib/http/static-filter.js'

describe('static-asset filter', () => {
  const matches = staticMatcher<unknown>(undefined)
  test.each(['/logo.gif', '/js/app.js', '/a.jpeg', '/b.jpg', '/c.png', '/index.htm', '/index.html', '/site.css', '/robots.txt'])(
    "the default (the seed's filter) matches %s",
    (path) => expect(matches({}, path)).toBe(true),
  )
  test.each(['/', '/api/users', '/app.json', '/app.js/download', '/scripts'])('the default does not match %s', (path) => {
    expect(matches({}, path)).toBe(false)
  })

  test('matches the path without its query string', () => {
    expect(matches({}, pathOf('/app.js?v=3'))).toBe(true)
    expect(matches({}, pathOf('/api?file=app.js'))).toBe(false)
    expect(DEFAULT_STATIC_FILTER.test('/x.css')).toBe(true)
  })

  test('a global RegExp does not carry state from one request to the next', () => {
    const custom = staticMatcher<unknown>(/\.svg$/g)
    expect([custom({}, '/a.svg'), custom({}, '/a.svg'), custom({}, '/a.svg')]).toEqual([true, true, true])
  })

  test('a function decides from the request; false filters nothing', () => {
    const byHeader = staticMatcher<{ headers: Record<string, string> }>((request) => request.headers.accept === 'image/*')
    expect(byHeader({ headers: { accept: 'image/*' } }, '/x')).toBe(true)
    expect(staticMatcher<unknown>(false)({}, '/app.js')).toBe(false)
    expect(() => staticMatcher<unknown>('*.js' as never)).toThrow(expect.objectContaining({ option: 'staticFilter' }))
  })
})

test('the default filter without its RegExp matches exactly what the RegExp matches', () => {
  const parts = [
    '',
    '/',
    '.',
    'a',
    'js',
    'css',
    'html',
    'htm',
    'txt',
    'gif',
    'jpeg',
    'jpg',
    'png',
    'JS',
    'json',
    'x.',
    '\n',
    '\r',
    '\u2028',
    '\u2029',
    '?',
    'é',
    '..',
  ]
  let seed = 11
  const random = () => {
    seed = (seed * 1_103_515_245 + 12_345) & 0x7fffffff
    return seed
  }
  const matches = staticMatcher<unknown>(undefined)
  for (let n = 0; n < 50_000; n++) {
    let path = ''
    const length = random() % 7
    for (let i = 0; i < length; i++) path += parts[random() % parts.length]
    expect([path, matches({}, path)]).toEqual([path, DEFAULT_STATIC_FILTER.test(path)])
    expect(matchesDefault(path)).toBe(DEFAULT_STATIC_FILTER.test(path))
  }
  for (const path of ['/a.js', '/a.js\n', '\n/a.js', '/a.html', '/a.htmlx', '/.js', '.js', '/a.JS', '/a.j', '/dir.js/'])
    expect([path, matchesDefault(path)]).toEqual([path, DEFAULT_STATIC_FILTER.test(path)])
})
