import { MemoryStore } from 'express-session'
import { PeerStore } from '../../../lib/index.js'
import { describeStoreContract } from '../../helpers/store-contract.js'

describeStoreContract('express-session MemoryStore (reference)', () => new MemoryStore(), {
  missing: undefined,
  revivesDates: false,
  destroyIsFinal: false,
})

describeStoreContract('PeerStore', () => new PeerStore(), {
  missing: null,
  revivesDates: true,
  destroyIsFinal: true,
})
