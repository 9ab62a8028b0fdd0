// A Yjs client (y-websocket's WebsocketProvider over `ws`) that reports its document's exact state,
// for comparing it byte for byte with another client's.
//
//   node peer.mjs edit URL ROOM NAME COUNT NAMES   insert COUNT markers <NAME:i> (between markers),
//                                                 wait until the markers of every client in NAMES
//                                                 (comma-separated) arrived, print the state
//   node peer.mjs until URL ROOM NEEDLE            wait until the text contains NEEDLE, print the state
//
// The state printed is {"text", "stateVector", "update"}, the last two base64 (Yjs v1 encodings).
// CLIENT_TEXT names the shared text (default "text").
// Every mode gives up after TIMEOUT_MS (exit 2) so a test never hangs on it.
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import WebSocket from 'ws'

const TIMEOUT_MS = Number(process.env.CLIENT_TIMEOUT_MS || 30000)
const [mode, url, room, ...rest] = process.argv.slice(2)

const doc = new Y.Doc()
const text = doc.getText(process.env.CLIENT_TEXT || 'text')
const provider = new WebsocketProvider(url, room, doc, { WebSocketPolyfill: WebSocket, disableBc: true })
provider.on('connection-close', (event) => {
  if (event && event.code >= 4400 && event.code < 4500) fail(`closed by the server: ${event.code} ${event.reason}`)
})
const timer = setTimeout(() => fail(`timed out in ${mode}; text=${JSON.stringify(text.toString())}`), TIMEOUT_MS)

function fail (message) {
  console.error(message)
  process.exit(2)
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

function until (condition) {
  return new Promise((resolve) => {
    const check = () => {
      if (condition()) {
        doc.off('update', check)
        resolve()
      }
    }
    doc.on('update', check)
    check()
  })
}

async function finish () {
  const b64 = (bytes) => Buffer.from(bytes).toString('base64')
  process.stdout.write(JSON.stringify({
    text: text.toString(),
    stateVector: b64(Y.encodeStateVector(doc)),
    update: b64(Y.encodeStateAsUpdate(doc))
  }) + '\n')
  provider.destroy()
  clearTimeout(timer)
  await sleep(50)
  process.exit(0)
}

await new Promise((resolve) => {
  if (provider.synced) return resolve()
  provider.on('sync', (isSynced) => { if (isSynced) resolve() })
})

if (mode === 'edit') {
  const [name, countText, namesText] = rest
  const count = Number(countText)
  for (let i = 0; i < count; i++) {
    const current = text.toString()
    const boundaries = [0]
    for (let at = 0; at < current.length; at++) if (current[at] === '>') boundaries.push(at + 1)
    text.insert(boundaries[Math.floor(Math.random() * boundaries.length)], `<${name}:${i}>`)
    await sleep(Math.random() * 10)
  }
  const markers = namesText.split(',').flatMap((n) => Array.from({ length: count }, (_, i) => `<${n}:${i}>`))
  await until(() => markers.every((m) => text.toString().includes(m)))
  await finish()
} else if (mode === 'until') {
  await until(() => text.toString().includes(rest[0]))
  await finish()
} else {
  fail(`unknown mode ${mode}`)
}
