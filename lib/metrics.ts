/**
 * Prometheus metrics for a PeerStore: `import { collectMetrics } from 'connect-peer/metrics'`. A
 * separate entry point, so that prom-client (an optional peer dependency) is loaded only by those
 * who use it.
 */
export { collectMetrics, type MetricsCollection, type MetricsOptions } from './monitoring/metrics.js'
