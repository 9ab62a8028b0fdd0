// A Yjs client (y-websocket) that waits for text written elsewhere, for the following tests.
//
//   node follow.mjs wait URL ROOM MARKER   sync, print {"synced": true}, then wait until the
//                                          text holds MARKER and print {"text": ...}
//
// Gives up after CLIENT_TIMEOUT_MS (exit 2) so a test never hangs on it.
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import WebSocket from 'ws'

const TIMEOUT_MS = Number(process.env.CLIENT_TIMEOUT_MS || 30000)
const [mode, url, room, marker] = process.argv.slice(2)

const doc = new Y.Doc()
const text = doc.getText('text')
const provider = new WebsocketProvider(url, room, doc, { WebSocketPolyfill: WebSocket, disableBc: true })
const timer = setTimeout(() => {
  console.error(`timed out; text=${JSON.stringify(text.toString())}`)
  process.exit(2)
}, TIMEOUT_MS)
const print = (value) => process.stdout.write(JSON.stringify(value) + '\n')

if (mode !== 'wait') {
  console.error(`unknown mode ${mode}`)
  process.exit(2)
}
await new Promise((resolve) => {
  if (provider.synced) return resolve()
  provider.on('sync', (isSynced) => { if (isSynced) resolve() })
})
print({ synced: true })
await new Promise((resolve) => {
  const check = () => { if (text.toString().includes(marker)) resolve() }
  doc.on('update', check)
  check()
})
print({ text: text.toString() })
provider.destroy()
clearTimeout(timer)
setTimeout(() => process.exit(0), 50)
