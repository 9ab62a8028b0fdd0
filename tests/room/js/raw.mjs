// Sends raw messages (hex, one per argument) over a plain websocket and prints how it ends:
// {"code": n, "reason": "...", "received": k}. With --expect=N it closes (1000) itself once N
// messages arrived. Gives up after 10 s (exit 2).
//
//   node raw.mjs [--expect=N] URL HEX...
import WebSocket from 'ws'

const args = process.argv.slice(2)
const expect = args[0].startsWith('--expect=') ? Number(args.shift().slice(9)) : null
const [url, ...messages] = args
const ws = new WebSocket(url)
let received = 0
const timer = setTimeout(() => { console.error('timed out'); process.exit(2) }, 10000)
ws.on('message', () => {
  received++
  if (received === expect) ws.close(1000)
})
ws.on('open', () => {
  for (const hex of messages) ws.send(Buffer.from(hex, 'hex'))
})
ws.on('close', (code, reason) => {
  clearTimeout(timer)
  process.stdout.write(JSON.stringify({ code, reason: reason.toString(), received }) + '\n')
})
ws.on('error', (error) => { console.error(String(error)) })
