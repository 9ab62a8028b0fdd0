// Yjs clients for the shutdown tests of `ystore serve`.
//
//   node typist.mjs write URL ROOM NAME   after syncing, append <NAME:i> every few ms until the
//                                         server closes the connection; print {"written": n}
//   node typist.mjs watch URL ROOM        after syncing, print {"ready": true}; once the server
//                                         closes the connection print {"text": ...}: everything
//                                         the server relayed (so applied) before it went away
//
// Neither reconnects. Each gives up after TIMEOUT_MS (exit 2).
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import WebSocket from 'ws'

const TIMEOUT_MS = Number(process.env.CLIENT_TIMEOUT_MS || 60000)
const [mode, url, room, name] = process.argv.slice(2)
const doc = new Y.Doc()
const text = doc.getText('text')
const provider = new WebsocketProvider(url, room, doc, { WebSocketPolyfill: WebSocket, disableBc: true })
const timer = setTimeout(() => { console.error(`timed out in ${mode}`); process.exit(2) }, TIMEOUT_MS)
let written = 0
let closed = false

const print = (value) => process.stdout.write(JSON.stringify(value) + '\n')

provider.on('connection-close', () => {
  if (closed) return
  closed = true
  provider.shouldConnect = false
  clearTimeout(timer)
  print(mode === 'write' ? { written } : { text: text.toString() })
  provider.destroy()
  setTimeout(() => process.exit(0), 20)
})

await new Promise((resolve) => provider.once('sync', resolve))
if (mode === 'watch') {
  print({ ready: true })
} else if (mode === 'write') {
  const tick = () => {
    if (closed) return
    text.insert(text.length, `<${name}:${written}>`)
    written += 1
    setTimeout(tick, 2)
  }
  tick()
} else {
  console.error(`unknown mode ${mode}`)
  process.exit(2)
}
