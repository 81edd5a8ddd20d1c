// Just what the benchmarks use of autocannon (which ships no types).
declare module 'autocannon' {
  namespace autocannon {
    interface Request {
      method?: string
      path?: string
      headers?: Record<string, string>
      body?: string
    }
    interface Options {
      url: string
      connections?: number
      duration?: number
      requests?: Array<Request & { setupRequest?: (request: Request) => Request }>
    }
    interface Histogram {
      average: number
      mean: number
      p50: number
      p90: number
      p99: number
      max: number
    }
    interface Result {
      requests: Histogram & { total: number }
      latency: Histogram
      errors: number
      non2xx: number
      timeouts: number
    }
  }
  function autocannon(options: autocannon.Options): Promise<autocannon.Result>
  export = autocannon
}
