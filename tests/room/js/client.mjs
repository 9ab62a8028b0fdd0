// A real Yjs client (y-websocket's WebsocketProvider over `ws`) for the room tests.
//
//   node client.mjs edit URL ROOM NAME COUNT NAMES   insert COUNT markers <NAME:i>, wait until the
//                                                   markers of every client in NAMES (comma-separated)
//                                                   arrived, print {"text": ...}
//   node client.mjs read URL ROOM                   sync, print {"text": ...}
//   node client.mjs present URL ROOM USER           set awareness {user: USER}, print {"clientID": n},
//                                                   then stay connected until killed
//   node client.mjs watch URL ROOM USER             print {"seen": id} once a peer's awareness has
//                                                   user USER, then {"removed": id} once it is gone
//
// Every mode gives up after TIMEOUT_MS (exit 2) so a test never hangs on it.
// CLIENT_TEXT names the shared text (default "text"); CLIENT_PARAMS is a JSON object of
// query parameters for the room URL (a Jupyter server wants sessionId and token).
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import WebSocket from 'ws'

const TIMEOUT_MS = Number(process.env.CLIENT_TIMEOUT_MS || 30000)
const [mode, url, room, ...rest] = process.argv.slice(2)

const doc = new Y.Doc()
const text = doc.getText(process.env.CLIENT_TEXT || 'text')
const params = JSON.parse(process.env.CLIENT_PARAMS || '{}')
const provider = new WebsocketProvider(url, room, doc, { WebSocketPolyfill: WebSocket, disableBc: true, params })
provider.on('connection-close', (event) => {
  if (event && event.code >= 4400) fail(`closed by the server: ${event.code} ${event.reason}`)
})

const timer = setTimeout(() => fail(`timed out in ${mode}; text=${JSON.stringify(text.toString())}`), TIMEOUT_MS)

function fail (message) {
  console.error(message)
  process.exit(2)
}

function print (value) {
  process.stdout.write(JSON.stringify(value) + '\n')
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

function synced () {
  return new Promise((resolve) => {
    if (provider.synced) return resolve()
    provider.on('sync', (isSynced) => { if (isSynced) resolve() })
  })
}

function until (condition, target) {
  return new Promise((resolve) => {
    const check = () => {
      if (condition()) {
        target.off('update', check)
        target.off('change', check)
        resolve()
      }
    }
    target.on(mode === 'watch' ? 'change' : 'update', check)
    check()
  })
}

const CLOSE_WAIT_MS = 10000

async function finish (value) {
  print(value)
  clearTimeout(timer)
  // Exit only once the server has every update this client sent: wait until the socket
  // has handed all its queued bytes to the operating system, close it, and wait for the
  // server's answer to the close (it reads our messages in order, the close frame last).
  // Each wait is bounded, so a test never hangs on a server that does not answer.
  const ws = provider.ws
  const deadline = Date.now() + CLOSE_WAIT_MS
  while (ws && ws.readyState === WebSocket.OPEN && ws.bufferedAmount > 0 && Date.now() < deadline) {
    await sleep(5)
  }
  const closed = ws && ws.readyState !== WebSocket.CLOSED
    ? new Promise((resolve) => ws.once('close', resolve))
    : Promise.resolve()
  provider.destroy()
  await Promise.race([closed, sleep(Math.max(0, deadline - Date.now()))])
  process.exit(0)
}

await synced()

if (mode === 'edit') {
  const [name, countText, namesText] = rest
  const count = Number(countText)
  for (let i = 0; i < count; i++) {
    // Only between markers, so no marker is ever cut by another (in any client's view).
    const current = text.toString()
    const boundaries = [0]
    for (let at = 0; at < current.length; at++) if (current[at] === '>') boundaries.push(at + 1)
    const position = boundaries[Math.floor(Math.random() * boundaries.length)]
    text.insert(position, `<${name}:${i}>`)
    await sleep(Math.random() * 10)
  }
  const markers = namesText.split(',').flatMap((n) => Array.from({ length: count }, (_, i) => `<${n}:${i}>`))
  await until(() => markers.every((m) => text.toString().includes(m)), doc)
  await finish({ text: text.toString() })
} else if (mode === 'read') {
  await finish({ text: text.toString() })
} else if (mode === 'present') {
  provider.awareness.setLocalStateField('user', rest[0])
  print({ clientID: doc.clientID })
  clearTimeout(timer)
  setInterval(() => {}, 1000) // stay until killed
} else if (mode === 'watch') {
  const user = rest[0]
  const peer = () => {
    for (const [id, state] of provider.awareness.getStates()) {
      if (id !== doc.clientID && state.user === user) return id
    }
    return null
  }
  await until(() => peer() !== null, provider.awareness)
  const id = peer()
  print({ seen: id })
  await until(() => !provider.awareness.getStates().has(id), provider.awareness)
  await finish({ removed: id })
} else {
  fail(`unknown mode ${mode}`)
}
