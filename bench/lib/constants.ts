/** Secrets shared by the benchmark processes (benchmark material only). */
export const SESSION_SECRET = 'bench session secret'
export const CLUSTER_SECRET = 'bench cluster secret 0123456789'
