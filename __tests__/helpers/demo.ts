import path from 'node:path'
import { ROOT } from './child.js'
import { EXAMPLE } from './demo-nodes.js'
import { WatchedProcess } from './process-lines.js'

/** `npm run demo` without the build step (npm test has built dist/ already), on ports of the test's own. */
export async function startDemo(ports: { balancer: number; http: number; replication: number }): Promise<WatchedProcess> {
  const demo = new WatchedProcess(process.execPath, ['--import', 'tsx', path.join(EXAMPLE, 'demo.ts')], {
    cwd: ROOT,
    env: {
      ...process.env,
      DEMO_PORT: String(ports.balancer),
      DEMO_HTTP_PORT: String(ports.http),
      DEMO_REPLICATION_PORT: String(ports.replication),
    },
  })
  await demo.waitFor(new RegExp(`\\[demo\\] open http://127\\.0\\.0\\.1:${ports.balancer}/`))
  await Promise.all([demo.waitFor(/\[was1\] peer was2 is up/), demo.waitFor(/\[was2\] peer was1 is up/)])
  await Promise.all([demo.waitFor(/\[was1\] web on/), demo.waitFor(/\[was2\] web on/)])
  return demo
}

/** The key that kills or restarts a node in the demo. */
export const keyOf = (nodeId: string) => (nodeId === 'was1' ? '1' : '2')
