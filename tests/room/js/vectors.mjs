// Prints y-protocols messages made by the real Yjs libraries, as hex, for the protocol tests.
import * as Y from 'yjs'
import * as syncProtocol from 'y-protocols/sync'
import * as awarenessProtocol from 'y-protocols/awareness'
import * as encoding from 'lib0/encoding'

const hex = (bytes) => Buffer.from(bytes).toString('hex')

function message (write) {
  const encoder = encoding.createEncoder()
  write(encoder)
  return hex(encoding.toUint8Array(encoder))
}

const doc = new Y.Doc()
doc.clientID = 1234567
doc.getText('text').insert(0, 'héllo, wörld '.repeat(12)) // long enough for two-byte lengths
const update = Y.encodeStateAsUpdate(doc)
const stateVector = Y.encodeStateVector(doc)

const awareness = new awarenessProtocol.Awareness(doc)
awareness.setLocalState({ user: { name: 'Zoë', color: '#ff0000' } })
const present = awarenessProtocol.encodeAwarenessUpdate(awareness, [doc.clientID])
awareness.setLocalState(null)
const removed = awarenessProtocol.encodeAwarenessUpdate(awareness, [doc.clientID])
awareness.destroy()

process.stdout.write(JSON.stringify({
  update: hex(update),
  state_vector: hex(stateVector),
  sync_step1: message((e) => { encoding.writeVarUint(e, 0); syncProtocol.writeSyncStep1(e, doc) }),
  sync_step2: message((e) => { encoding.writeVarUint(e, 0); syncProtocol.writeSyncStep2(e, doc) }),
  sync_update: message((e) => { encoding.writeVarUint(e, 0); syncProtocol.writeUpdate(e, update) }),
  awareness_present: hex(present),
  awareness_removed: hex(removed),
  awareness_message: message((e) => { encoding.writeVarUint(e, 1); encoding.writeVarUint8Array(e, present) }),
  query_awareness: message((e) => { encoding.writeVarUint(e, 3) })
}) + '\n')
