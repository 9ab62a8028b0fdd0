// Sends raw messages (hex, one per argument) over a plain websocket and prints how it ends:
// {"code": n, "reason": "...", "received": k}. Gives up after 10 s (exit 2).
//
//   node raw.mjs URL HEX...
import WebSocket from 'ws'

const [url, ...messages] = process.argv.slice(2)
const ws = new WebSocket(url)
let received = 0
const timer = setTimeout(() => { console.error('timed out'); process.exit(2) }, 10000)
ws.on('message', () => { received++ })
ws.on('open', () => {
  for (const hex of messages) ws.send(Buffer.from(hex, 'hex'))
})
ws.on('close', (code, reason) => {
  clearTimeout(timer)
  process.stdout.write(JSON.stringify({ code, reason: reason.toString(), received }) + '\n')
})
ws.on('error', (error) => { console.error(String(error)) })
