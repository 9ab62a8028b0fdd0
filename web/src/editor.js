// The collaborative editor page of `ystore serve`: a CodeMirror editor bound to the
// document's Y.Text "text", who is here (awareness), and whether your edits are saved.
// Rebuild with `npm ci && npm run build` in web/ (writes src/ystores/web/static/editor.js).
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import { yCollab, yUndoManagerKeymap } from 'y-codemirror.next'
import { EditorState } from '@codemirror/state'
import { EditorView, keymap, drawSelection } from '@codemirror/view'
import { defaultKeymap } from '@codemirror/commands'

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#17becf', '#e377c2', '#8c564b']
const config = JSON.parse(document.getElementById('ystores-config').textContent)

function wsBase () {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:'
  return scheme + '//' + location.host + config.base
}

function roomPath (room) {
  return room.split('/').map(encodeURIComponent).join('/')
}

function pickName () {
  let name = localStorage.getItem('ystores-name')
  if (!name) {
    name = 'Guest ' + Math.floor(100 + Math.random() * 900)
    localStorage.setItem('ystores-name', name)
  }
  return name
}

const doc = new Y.Doc()
const text = doc.getText('text')
const params = config.token ? { token: config.token } : {}
const provider = new WebsocketProvider(wsBase(), roomPath(config.room), doc, { params })
const awareness = provider.awareness
const color = COLORS[doc.clientID % COLORS.length]
awareness.setLocalStateField('user', { name: pickName(), color, colorLight: color + '33' })

// -- the editor --------------------------------------------------------------
const undoManager = new Y.UndoManager(text)
const view = new EditorView({
  state: EditorState.create({
    doc: text.toString(),
    extensions: [
      keymap.of([...yUndoManagerKeymap, ...defaultKeymap]),
      drawSelection(),
      EditorView.lineWrapping,
      EditorView.contentAttributes.of({ id: 'editor', 'aria-label': 'Document text' }),
      yCollab(text, awareness, { undoManager })
    ]
  }),
  parent: document.getElementById('editor-host')
})

// -- who is here ---------------------------------------------------------------
const people = document.getElementById('people')
const nameInput = document.getElementById('name')
nameInput.value = pickName()
nameInput.addEventListener('change', () => {
  const name = nameInput.value.trim() || pickName()
  localStorage.setItem('ystores-name', name)
  awareness.setLocalStateField('user', { ...awareness.getLocalState().user, name })
})

function describe (state) {
  const user = state.user
  if (typeof user === 'string') return { name: user, color: '#777' }
  if (user && typeof user.name === 'string') return { name: user.name, color: user.color || '#777' }
  return { name: 'Anonymous', color: '#777' }
}

function renderPeople () {
  people.replaceChildren()
  const states = [...awareness.getStates().entries()].sort(([a], [b]) => (a === doc.clientID ? -1 : b === doc.clientID ? 1 : a - b))
  for (const [id, state] of states) {
    const { name, color } = describe(state)
    const item = document.createElement('li')
    item.dataset.clientId = String(id)
    const dot = document.createElement('span')
    dot.className = 'dot'
    dot.style.background = color
    item.append(dot, document.createTextNode(id === doc.clientID ? `${name} (you)` : name))
    people.append(item)
  }
  document.getElementById('count').textContent = String(states.length)
}
awareness.on('change', renderPeople)
renderPeople()

// -- saved or not ----------------------------------------------------------------
// Saved means: the server's room holds every change made here and has written all it
// holds to its store (asked from /.ystores/status/ROOM after each local change).
const status = document.getElementById('status')
let dirty = false
let checking = null

function show (state, label) {
  status.dataset.state = state
  status.textContent = label
}

function localClock () {
  return Y.decodeStateVector(Y.encodeStateVector(doc)).get(doc.clientID) || 0
}

function base64Bytes (text) {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0))
}

async function checkSaved () {
  checking = null
  if (!provider.wsconnected || !provider.synced) return
  const wanted = localClock()
  const query = config.token ? '?token=' + encodeURIComponent(config.token) : ''
  try {
    const response = await fetch(config.base + '/.ystores/status/' + roomPath(config.room) + query, { cache: 'no-store' })
    const body = await response.json()
    if (body.error) {
      show('error', 'Not saved: ' + body.error)
      return
    }
    const held = body.state_vector ? Y.decodeStateVector(base64Bytes(body.state_vector)).get(doc.clientID) || 0 : 0
    if (body.unsaved === 0 && held >= wanted) {
      if (localClock() === wanted) {
        dirty = false
        show('saved', 'Saved')
      }
      return schedule(0)
    }
  } catch (error) {
    // The server is unreachable: the websocket's own state tells the user.
  }
  schedule(500)
}

function schedule (delay) {
  if (!dirty || checking !== null) return
  checking = setTimeout(checkSaved, delay)
}

doc.on('update', (update, origin) => {
  if (origin === provider) return // a change that came from the server
  dirty = true
  show('saving', 'Saving…')
  schedule(200)
})

provider.on('status', ({ status: state }) => {
  if (state === 'connected') show(dirty ? 'saving' : 'connecting', dirty ? 'Saving…' : 'Syncing…')
  else if (state === 'connecting') show('offline', 'Offline: reconnecting…')
  else show('offline', 'Offline')
})
provider.on('sync', (synced) => {
  if (!synced) return
  if (dirty) schedule(0)
  else show('saved', 'Saved')
})
provider.on('connection-close', (event) => {
  if (event && event.code >= 4400) show('error', `Refused by the server (${event.code}): ${event.reason}`)
})

window.ystoresDemo = { doc, provider, view, text }
