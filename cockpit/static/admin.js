// Strom's admin UI: plain JavaScript over the REST API (/api/v1) and its websocket.
// Every value from the server reaches the page through textContent, never as HTML.
'use strict'

const API = '/api/v1'
const state = { token: sessionStorage.getItem('strom.token'), nip07: sessionStorage.getItem('strom.nip07') === '1', ws: null, retry: 0, refresh: null, lastRefresh: 0, cache: new Map(), page: {} }

// --- DOM helpers ------------------------------------------------------------------------------

function h (tag, attrs, ...children) {
  const el = document.createElement(tag)
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue
    if (key.startsWith('on')) el.addEventListener(key.slice(2), value)
    else if (key === 'dataset') Object.assign(el.dataset, value)
    else el.setAttribute(key, value === true ? '' : String(value))
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue
    el.append(child instanceof Node ? child : document.createTextNode(String(child)))
  }
  return el
}
const $ = (id) => document.getElementById(id)
const sat = (msat) => (Number(msat) / 1000).toLocaleString('en', { maximumFractionDigits: 3 }) + ' sat'
const kwh = (wh) => (Number(wh) / 1000).toLocaleString('en', { minimumFractionDigits: 3, maximumFractionDigits: 3 }) + ' kWh'
const human = (value) => String(value ?? '—').replace(/_/g, ' ') // awaiting_payment → awaiting payment
const when = (iso) => iso ? new Date(iso).toLocaleString('en-GB') : '—'
function toast (text) {
  let el = $('toast')
  if (!el) { el = h('div', { id: 'toast', role: 'status' }); document.body.append(el) }
  el.textContent = text
  clearTimeout(toast.timer)
  toast.timer = setTimeout(() => el.remove(), 4000)
}

// A new charger's OCPP password is in one API answer only: show it until the operator has
// copied it, in a dialog outside the view so that live refreshes do not wipe it.
function showPassword (chargerId, answer) {
  const old = $('ocpp-password')
  if (old) old.remove()
  const key = h('code', { id: 'ocpp-password-key', class: 'secret' }, answer.ocpp_password)
  const copied = h('span', { class: 'muted', 'aria-live': 'polite' })
  const dialog = h('dialog', { id: 'ocpp-password', 'aria-labelledby': 'ocpp-password-title' },
    h('h2', { id: 'ocpp-password-title' }, 'OCPP password for ' + chargerId),
    h('p', { class: 'warn' }, 'Copy it now: it is shown only this once. Strom keeps only its hash; a lost password can only be replaced by a new one.'),
    h('p', {}, 'Enter it in the charger\'s OCPP settings as the password (AuthorizationKey) for HTTP Basic auth; the user name is the charger id, ', h('span', { class: 'mono' }, chargerId), '.'),
    h('p', {}, key, ' ', h('button', {
      type: 'button',
      onclick: async () => {
        try { await navigator.clipboard.writeText(answer.ocpp_password); copied.textContent = 'copied' } catch (error) {
          getSelection().selectAllChildren(key) // no clipboard over plain http: select it for Ctrl-C
          copied.textContent = 'selected: press Ctrl-C'
        }
      }
    }, 'Copy'), ' ', copied),
    answer.ocpp_url ? h('p', {}, 'The charger\'s OCPP URL (central system address): ', h('code', { id: 'ocpp-url', class: 'secret' }, answer.ocpp_url)) : '',
    h('p', { class: 'muted' }, 'To set it over OCPP (ChangeConfiguration AuthorizationKey), in hex: ', h('span', { class: 'mono' }, answer.ocpp_password_hex)),
    h('p', {}, h('button', { class: 'primary', type: 'button', onclick: () => { dialog.close(); dialog.remove() } }, 'I have copied it')))
  dialog.addEventListener('cancel', (event) => event.preventDefault()) // Escape must not lose it
  document.body.append(dialog)
  dialog.showModal()
}

// online, reconnecting (after a restart of Strom, within its grace: no payments yet) or offline
function linkBadge (charger) {
  const link = charger.link || (charger.online ? 'online' : 'offline')
  const tone = { online: 'on', reconnecting: 'warn', offline: 'off' }[link] || 'off'
  return h('span', { class: 'badge ' + tone, 'data-link': link }, link)
}

function passwordBadge (charger) {
  if (charger.ocpp_password_set) return ''
  return h('span', {
    class: 'badge warn',
    'data-unauthenticated': '',
    title: charger.allow_unauthenticated
      ? 'allow_unauthenticated is set in its profile: anyone who reaches the OCPP port can connect as this charger'
      : 'No OCPP password: Strom admits it on its id alone (OCPP listens on loopback only)'
  }, 'no OCPP password')
}

// --- talking to the API -----------------------------------------------------------------------

async function authorization (method, url, body) {
  if (!state.nip07) return 'Bearer ' + state.token
  // The nonce makes two identical requests in one second two events: the server refuses an
  // event it has seen (replay), and the UI may well ask for the same thing twice in a second.
  const nonce = [...crypto.getRandomValues(new Uint8Array(8))].map((b) => b.toString(16).padStart(2, '0')).join('')
  const tags = [['u', new URL(url, location.href).href], ['method', method], ['nonce', nonce]]
  if (body) {
    const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(body))
    tags.push(['payload', [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('')])
  }
  const event = await window.nostr.signEvent({ kind: 27235, created_at: Math.floor(Date.now() / 1000), tags, content: '' })
  return 'Nostr ' + btoa(String.fromCharCode(...new TextEncoder().encode(JSON.stringify(event))))
}

async function api (method, path, data, raw) {
  const url = API + path
  const body = data === undefined ? undefined : JSON.stringify(data)
  const headers = { Authorization: await authorization(method, url, body) }
  if (body) headers['Content-Type'] = 'application/json'
  const response = await fetch(url, { method, headers, body })
  if (response.status === 401) { signOut('Your sign-in is no longer valid.'); throw new Error('unauthorized') }
  if (raw && response.ok) return response
  const answer = await response.json()
  if (!response.ok) throw new Error(answer.message || response.statusText)
  return answer
}

async function download (path, filename) {
  const response = await api('GET', path, undefined, true)
  const link = h('a', { href: URL.createObjectURL(await response.blob()), download: filename })
  document.body.append(link); link.click(); link.remove()
}

// --- sign-in ----------------------------------------------------------------------------------

async function signIn () {
  try {
    const me = await api('GET', '/me')
    $('who').textContent = me.actor + (me.scope === 'read' ? ' (read-only)' : '')
    $('signin').hidden = true
    $('nav').hidden = false
    $('view').hidden = false
    connectLive()
    route()
  } catch (error) {
    if (error.message !== 'unauthorized') showSignIn(error.message)
  }
}

function showSignIn (message) {
  $('signin').hidden = false
  $('nav').hidden = true
  $('view').hidden = true
  $('signin-error').textContent = message || ''
  firstRun()
}

// The setup password (cockpit/firstrun.py): before the first token exists, or always when it
// comes from the environment (on Umbrel: the app's password).
async function firstRun () {
  try {
    const response = await fetch('/admin/setup', { cache: 'no-store' })
    const setup = await response.json()
    $('first-run').hidden = !setup.accepting
    if (!setup.accepting) return
    $('first-run-title').textContent = setup.first ? 'First run' : 'Sign in with the setup password'
    $('first-run-text').textContent = (setup.first ? 'Nobody has signed in yet. ' : '') + (setup.password_from === 'environment'
      ? 'Enter the setup password: on Umbrel, the password Umbrel shows for this app.'
      : 'Enter the setup password Strom wrote to its log (docker compose logs strom).')
  } catch (error) { $('first-run').hidden = true }
}

async function setupSignIn () {
  const response = await fetch('/admin/setup', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ password: $('setup-password').value }) })
  const answer = await response.json().catch(() => ({}))
  if (response.status !== 201) return showSignIn(answer.message || 'Sign-in failed (' + response.status + ')')
  $('setup-password').value = ''
  state.token = answer.token
  state.nip07 = false
  state.welcome = answer
  sessionStorage.setItem('strom.token', state.token)
  if (location.hash && location.hash !== '#/') location.hash = '#/'
  signIn()
}

function signOut (message) {
  sessionStorage.removeItem('strom.token')
  sessionStorage.removeItem('strom.nip07')
  state.token = null
  state.nip07 = false
  if (state.ws) { state.ws.onclose = null; state.ws.close() }
  state.ws = null
  showSignIn(message)
}

// --- live updates -----------------------------------------------------------------------------

async function connectLive () {
  if (state.ws) return
  const ws = new WebSocket(location.origin.replace(/^http/, 'ws') + API + '/ws')
  state.ws = ws
  ws.onopen = async () => {
    ws.send(JSON.stringify({ type: 'auth', authorization: await authorization('GET', API + '/ws') }))
  }
  ws.onmessage = (message) => {
    const event = JSON.parse(message.data)
    if (event.type === 'ready') {
      state.retry = 0
      $('live').textContent = 'live'
      $('live').className = 'badge on'
      return
    }
    if (event.type === 'payment') toast('Payment received: ' + sat(event.amount_msat) + ' on ' + event.charger_id)
    scheduleRefresh()
  }
  ws.onclose = () => {
    state.ws = null
    $('live').textContent = 'offline'
    $('live').className = 'badge off'
    if (!state.token && !state.nip07) return
    state.retry = Math.min(state.retry + 1, 6)
    setTimeout(connectLive, 500 * 2 ** state.retry)
  }
}

function scheduleRefresh () {
  // Bursts of events (a session start is several, a charging session one a second) give at
  // most one reload of what is on screen per second.
  if (state.refresh) return
  const wait = Math.max(150, 1000 - (Date.now() - state.lastRefresh))
  state.refresh = setTimeout(() => {
    state.refresh = null
    state.lastRefresh = Date.now()
    route(true)
  }, wait)
}

// What does not change with live events (sticker images, the status event as the relays hold
// it) is fetched once per visit of a page, not on every refresh.
async function cached (key, load) {
  if (!state.cache.has(key)) state.cache.set(key, load())
  try { return await state.cache.get(key) } catch (error) { state.cache.delete(key); throw error }
}

// --- views ------------------------------------------------------------------------------------

function connectorRow (charger, connector, readOnly) {
  const actions = []
  if (connector.session_id) {
    actions.push(h('button', {
      class: 'danger',
      'data-stop': connector.session_id,
      disabled: readOnly,
      onclick: async (event) => {
        event.target.disabled = true
        try {
          await api('POST', '/sessions/' + connector.session_id + '/stop')
          toast('Stopping session ' + connector.session_id)
        } catch (error) { toast(error.message); event.target.disabled = false }
      }
    }, 'Stop session'))
  }
  return h('tr', { dataset: { connector: connector.connector_id } },
    h('td', {}, String(connector.connector_id)),
    h('td', {}, h('span', { class: 'badge ' + connector.status, 'data-status': '' }, connector.status),
      connector.enabled ? '' : h('span', { class: 'badge off' }, 'disabled')),
    h('td', {}, connector.session_id ? h('a', { href: '#/sessions/' + connector.session_id }, connector.session_id) : '—'),
    h('td', {}, actions))
}

// While the lightning node does not answer, Strom refuses payments: say so first, with why.
function lightningBanner (node) {
  if (node.state === 'up') return ''
  const since = new Date(node.since).toLocaleTimeString('en-GB', { hour: '2-digit', minute: '2-digit' })
  return h('div', { id: 'lightning-down', class: 'banner', role: 'alert' },
    h('b', {}, 'Lightning node unreachable since ' + since), ': ' + (node.reason || 'no answer yet'),
    h('p', {}, 'Payments and refunds are refused (drivers are told nothing was charged) until it answers. ' +
      'Strom retries by itself' + (node.next_retry_s ? ', next in ' + Math.max(1, Math.round(node.next_retry_s)) + ' s' : '') +
      '; nothing needs a restart.'))
}

async function dashboard (view) {
  const today = new Date().toISOString().slice(0, 10) + 'T00:00:00Z'
  const [chargers, totals, running, pending, node] = await Promise.all([
    api('GET', '/chargers'),
    api('GET', '/ledger/totals?since=' + encodeURIComponent(today)),
    api('GET', '/sessions?state=charging&limit=500'),
    api('GET', '/pending-chargers'),
    api('GET', '/lightning')
  ])
  const day = totals.totals[0] || { paid_msat: 0, energy_wh: 0, refunded_msat: 0 }
  const readOnly = $('who').textContent.endsWith('(read-only)')
  view.replaceChildren(
    h('h1', {}, 'Dashboard'),
    lightningBanner(node),
    h('div', { class: 'stats' },
      h('div', { class: 'stat' }, 'Charging now', h('b', { id: 'stat-charging' }, String(running.items.length))),
      h('div', { class: 'stat' }, 'Energy today', h('b', {}, kwh(day.energy_wh + running.items.reduce((sum, s) => sum + s.energy_wh, 0)))),
      h('div', { class: 'stat' }, 'Received today', h('b', {}, sat(day.paid_msat))),
      h('div', { class: 'stat' }, 'Refunded today', h('b', {}, sat(day.refunded_msat))),
      h('div', { class: 'stat', title: node.alias ? node.backend + ' ' + node.alias : node.backend }, 'Lightning node',
        h('b', { id: 'stat-lightning', class: node.state === 'up' ? 'ok' : 'error' }, node.state))),
    pending.items.length ? h('section', { id: 'pending' }, h('h2', {}, 'Waiting for approval'),
      h('p', { class: 'muted' }, 'These chargers connected but are not configured. Add one to let it in, or dismiss it.'),
      pending.items.map((p) => h('div', { class: 'card', dataset: { pending: p.charger_id } },
        h('p', {}, h('b', {}, p.charger_id), ' from ' + p.remote_address + ' · ' + (p.boot ? p.boot.vendor + ' ' + p.boot.model : 'no boot yet') +
          ' · last seen ' + when(p.last_seen) + (p.presented_credentials ? '' : ' · sent no password')),
        chargerForm(p.charger_id, readOnly),
        h('button', { type: 'button', disabled: readOnly, onclick: async () => { try { await api('POST', '/pending-chargers/' + encodeURIComponent(p.charger_id) + '/dismiss'); route(true) } catch (e) { toast(e.message) } } }, 'Dismiss')))) : '',
    state.welcome ? welcome(state.welcome, chargers.items.length) : '',
    h('details', { id: 'add-charger', open: Boolean(state.welcome) && !chargers.items.length }, h('summary', {}, 'Add a charger'), chargerForm('', readOnly)),
    h('div', { class: 'cards' }, chargers.items.map((charger) =>
      h('div', { class: 'card', dataset: { charger: charger.charger_id } },
        h('h2', {}, h('a', { href: '#/chargers/' + charger.charger_id }, charger.name), ' ',
          linkBadge(charger), ' ', passwordBadge(charger), ' ', securityBadge(charger)),
        h('p', { class: 'muted' }, charger.charger_id + ' · ' + charger.energy_price + (charger.ocpp_version ? ' · ' + versionLabel(charger.ocpp_version) : '')),
        h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, '#'), h('th', {}, 'Status'), h('th', {}, 'Session'), h('th', {}, ''))),
          h('tbody', {}, charger.connectors.map((c) => connectorRow(charger, c, readOnly))))))))
}

// After the first-run sign-in: the token to sign in with next time, and the next step.
function welcome (answer, chargers) {
  return h('section', { id: 'welcome', class: 'card' },
    h('h2', {}, 'Welcome'),
    h('p', {}, 'You are signed in with the API token ', h('b', {}, answer.name), '. Keep it to sign in again (or use the setup password):'),
    h('p', {}, h('code', { id: 'owner-token', class: 'secret' }, answer.token)),
    h('p', {}, chargers ? 'Your chargers are below.' : 'Next: add your charger below. Strom then shows its OCPP URL and password once, to enter in the charger\'s OCPP settings.'),
    h('p', {}, h('button', { type: 'button', onclick: () => { state.welcome = null; $('welcome').remove() } }, 'Done')))
}

function chargerForm (chargerId, readOnly) {
  // A new charge point: what its profile file needs. It may connect at once.
  const field = (name, label, attrs) => h('label', {}, label, h('input', { name, required: true, ...attrs }))
  const error = h('p', { class: 'error', role: 'alert' })
  return h('form', {
    class: 'row add-charger',
    onsubmit: async (event) => {
      event.preventDefault()
      const data = Object.fromEntries(new FormData(event.target))
      const connectors = Array.from({ length: Number(data.connectors) }, (_, i) => ({ id: i + 1, max_power_kw: data.max_power_kw }))
      const profile = {
        name: data.name,
        location: { lat: Number(data.lat), lon: Number(data.lon), address: data.address },
        connectors,
        tariff: { per_kwh_sat: data.per_kwh_sat }
      }
      try {
        const answer = await api('PUT', '/chargers/' + encodeURIComponent(data.charger_id), profile)
        toast('Charger ' + data.charger_id + ' added')
        if (answer.ocpp_password) showPassword(data.charger_id, answer)
        route(true)
      } catch (e) { error.textContent = e.message }
    }
  },
  field('charger_id', 'Charger id', { value: chargerId, readonly: chargerId ? true : null, pattern: '[A-Za-z0-9._\\-]{1,48}', size: 14 }),
  field('name', 'Name', { size: 18 }),
  h('label', {}, 'Address', h('input', { name: 'address', size: 22 })),
  field('lat', 'Latitude', { inputmode: 'decimal', size: 9 }),
  field('lon', 'Longitude', { inputmode: 'decimal', size: 9 }),
  field('connectors', 'Connectors', { type: 'number', min: 1, max: 99, value: 1, size: 3 }),
  field('max_power_kw', 'kW each', { inputmode: 'decimal', value: '11', size: 5 }),
  field('per_kwh_sat', 'sat per kWh', { inputmode: 'decimal', size: 7 }),
  h('button', { class: 'primary', type: 'submit', disabled: readOnly }, 'Add charger'), error)
}

// The tariff: prices, idle fee, and where the energy price comes from (the profile's static
// price, its time-of-use windows, or a provider's formula: [tariff.dynamic]). What a driver would
// pay is previewed as the operator types; the API's validation errors are shown as they are.
const TARIFF_FIELDS = [['per_kwh_sat', 'sat per kWh'], ['per_minute_sat', 'sat per minute'], ['session_fee_sat', 'session fee (sat)'], ['min_prepay_sat', 'min prepay (sat)'], ['max_prepay_sat', 'max prepay (sat)'], ['idle_per_minute_sat', 'idle fee (sat per minute)'], ['idle_grace_minutes', 'idle grace (minutes)']]
const MODES = [['static', 'Static (sat per kWh)'], ['time_of_use', 'Time of use (windows)'], ['dynamic', 'Dynamic (price provider)']]
const PROVIDERS = [['awattar', 'aWATTar (DE-LU, AT)'], ['energidataservice', 'Energi Data Service (DK1, DK2)'], ['entsoe', 'ENTSO-E (a bidding zone)'], ['octopus', 'Octopus Agile (product/tariff)']]
const FIAT_FIELDS = [['per_kwh', 'per kWh'], ['per_minute', 'per minute'], ['session_fee', 'session fee'], ['idle_per_minute', 'idle fee per minute']]
const FORMULA_FIELDS = [['area', 'Area', 'DE-LU'], ['currency', 'Currency', 'EUR'], ['grid_fees', 'Grid fees (per kWh)', '0'], ['taxes', 'Taxes (per kWh)', '0'], ['margin', 'Margin (0.15 = 15 %)', '0'], ['min', 'Min (per kWh)', 'none'], ['max', 'Max (per kWh)', 'none'], ['token', 'Token reference', 'env:ENTSOE_TOKEN']]

function tariffEditor (chargerId, tariff) {
  const input = (name, value, attrs) => h('input', { name, inputmode: 'decimal', value: value ?? '', size: 10, ...attrs })
  const inputs = Object.fromEntries(TARIFF_FIELDS.map(([name]) => [name, input(name, tariff[name])]))
  const formula = tariff.dynamic || {}
  const mode = h('select', { name: 'mode', id: 'tariff-mode' }, MODES.map(([value, label]) => h('option', { value, selected: tariff.mode === value }, label)))
  const provider = h('select', { name: 'provider' }, PROVIDERS.map(([value, label]) => h('option', { value, selected: formula.provider === value }, label)))
  const formulaInputs = Object.fromEntries(FORMULA_FIELDS.map(([name, , placeholder]) => [name, input(name, formula[name], { placeholder, inputmode: name === 'area' || name === 'currency' || name === 'token' ? 'text' : 'decimal' })]))
  const refreshAt = input('refresh_at', (formula.refresh_at || ['12:15', '17:00']).join(', '), { inputmode: 'text', placeholder: '12:15, 17:00' })
  const timeZone = input('time_zone', tariff.time_zone, { inputmode: 'text', size: 16 })
  const windows = h('textarea', { name: 'time_of_use', rows: 4, placeholder: '07:00-22:00 = 450\n22:00-07:00 = 250' }, Object.entries(tariff.time_of_use).map(([w, price]) => w + ' = ' + price).join('\n'))
  const tou = h('fieldset', { id: 'tariff-tou' }, h('legend', {}, 'Time-of-use windows (sat per kWh; sat per kWh above holds outside them)'),
    h('label', {}, 'Time zone', timeZone), h('label', { class: 'wide' }, 'Windows, one per line: HH:MM-HH:MM = sat per kWh', windows))
  const dynamic = h('fieldset', { id: 'tariff-dynamic' }, h('legend', {}, 'Dynamic price: (spot + grid fees + taxes) × (1 + margin), kept between min and max, in the currency per kWh'),
    h('label', {}, 'Provider', provider), FORMULA_FIELDS.map(([name, label]) => h('label', {}, label, formulaInputs[name])),
    h('label', {}, 'Fetch after (UTC)', refreshAt))
  // Components priced in a currency instead of sats (each replaces its sat price above, which
  // then stays 0), converted at the live BTC rate when paid or when billed.
  const fiatTerms = tariff.fiat || {}
  const fiatCurrency = input('fiat_currency', fiatTerms.currency, { inputmode: 'text', size: 4, placeholder: 'EUR' })
  const fiatInputs = Object.fromEntries(FIAT_FIELDS.map(([name]) => [name, input('fiat_' + name, fiatTerms[name], { placeholder: 'none' })]))
  const convert = h('select', { name: 'convert' }, [['at_payment', 'at payment (frozen)'], ['at_billing', 'at billing']].map(([value, label]) => h('option', { value, selected: (fiatTerms.convert || 'at_payment') === value }, label)))
  const fiat = h('fieldset', { id: 'tariff-fiat' }, h('legend', {}, 'Prices in a currency (optional): converted to sats at the live BTC rate'),
    h('label', {}, 'Currency', fiatCurrency), FIAT_FIELDS.map(([name, label]) => h('label', {}, label, fiatInputs[name])),
    h('label', {}, 'Converted', convert))
  const quote = h('p', { id: 'quote', 'aria-live': 'polite' })
  const error = h('p', { class: 'error', role: 'alert', id: 'tariff-error' })
  const shown = () => { tou.hidden = mode.value !== 'time_of_use'; dynamic.hidden = mode.value !== 'dynamic' }
  // What the operator typed and did not save survives a re-render of the page (a live refresh
  // that was already under way when they began).
  const controls = [...Object.values(inputs), mode, provider, ...Object.values(formulaInputs), refreshAt, timeZone, windows, fiatCurrency, ...Object.values(fiatInputs), convert]
  const draft = state.page.tariffDraft
  if (draft) controls.forEach((control, i) => { control.value = draft[i] })
  const decimal = (value) => value.trim() === '' ? null : value.trim()
  const body = () => {
    const data = Object.fromEntries(TARIFF_FIELDS.map(([name]) => [name, inputs[name].value.trim()]))
    data.idle_grace_minutes = data.idle_grace_minutes === '' ? 0 : Number(data.idle_grace_minutes)
    data.mode = mode.value
    if (mode.value === 'time_of_use') {
      data.time_zone = timeZone.value.trim() || 'UTC'
      data.time_of_use = Object.fromEntries(windows.value.split('\n').map((line) => line.trim()).filter(Boolean)
        .map((line) => { const [w, price] = line.split('='); return [(w || '').trim(), (price || '').trim()] }))
    }
    if (mode.value === 'dynamic') {
      const f = formulaInputs
      data.dynamic = {
        provider: provider.value,
        area: f.area.value.trim(),
        grid_fees: decimal(f.grid_fees.value) ?? '0',
        taxes: decimal(f.taxes.value) ?? '0',
        margin: decimal(f.margin.value) ?? '0',
        min: decimal(f.min.value),
        max: decimal(f.max.value),
        token: f.token.value.trim(),
        refresh_at: refreshAt.value.split(',').map((t) => t.trim()).filter(Boolean)
      }
      if (f.currency.value.trim()) data.dynamic.currency = f.currency.value.trim()
    }
    if (fiatCurrency.value.trim()) {
      data.fiat = { currency: fiatCurrency.value.trim().toUpperCase(), convert: convert.value }
      for (const [name] of FIAT_FIELDS) data.fiat[name] = decimal(fiatInputs[name].value)
    } else if (tariff.fiat) {
      data.fiat = { currency: null } // no currency: the sat prices above apply again
    }
    return data
  }
  const show = (answer) => {
    const energy = answer.mode === 'dynamic' ? ' (energy at ' + answer.per_kwh_sat + ' sat/kWh here; the provider\'s price is billed, see Prices)' : answer.mode === 'time_of_use' ? ' (energy at the price outside the windows)' : ''
    quote.textContent = answer.quotes.map((q) => (q.energy_wh / 1000) + ' kWh: ' + Number(q.total_sat).toLocaleString('en', { maximumFractionDigits: 3 }) + ' sat (' + q.minutes + ' min)').join(' · ') + energy
  }
  let timer = null
  const preview = () => {
    state.page.editing = true // live refreshes leave the page alone until it is saved
    state.page.tariffDraft = controls.map((control) => control.value)
    shown()
    clearTimeout(timer)
    timer = setTimeout(async () => {
      try { show(await api('POST', '/chargers/' + chargerId + '/tariff/preview', body())); error.textContent = '' } catch (e) { error.textContent = e.message }
    }, 250)
  }
  show(tariff)
  shown()
  return h('form', {
    class: 'row',
    id: 'tariff',
    oninput: preview,
    onchange: preview,
    onsubmit: async (event) => {
      event.preventDefault()
      try {
        show(await api('PUT', '/chargers/' + chargerId + '/tariff', body()))
        state.page.editing = false
        state.page.tariffDraft = null
        error.textContent = ''
        toast('Tariff saved')
        for (const key of [...state.cache.keys()]) if (key.startsWith('sticker:' + chargerId + ':') || key === 'prices:' + chargerId) state.cache.delete(key) // the sticker and the prices show it
        const prices = $('prices')
        if (prices) prices.replaceWith(pricesSection(chargerId))
      } catch (e) { error.textContent = e.message }
    }
  }, TARIFF_FIELDS.map(([name, label]) => h('label', {}, label, inputs[name])),
  h('label', {}, 'Energy price', mode), tou, dynamic, fiat,
  h('button', { class: 'primary', type: 'submit' }, 'Save tariff'),
  h('div', {}, h('span', { class: 'muted' }, 'A driver pays: '), quote), error)
}

async function stickerImage (chargerId, connectorId) {
  const response = await api('GET', '/chargers/' + chargerId + '/sticker.svg?connector=' + connectorId, undefined, true)
  return URL.createObjectURL(await response.blob())
}

async function chargerView (view, chargerId) {
  const [charger, tariff, log, status, firmware, cards] = await Promise.all([
    api('GET', '/chargers/' + chargerId),
    api('GET', '/chargers/' + chargerId + '/tariff'),
    api('GET', '/chargers/' + chargerId + '/ocpp-log?limit=30'),
    cached('status:' + chargerId, () => api('GET', '/nostr/chargers/' + chargerId + '/status-event')).catch(() => ({ event: null, npub: null })),
    api('GET', '/chargers/' + chargerId + '/firmware'),
    api('GET', '/chargers/' + chargerId + '/cards')
  ])
  const readOnly = readOnlyUser()
  const command = (label, path, data) => h('button', {
    onclick: async () => {
      try { const a = await api('POST', '/chargers/' + chargerId + path, data); toast(label + ': ' + a.status + (a.detail ? ' (' + a.detail + ')' : '')) } catch (e) { toast(e.message) }
    }
  }, label)
  const ocpp201 = charger.ocpp_version === OCPP201 // the device model and security events are 2.0.1's
  const security = ocpp201 ? securityEvents(chargerId, charger.security_events) : { section: '', badge: '' }
  const stickers = await Promise.all(charger.connectors.map(async (c) => h('div', { class: 'sticker' },
    h('p', {}, 'Connector ' + c.connector_id),
    h('img', { alt: 'QR sticker of connector ' + c.connector_id, src: await cached('sticker:' + chargerId + ':' + c.connector_id, () => stickerImage(chargerId, c.connector_id)) }),
    h('p', {}, h('button', { onclick: () => download('/chargers/' + chargerId + '/sticker.pdf?connector=' + c.connector_id, chargerId + '-' + c.connector_id + '.pdf') }, 'PDF')))))
  const lastWeek = span(dayStart(-7), new Date(Math.floor(Date.now() / 60000) * 60000))
  const availability = await cached('availability:' + chargerId, () => serverChart('/reports/availability.svg?' + lastWeek + '&charger_id=' + encodeURIComponent(chargerId), 'availability'))
  view.replaceChildren(
    h('h1', {}, charger.name, ' ', linkBadge(charger), ' ', passwordBadge(charger), ' ', security.badge),
    h('p', { class: 'muted' }, charger.address + ' · ', h('span', { id: 'ocpp-version' }, versionLabel(charger.ocpp_version)), ' · ' + charger.connection + (charger.boot ? ' · ' + charger.boot.vendor + ' ' + charger.boot.model : '') +
      ' · OCPP messages in/out ' + charger.messages_received + '/' + charger.messages_sent),
    h('h2', {}, 'Connectors'),
    h('table', {}, h('tbody', {}, charger.connectors.map((c) => {
      const row = connectorRow(charger, c, false)
      row.append(h('td', {}, h('button', {
        onclick: async () => { try { await api('POST', '/chargers/' + chargerId + '/connectors/' + c.connector_id + '/availability', { enabled: !c.enabled }); route(true) } catch (e) { toast(e.message) } }
      }, c.enabled ? 'Disable' : 'Enable'), ' ', command('Unlock', '/commands/unlock', { connector_id: c.connector_id })))
      return row
    }))),
    h('div', { class: 'toolbar' }, command('Soft reset', '/commands/reset', { kind: 'soft' }), command('Hard reset', '/commands/reset', { kind: 'hard' }), command('Ask for status', '/commands/trigger-status', {}),
      h('button', {
        disabled: $('who').textContent.endsWith('(read-only)'),
        onclick: async () => {
          if (!confirm('Make a new OCPP password for ' + chargerId + '? Its next connection needs the new one; the current connection stays.')) return
          try { showPassword(chargerId, await api('POST', '/chargers/' + chargerId + '/ocpp-password')); route(true) } catch (e) { toast(e.message) }
        }
      }, 'New OCPP password')),
    security.section,
    h('h2', {}, 'Tariff'), tariffEditor(chargerId, tariff),
    h('h2', {}, 'Recent sessions'), h('div', { class: 'scroll' }, sessionTable(charger.recent_sessions)),
    h('h2', {}, 'Availability, last 7 days'), h('div', { class: 'charts wide' }, availability),
    ocpp201 ? deviceModel(chargerId, charger.variables) : '',
    pricesSection(chargerId),
    powerSection(chargerId, readOnly),
    cardsSection(chargerId, cards, readOnly),
    firmwareSection(chargerId, firmware, readOnly),
    certificatesSection(chargerId, readOnly),
    h('h2', {}, 'Sticker'), h('div', { class: 'cards' }, stickers),
    h('h2', {}, 'Nostr'),
    h('p', {}, h('span', { class: 'mono' }, status.npub || charger.npub || '—'), ' ', h('button', {
      onclick: async () => { try { const a = await api('POST', '/nostr/chargers/' + chargerId + '/publish-status'); toast(a.accepted ? 'Status published' : 'No relay took the status'); state.cache.delete('status:' + chargerId); route(true) } catch (e) { toast(e.message) } }
    }, 'Publish status now')),
    h('pre', {}, status.event ? JSON.stringify(status.event, null, 2) : 'No status event on the relays yet.'),
    h('h2', {}, 'OCPP log'),
    h('pre', { id: 'ocpp-log' }, log.frames.map((f) => when(f.at) + ' ' + (f.direction === 'in' ? '←' : '→') + ' ' + f.frame).join('\n') || 'No frames yet.'))
}

// --- charger page: power, cards, firmware and logs, root certificates -------------------------
// What asks the charger itself (its composite schedule, its certificates) is asked once per
// visit of the page and again on "Refresh", never on every live refresh; what Strom knows
// (statuses, files, cards) follows the live refreshes. Read-only tokens see no change controls.

// A section that fills in when its answer comes (the rest of the page does not wait for a
// charger that is slow to answer). load() never rejects: an error is an answer too.
function pending (key, load, render) {
  const box = h('div', { 'aria-live': 'polite' }, h('p', { class: 'muted' }, 'Asking the charger…'))
  cached(key, () => load().catch((e) => ({ error: e.message }))).then((answer) => {
    box.replaceChildren(answer.error ? h('p', { class: 'error', role: 'alert' }, answer.error) : render(answer))
  })
  return box
}

// Runs an API call from a form or button: the answer's status (and detail) or the error, shown.
function commandLine (id) {
  const line = h('p', { id, 'aria-live': 'polite' })
  const page = state.page
  if (page[id]) { line.textContent = page[id].text; line.className = page[id].error ? 'error' : '' }
  const show = (text, error) => { page[id] = { text, error }; line.textContent = text; line.className = error ? 'error' : '' }
  return { line, show }
}

const answerText = (label, a) => label + ': ' + a.status + (a.detail ? ' (' + a.detail + ')' : '')
const kw = (w) => (Number(w) / 1000).toLocaleString('en', { maximumFractionDigits: 3 }) + ' kW'

function refreshButton (key) {
  return h('button', { type: 'button', class: 'refresh', onclick: () => { state.cache.delete(key); route(true) } }, 'Refresh')
}

// A field whose value survives live refreshes while the page is open.
function kept (name, attrs) {
  const values = state.page.fields || (state.page.fields = {})
  return h('input', { name, value: values[name] ?? attrs.value ?? '', ...attrs, oninput: (event) => { values[name] = event.target.value } })
}

function keptSelect (name, options) {
  const values = state.page.fields || (state.page.fields = {})
  return h('select', { name, onchange: (event) => { values[name] = event.target.value } },
    options.map(([value, label]) => h('option', { value, selected: (values[name] ?? options[0][0]) === value }, label)))
}

function powerSection (chargerId, readOnly) {
  const key = 'schedule:' + chargerId
  const result = commandLine('power-result')
  const setLimit = async (limit) => {
    try {
      const answer = await api('PUT', '/chargers/' + chargerId + '/site-limit', { limit_kw: limit })
      result.show(answerText(limit === null ? 'Site limit removed' : 'Site limit ' + answer.limit_kw + ' kW', answer) + (answer.restart_required ? '; takes effect at the next start' : ''))
      if (state.page.fields) delete state.page.fields.limit_kw
      state.cache.delete(key)
      route(true)
    } catch (e) { result.show(e.message, true) }
  }
  const form = readOnly ? '' : h('form', {
    class: 'row',
    id: 'site-limit',
    onsubmit: (event) => { event.preventDefault(); setLimit(new FormData(event.target).get('limit_kw').trim()) }
  }, h('label', {}, 'Site limit (kW)', kept('limit_kw', { inputmode: 'decimal', size: 7, required: true, placeholder: 'e.g. 7.4' })),
  h('button', { class: 'primary', type: 'submit' }, 'Set limit'),
  h('button', { type: 'button', id: 'clear-limit', onclick: () => setLimit(null) }, 'Remove limit'))
  return h('section', { id: 'power' }, h('h2', {}, 'Power'),
    h('p', { class: 'muted' }, 'The site limit caps the whole charger (written to its profile, sent at once and after every boot). The composite schedule is what the charger says it allows now.'),
    form, result.line,
    h('div', { class: 'toolbar' }, h('b', {}, 'Composite schedule'), refreshButton(key)),
    pending(key, () => api('GET', '/chargers/' + chargerId + '/composite-schedule?connector_id=0&duration_s=3600'), scheduleView))
}

function scheduleView (s) {
  const head = h('p', { id: 'site-limit-now' }, 'Site limit: ' + (s.site_limit_kw === null ? 'none' : Number(s.site_limit_kw) + ' kW') + ' · charger: ' + s.status + (s.detail ? ' (' + s.detail + ')' : ''))
  if (!s.periods.length) return h('div', {}, head, h('p', { class: 'muted' }, 'No schedule (the charger set no limit, or did not answer).'))
  const duration = s.duration_s || 3600
  const ends = s.periods.map((p, i) => i + 1 < s.periods.length ? s.periods[i + 1].start_s : duration)
  const top = Math.max(...s.periods.map((p) => p.limit_w), 1)
  const svgNs = 'http://www.w3.org/2000/svg'
  const svg = (tag, attrs, ...children) => {
    const el = document.createElementNS(svgNs, tag)
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v))
    el.append(...children)
    return el
  }
  const width = 600
  const height = 120
  const bars = s.periods.map((p, i) => {
    const x = width * p.start_s / duration
    const w = Math.max(1, width * (Math.min(ends[i], duration) - p.start_s) / duration)
    const barHeight = Math.max(2, (height - 20) * p.limit_w / top)
    const bar = svg('rect', { x, y: height - barHeight, width: w, height: barHeight, fill: '#f7931a', 'data-limit-w': p.limit_w })
    bar.append(svg('title', {}, 'from ' + Math.round(p.start_s / 60) + ' min: ' + kw(p.limit_w)))
    return svg('g', {}, bar, svg('text', { x: x + 4, y: height - barHeight - 4, 'font-size': 12 }, kw(p.limit_w)))
  })
  const chart = svg('svg', { id: 'schedule-chart', viewBox: '0 0 ' + width + ' ' + height, width: '100%', height, role: 'img', 'aria-label': 'power allowed over the next ' + Math.round(duration / 60) + ' minutes' }, ...bars)
  return h('div', {}, head, chart,
    h('table', { id: 'schedule' }, h('thead', {}, h('tr', {}, h('th', {}, 'From'), h('th', { class: 'num' }, 'Limit'))),
      h('tbody', {}, s.periods.map((p) => h('tr', {}, h('td', {}, '+' + Math.round(p.start_s / 60) + ' min'), h('td', { class: 'num' }, kw(p.limit_w)))))))
}

// Prices: the energy prices ahead as the API gives them (a static tariff: its price as one flat
// day), bars like the Power section's and a table; a dynamic tariff's provider health beside.
function pricesSection (chargerId) {
  const key = 'prices:' + chargerId
  return h('section', { id: 'prices' }, h('h2', {}, 'Prices'),
    h('div', { class: 'toolbar' }, h('b', {}, 'Energy prices, next 24 hours'), refreshButton(key)),
    pending(key, () => api('GET', '/chargers/' + chargerId + '/prices?hours=24'), pricesView),
    soldSection(chargerId))
}

// A day's price schedule beside the energy sold at each price (GET …/reports/sold and its
// chart): the chart has every interval, the table those in which something was sold.
function soldSection (chargerId) {
  const day = kept('sold_day', { type: 'date', value: dayStart(0).toISOString().slice(0, 10), required: true })
  const box = h('div', { 'aria-live': 'polite' })
  const load = () => {
    const query = '?day=' + encodeURIComponent(day.value)
    const base = '/chargers/' + encodeURIComponent(chargerId) + '/reports/sold'
    box.replaceChildren(h('p', { class: 'muted' }, 'Loading…'))
    cached('sold:' + chargerId + ':' + day.value, async () => {
      const [report, chart] = await Promise.all([api('GET', base + query), serverChart(base + '.svg' + query, 'sold')])
      return { report, chart }
    }).then(({ report, chart }) => box.replaceChildren(soldView(report, chart)))
      .catch((e) => box.replaceChildren(h('p', { class: 'error', role: 'alert' }, e.message)))
  }
  day.addEventListener('change', load)
  load()
  return h('div', { id: 'sold' },
    h('div', { class: 'toolbar' }, h('b', {}, 'Prices and energy sold'), h('label', {}, 'Day (UTC)', day)),
    box)
}

const price = (msat) => msat === null ? '—' : sat(msat) + '/kWh'

function soldView (report, chart) {
  const sold = report.intervals.filter((i) => i.energy_wh > 0)
  return h('div', {},
    h('p', { id: 'sold-total' }, 'Sold ' + kwh(report.energy_wh) + ' for ' + sat(report.revenue_msat) + ' (energy only) in ' + report.sessions + ' session' + (report.sessions === 1 ? '' : 's') +
      (report.source ? ' · schedule ' + report.source : '') + (report.schedule_error ? ' · no schedule: ' + report.schedule_error : '')),
    h('div', { class: 'charts wide' }, chart),
    sold.length
      ? h('div', { class: 'scroll' }, h('table', { id: 'sold-intervals' },
        h('thead', {}, h('tr', {}, h('th', {}, 'From'), h('th', {}, 'Until'), h('th', { class: 'num' }, 'Scheduled price'), h('th', { class: 'num' }, 'Energy sold'), h('th', { class: 'num' }, 'Billed at'), h('th', { class: 'num' }, 'Revenue'), h('th', { class: 'num' }, 'Sessions'))),
        h('tbody', {}, sold.map((i) => h('tr', { dataset: { start: i.start, energyWh: i.energy_wh } },
          h('td', {}, hm(i.start)), h('td', {}, hm(i.end)), h('td', { class: 'num' }, price(i.schedule_msat_per_kwh)),
          h('td', { class: 'num' }, kwh(i.energy_wh)), h('td', { class: 'num' }, i.billed_msat_per_kwh.map(price).join(', ')),
          h('td', { class: 'num' }, sat(i.revenue_msat)), h('td', { class: 'num' }, String(i.sessions)))))))
      : h('p', { class: 'muted' }, 'Nothing was sold at a scheduled price on this day (a static tariff\'s sessions keep no intervals).'))
}

const hm = (iso) => new Date(iso).toLocaleString('en-GB', { weekday: 'short', hour: '2-digit', minute: '2-digit' })

function pricesView (p) {
  const head = h('p', { id: 'prices-source' }, (p.dynamic ? 'Dynamic' : 'Static') + ' · source ' + p.source +
    (p.rate_source ? ' · rate ' + p.rate_source : '') + (p.fetched_at ? ' · fetched ' + when(p.fetched_at) : '') +
    (p.valid_until ? ' · known until ' + when(p.valid_until) : ''))
  const health = p.health
    ? h('table', { id: 'price-health' }, h('tbody', {},
      [['Provider', p.health.source], ['Last success', when(p.health.last_success)],
        ['Last error', p.health.last_error ? p.health.last_error + ' (' + when(p.health.last_error_at) + ')' : 'none'],
        ['Known until', when(p.health.known_until)], ['Next attempt', when(p.health.next_attempt)]]
        .map(([label, value]) => h('tr', {}, h('th', {}, label), h('td', {}, value)))))
    : ''
  const error = p.error ? h('p', { class: 'error', role: 'alert', id: 'prices-error' }, 'No price can be given now: ' + p.error) : ''
  if (!p.intervals.length) return h('div', {}, head, error, health)
  const svgNs = 'http://www.w3.org/2000/svg'
  const svg = (tag, attrs, ...children) => {
    const el = document.createElementNS(svgNs, tag)
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v))
    el.append(...children)
    return el
  }
  const first = Date.parse(p.intervals[0].start)
  const total = Math.max(1, Date.parse(p.intervals[p.intervals.length - 1].end) - first)
  const top = Math.max(...p.intervals.map((i) => Math.abs(i.energy_msat_per_kwh)), 1)
  const width = 600
  const height = 120
  const bars = p.intervals.map((i) => {
    const x = width * (Date.parse(i.start) - first) / total
    const w = Math.max(1, width * (Date.parse(i.end) - Date.parse(i.start)) / total - 1)
    const barHeight = Math.max(2, (height - 20) * Math.abs(i.energy_msat_per_kwh) / top)
    const bar = svg('rect', { x, y: height - barHeight, width: w, height: barHeight, fill: i.energy_msat_per_kwh < 0 ? '#2b8a3e' : '#f7931a', 'data-msat': i.energy_msat_per_kwh, 'data-start': i.start })
    bar.append(svg('title', {}, hm(i.start) + ': ' + sat(i.energy_msat_per_kwh) + '/kWh'))
    return bar
  })
  const chart = svg('svg', { id: 'price-chart', viewBox: '0 0 ' + width + ' ' + height, width: '100%', height, role: 'img', 'aria-label': 'energy price per interval' }, ...bars)
  return h('div', {}, head, error, chart,
    h('div', { class: 'scroll' }, h('table', { id: 'price-intervals' },
      h('thead', {}, h('tr', {}, h('th', {}, 'From'), h('th', {}, 'Until'), h('th', { class: 'num' }, 'Energy price'))),
      h('tbody', {}, p.intervals.map((i) => h('tr', { dataset: { start: i.start } },
        h('td', {}, hm(i.start)), h('td', {}, hm(i.end)), h('td', { class: 'num' }, sat(i.energy_msat_per_kwh) + '/kWh')))))),
    health)
}

function cardsSection (chargerId, cards, readOnly) {
  const page = state.page
  const result = commandLine('cards-result')
  if (readOnly) {
    return h('section', { id: 'cards' }, h('h2', {}, 'Cards'),
      cards.cards.length
        ? h('table', {}, h('thead', {}, h('tr', {}, ['idTag', 'Label', 'Pays', 'Account'].map((t) => h('th', {}, t)))),
          h('tbody', {}, cards.cards.map((c) => h('tr', { dataset: { card: c.id_tag } }, h('td', { class: 'mono' }, c.id_tag), h('td', {}, c.label), h('td', {}, c.mode), h('td', {}, c.account || '—')))))
        : h('p', { class: 'muted' }, 'No cards.'))
  }
  // The list being edited lives in the page's state, so live refreshes keep unsaved changes.
  if (!page.cards) page.cards = cards.cards.map((c) => ({ ...c }))
  const draft = page.cards
  const dirty = JSON.stringify(draft) !== JSON.stringify(cards.cards)
  const rows = draft.map((card, i) => {
    const input = (name, label, size, attrs) => h('input', {
      name,
      'aria-label': label,
      value: card[name],
      size,
      ...attrs,
      oninput: (event) => {
        card[name] = event.target.value
        if (name === 'id_tag') event.target.closest('tr').dataset.card = card.id_tag || 'new'
      }
    })
    const account = input('account', 'Account', 12, { disabled: card.mode !== 'account', required: card.mode === 'account' })
    const mode = h('select', {
      name: 'mode',
      'aria-label': 'Who pays',
      onchange: (event) => {
        card.mode = event.target.value
        account.disabled = card.mode !== 'account'
        account.required = card.mode === 'account'
        if (account.disabled) { card.account = ''; account.value = '' }
      }
    }, ['free', 'account'].map((m) => h('option', { value: m, selected: card.mode === m }, m)))
    return h('tr', { dataset: { card: card.id_tag || 'new' } },
      h('td', {}, input('id_tag', 'idTag', 12, { required: true, maxlength: 20, pattern: '[!-~]{1,20}', title: '1 to 20 characters, no spaces' })),
      h('td', {}, input('label', 'Label', 14, { maxlength: 100 })),
      h('td', {}, mode), h('td', {}, account),
      h('td', {}, h('button', { type: 'button', class: 'danger', onclick: () => { draft.splice(i, 1); route(true) } }, 'Remove')))
  })
  return h('section', { id: 'cards' }, h('h2', {}, 'Cards'),
    h('p', { class: 'muted' }, 'idTags (RFID cards, key fobs) this charger accepts without a payment: free, or billed to an account. Saved to its profile, in force at once and sent to the charger\'s local list.'),
    h('form', {
      id: 'cards-form',
      onsubmit: async (event) => {
        event.preventDefault()
        try {
          const answer = await api('PUT', '/chargers/' + chargerId + '/cards', { cards: draft.map((c) => ({ id_tag: c.id_tag.trim(), label: c.label, mode: c.mode, account: c.mode === 'account' ? c.account : '' })) })
          draft.splice(0, draft.length, ...answer.cards.map((c) => ({ ...c }))) // in place: every handler edits the one list
          const list = answer.local_list
          result.show('Cards saved' + (answer.restart_required ? '; they take effect at the next start' : '') +
            (list ? '. Charger\'s local list: ' + (list.update ? list.update + ' update, version ' + list.version + ': ' : '') + list.status + (list.detail ? ' (' + list.detail + ')' : '') : ''))
          route(true)
        } catch (e) { result.show(e.message, true) }
      }
    },
    h('div', { class: 'scroll' }, h('table', {}, h('thead', {}, h('tr', {}, ['idTag', 'Label', 'Who pays', 'Account', ''].map((t) => h('th', {}, t)))), h('tbody', {}, rows))),
    h('div', { class: 'toolbar' },
      h('button', { type: 'button', id: 'add-card', onclick: () => { draft.push({ id_tag: '', label: '', mode: 'free', account: '' }); route(true) } }, 'Add card'),
      h('button', { class: 'primary', type: 'submit', id: 'save-cards' }, 'Save cards'),
      dirty ? h('span', { class: 'badge warn', id: 'cards-unsaved' }, 'unsaved changes') : '',
      dirty ? h('button', { type: 'button', onclick: () => { draft.splice(0, draft.length, ...cards.cards.map((c) => ({ ...c }))); route(true) } }, 'Discard changes') : '')),
    result.line)
}

function firmwareSection (chargerId, firmware, readOnly) {
  const result = commandLine('firmware-result')
  const run = async (label, path, data) => {
    try {
      const answer = await api('POST', '/chargers/' + chargerId + path, data)
      result.show(answerText(label, answer) + (answer.file_name ? ': ' + answer.file_name : ''))
      // Status notifications and uploads send no live event: look again a few times.
      if (answer.status === 'Accepted') for (const ms of [1500, 4000, 10000]) setTimeout(() => route(true), ms)
    } catch (e) { result.show(e.message, true) }
  }
  const statuses = [['Firmware version', firmware.firmware_version], ['Firmware update', firmware.firmware_status], ['Diagnostics upload', firmware.diagnostics_status], ['Log upload', firmware.log_status]]
  const files = firmware.files.length
    ? h('div', { class: 'scroll' }, h('table', { id: 'uploads' }, h('thead', {}, h('tr', {}, ['File', 'Size', 'Received', ''].map((t) => h('th', {}, t)))),
      h('tbody', {}, firmware.files.map((f) => h('tr', { dataset: { file: f.name } },
        h('td', { class: 'mono' }, f.name), h('td', { class: 'num' }, f.size.toLocaleString('en') + ' B'), h('td', {}, when(f.modified)),
        h('td', {}, readOnly ? '' : [h('button', { type: 'button', onclick: () => download('/chargers/' + chargerId + '/uploads/' + encodeURIComponent(f.name), f.name).catch((e) => result.show(e.message, true)) }, 'Download'), ' ',
          h('button', { type: 'button', class: 'danger', onclick: async () => { try { await api('DELETE', '/chargers/' + chargerId + '/uploads/' + encodeURIComponent(f.name)); route(true) } catch (e) { result.show(e.message, true) } } }, 'Delete')]))))))
    : h('p', { class: 'muted' }, 'No files uploaded.')
  const controls = readOnly ? '' : [
    h('form', {
      class: 'row',
      id: 'update-firmware',
      onsubmit: (event) => {
        event.preventDefault()
        const data = new FormData(event.target)
        const body = { location: data.get('location').trim() }
        if (data.get('retrieve_at')) body.retrieve_at = new Date(data.get('retrieve_at')).toISOString()
        run('Firmware update', '/commands/update-firmware', body)
      }
    }, h('label', {}, 'Firmware URL', kept('location', { type: 'url', size: 34, required: true, placeholder: 'https://…/firmware.bin' })),
    h('label', {}, 'From (optional)', kept('retrieve_at', { type: 'datetime-local' })),
    h('button', { class: 'primary', type: 'submit' }, 'Update firmware')),
    h('form', {
      class: 'row',
      id: 'request-log',
      onsubmit: (event) => {
        event.preventDefault()
        const logType = new FormData(event.target).get('log_type')
        run(logType === 'security' ? 'Security log' : 'Diagnostics log', '/log', { log_type: logType })
      }
    }, h('button', { type: 'button', id: 'get-diagnostics', onclick: () => run('Diagnostics', '/commands/get-diagnostics', {}) }, 'Request diagnostics'),
    h('label', {}, 'Log', keptSelect('log_type', [['diagnostics', 'diagnostics log'], ['security', 'security log']])),
    h('button', { type: 'submit' }, 'Request log'))]
  return h('section', { id: 'firmware' }, h('h2', {}, 'Firmware and logs'),
    h('table', { id: 'firmware-status' }, h('tbody', {}, statuses.map(([k, v]) => h('tr', {}, h('th', {}, k), h('td', {}, v || '—'))))),
    controls, result.line,
    h('p', { class: 'muted' }, 'Diagnostics and logs are uploaded to Strom (a one-time URL per request) and kept here:'), files)
}

function certificatesSection (chargerId, readOnly) {
  const key = 'certificates:' + chargerId
  const result = commandLine('certificates-result')
  const reload = () => { state.cache.delete(key); route(true) }
  const render = (answer) => h('div', {},
    h('p', { class: 'muted', id: 'certificates-status' }, answer.types.map((t) => t.certificate_type + ': ' + t.status + (t.detail ? ' (' + t.detail + ')' : '')).join(' · ')),
    answer.certificates.length
      ? h('div', { class: 'scroll' }, h('table', { id: 'certificate-list' }, h('thead', {}, h('tr', {}, ['Type', 'Serial', 'Issuer name hash', ''].map((t) => h('th', {}, t)))),
        h('tbody', {}, answer.certificates.map((c) => h('tr', { dataset: { serial: c.serial_number } },
          h('td', {}, c.certificate_type), h('td', { class: 'mono' }, c.serial_number),
          h('td', { class: 'mono', title: c.hash_algorithm + ' ' + c.issuer_name_hash }, c.issuer_name_hash.slice(0, 16) + '…'),
          h('td', {}, readOnly ? '' : h('button', {
            type: 'button',
            class: 'danger',
            onclick: async () => {
              if (!confirm('Delete certificate ' + c.serial_number + ' from ' + chargerId + '? A charger that no longer trusts the central system\'s root cannot connect over TLS.')) return
              try { result.show(answerText('Delete ' + c.serial_number, await api('DELETE', '/chargers/' + chargerId + '/certificates/' + c.serial_number))); reload() } catch (e) { result.show(e.message, true) }
            }
          }, 'Delete')))))))
      : h('p', { class: 'muted' }, 'No root certificates listed.'))
  const install = readOnly ? '' : h('form', {
    id: 'install-certificate',
    onsubmit: async (event) => {
      event.preventDefault()
      const data = new FormData(event.target)
      try {
        const answer = await api('POST', '/chargers/' + chargerId + '/certificates', { certificate_type: data.get('certificate_type'), pem: data.get('pem').trim() + '\n' })
        result.show(answerText('Install ' + answer.subject + ' (serial ' + answer.serial_number + ')', answer))
        if (state.page.fields) delete state.page.fields.pem
        reload()
      } catch (e) { result.show(e.message, true) }
    }
  }, h('div', { class: 'row' },
    h('label', {}, 'Type', keptSelect('certificate_type', [['CentralSystemRootCertificate', 'Central system root'], ['ManufacturerRootCertificate', 'Manufacturer root']]))),
  h('label', { class: 'wide' }, 'Root certificate (PEM)', h('textarea', {
    name: 'pem',
    rows: 6,
    required: true,
    placeholder: '-----BEGIN CERTIFICATE-----',
    oninput: (event) => { (state.page.fields || (state.page.fields = {})).pem = event.target.value }
  }, (state.page.fields && state.page.fields.pem) || '')),
  h('button', { class: 'primary', type: 'submit' }, 'Install certificate'))
  const renew = readOnly ? '' : h('button', {
    type: 'button',
    id: 'renew-certificate',
    title: 'ExtendedTriggerMessage SignChargePointCertificate: the charger sends a CSR, Strom\'s charger CA signs it; the charger uses it from its next connection (security profile 3)',
    onclick: async () => {
      try { result.show(answerText('Client certificate renewal', await api('POST', '/chargers/' + chargerId + '/commands/renew-certificate'))) } catch (e) { result.show(e.message, true) }
    }
  }, 'Renew its client certificate')
  return h('section', { id: 'certificates' }, h('h2', {}, 'Certificates'),
    h('p', { class: 'muted' }, 'The roots the charger trusts (OCPP 1.6 security edition): the one its central system\'s TLS certificate chains to, and the manufacturer\'s. Its own client certificate (security profile 3) is signed by Strom\'s charger CA.'),
    h('div', { class: 'toolbar' }, refreshButton(key), renew),
    pending(key, () => api('GET', '/chargers/' + chargerId + '/certificates'), render),
    install, result.line)
}

// --- OCPP 2.0.1: security events and the device model --------------------------------------

const OCPP201 = 'ocpp2.0.1'
const versionLabel = (version) => version ? 'OCPP ' + version.replace(/^ocpp/, '') : 'OCPP version not known yet'
const readOnlyUser = () => $('who').textContent.endsWith('(read-only)')

// A security event is for the operator to notice: until this browser has shown the charger's
// page with its newest one, the charger wears a red badge (dashboard and page).
const eventKey = (event) => event.timestamp + ' ' + event.type + ' ' + (event.tech_info || '')
const seenKey = (chargerId) => 'strom.security-seen.' + chargerId
function seenEvent (chargerId, key) {
  try {
    if (key === undefined) return localStorage.getItem(seenKey(chargerId))
    localStorage.setItem(seenKey(chargerId), key)
  } catch (error) { return null } // storage refused: every event stays new
  return null
}

function securityBadge (charger) {
  const latest = charger.latest_security_event
  if (!latest || seenEvent(charger.charger_id) === eventKey(latest)) return ''
  return h('span', { class: 'badge alert', 'data-security': '', title: latest.type + ' at ' + when(latest.timestamp) }, 'security event')
}

// The charger page's section (newest first) and how many of them are new to this browser.
function securityEvents (chargerId, events) {
  // What was new when the page was opened stays marked while it is open (live refreshes).
  const page = state.page
  if (!('seenSecurity' in page)) page.seenSecurity = seenEvent(chargerId)
  if (events.length) seenEvent(chargerId, eventKey(events[events.length - 1]))
  const seenAt = events.findIndex((e) => eventKey(e) === page.seenSecurity)
  const rows = events.map((e, i) => h('tr', { class: i > seenAt ? 'new' : null, dataset: { securityEvent: e.type } },
    h('td', {}, when(e.timestamp), i > seenAt ? h('span', { class: 'badge alert' }, 'new') : ''),
    h('td', {}, e.type), h('td', {}, e.tech_info || '—'))).reverse()
  const fresh = events.length - 1 - seenAt
  const section = h('section', { id: 'security-events' }, h('h2', {}, 'Security events'),
    events.length
      ? h('div', { class: 'scroll' }, h('table', {}, h('thead', {}, h('tr', {}, ['Time (charger\'s clock)', 'Type', 'Tech info'].map((t) => h('th', {}, t)))), h('tbody', {}, rows)))
      : h('p', { class: 'muted' }, 'None reported.'))
  const badge = fresh ? h('span', { class: 'badge alert', 'data-security': '' }, fresh + ' new security event' + (fresh > 1 ? 's' : '')) : ''
  return { section, badge }
}

// A reported key is 'Component[.instance][@evse[.connector]]/Variable[.instance]'.
function parseVariable (key, value) {
  const slash = key.indexOf('/')
  const group = key.slice(0, slash)
  const [named, evse] = group.split('@')
  const [component, ...componentInstance] = named.split('.')
  const [variable, ...variableInstance] = key.slice(slash + 1).split('.')
  return { key, value, group, component, component_instance: componentInstance.join('.'), evse_id: evse ? evse.split('.')[0] : '', variable, variable_instance: variableInstance.join('.') }
}

const VARIABLE_FIELDS = [['component', 'Component', true], ['component_instance', 'Component instance'], ['evse_id', 'EVSE'], ['variable', 'Variable', true], ['variable_instance', 'Variable instance'], ['value', 'Value (to set)']]

function variableForm (chargerId, readOnly) {
  const page = state.page
  const form = page.variableForm || (page.variableForm = {})
  const inputs = Object.fromEntries(VARIABLE_FIELDS.map(([name, , required]) => [name, h('input', {
    name,
    value: form[name] || '',
    required,
    size: name === 'evse_id' ? 3 : (name === 'value' ? 16 : 12),
    inputmode: name === 'evse_id' ? 'numeric' : null,
    pattern: name === 'evse_id' ? '[0-9]{1,2}' : null,
    oninput: (event) => { form[name] = event.target.value }
  })]))
  const error = h('p', { class: 'error', role: 'alert' })
  const results = h('div', { id: 'variable-results', 'aria-live': 'polite' })
  const show = () => {
    const answer = page.variableAnswer
    if (!answer) return results.replaceChildren()
    results.replaceChildren(h('p', { class: 'muted' }, answer.verb + ': ' + answer.status + (answer.detail ? ' (' + answer.detail + ')' : '')),
      h('div', { class: 'scroll' }, h('table', {}, h('thead', {}, h('tr', {}, ['Result', 'Component', 'Variable', 'Value'].map((t) => h('th', {}, t)))),
        h('tbody', {}, answer.variables.map((v) => h('tr', { dataset: { variable: v.component + '/' + v.variable } },
          h('td', {}, h('span', { class: 'badge ' + ({ Accepted: 'on', RebootRequired: 'warn' }[v.status] || 'off'), 'data-result': '' }, v.status)),
          h('td', {}, v.component), h('td', {}, v.variable),
          h('td', { class: 'mono' }, v.value ?? '—')))))))
  }
  show()
  const element = h('form', {
    class: 'row',
    id: 'variable-form',
    onsubmit: async (event) => {
      event.preventDefault()
      const verb = event.submitter && event.submitter.value === 'set' ? 'set' : 'get'
      const wanted = { component: inputs.component.value.trim(), variable: inputs.variable.value.trim() }
      for (const name of ['component_instance', 'variable_instance']) if (inputs[name].value.trim()) wanted[name] = inputs[name].value.trim()
      if (inputs.evse_id.value.trim()) wanted.evse_id = Number(inputs.evse_id.value)
      if (verb === 'set') wanted.value = inputs.value.value
      try {
        const answer = await api('POST', '/chargers/' + chargerId + '/variables/' + verb, { variables: [wanted] })
        page.variableAnswer = { verb: verb === 'set' ? 'SetVariables' : 'GetVariables', ...answer }
        error.textContent = ''
        show()
      } catch (e) { error.textContent = e.message }
    }
  }, VARIABLE_FIELDS.map(([name, label]) => h('label', {}, label, inputs[name])),
  h('button', { type: 'submit', value: 'get', disabled: readOnly }, 'Get'),
  h('button', { class: 'primary', type: 'submit', value: 'set', disabled: readOnly }, 'Set'), error)
  const fill = (v) => {
    for (const [name] of VARIABLE_FIELDS) { form[name] = name === 'value' ? v.value : v[name]; inputs[name].value = form[name] }
    inputs.value.focus()
  }
  return { element, results, fill }
}

function deviceModel (chargerId, variables) {
  const page = state.page
  const readOnly = readOnlyUser()
  const open = page.openGroups || (page.openGroups = new Set())
  const all = Object.entries(variables).map(([key, value]) => parseVariable(key, value))
  const form = variableForm(chargerId, readOnly)
  const count = h('span', { class: 'muted', id: 'variable-count' })
  const list = h('div', { id: 'variables' })
  const render = () => {
    const needle = (page.variableFilter || '').toLowerCase()
    const shown = all.filter((v) => !needle || (v.key + ' ' + v.value).toLowerCase().includes(needle))
    const groups = new Map()
    for (const v of shown) groups.set(v.group, [...(groups.get(v.group) || []), v])
    count.textContent = needle ? shown.length + ' of ' + all.length + ' variables' : all.length + ' variables'
    list.replaceChildren(...[...groups].map(([group, items]) => {
      const details = h('details', { class: 'group', open: Boolean(needle) || open.has(group), dataset: { component: group } },
        h('summary', {}, group, ' ', h('span', { class: 'muted' }, '(' + items.length + ')')),
        h('table', {}, h('tbody', {}, items.map((v) => h('tr', { dataset: { variable: v.key } },
          h('td', {}, h('button', { type: 'button', class: 'link', title: 'Put it in the form above', onclick: () => form.fill(v) }, v.key.slice(v.group.length + 1))),
          h('td', { class: 'mono' }, v.value))))))
      details.addEventListener('toggle', () => { if (!needle) { if (details.open) open.add(group); else open.delete(group) } })
      return details
    }))
    if (!all.length) list.replaceChildren(h('p', { class: 'muted' }, 'No report yet: request one.'))
  }
  render()
  return h('section', { id: 'device-model' },
    h('h2', {}, 'Device model (OCPP 2.0.1)'),
    h('p', { class: 'muted' }, 'Get or set one variable; the charger answers for each (Accepted, Rejected, UnknownComponent, UnknownVariable, NotSupportedAttributeType, RebootRequired).'),
    form.element, form.results,
    h('div', { class: 'toolbar' },
      h('label', {}, 'Filter', h('input', { id: 'variable-filter', type: 'search', value: page.variableFilter || '', placeholder: 'component, variable or value', oninput: (event) => { page.variableFilter = event.target.value; render() } })),
      count,
      h('button', {
        type: 'button',
        id: 'request-report',
        disabled: readOnly,
        onclick: async () => {
          try {
            const answer = await api('POST', '/chargers/' + chargerId + '/commands/get-base-report', { report: 'FullInventory' })
            toast('Full report: ' + answer.status + (answer.detail ? ' (' + answer.detail + ')' : ''))
            // Its pages arrive as NotifyReport messages, which send no live event: look again.
            if (answer.status === 'Accepted') for (const ms of [1000, 3000]) setTimeout(() => route(true), ms)
          } catch (e) { toast(e.message) }
        }
      }, 'Request full report')),
    h('p', { class: 'muted' }, 'What the charger reported last (values as it reported them; a set value shows after the next report).'),
    list)
}

function sessionTable (items) {
  return h('table', {},
    h('thead', {}, h('tr', {}, ['Session', 'Charger', 'State', 'Paid', 'Used', 'Refundable', 'Energy', 'Created'].map((t) => h('th', {}, t)))),
    h('tbody', {}, items.map((s) => h('tr', { dataset: { session: s.session_id } },
      h('td', {}, h('a', { href: '#/sessions/' + s.session_id }, s.session_id)),
      h('td', {}, s.charger_id + '/' + s.connector_id),
      h('td', {}, h('span', { class: 'badge', 'data-state': s.state }, human(s.state))),
      h('td', { class: 'num' }, sat(s.paid_msat)), h('td', { class: 'num' }, sat(s.consumed_msat)),
      h('td', { class: 'num' }, sat(s.refundable_msat)), h('td', { class: 'num' }, kwh(s.energy_wh)),
      h('td', {}, when(s.created_at))))))
}

async function sessionsView (view, params) {
  const query = new URLSearchParams(params)
  query.set('limit', '50')
  const page = await api('GET', '/sessions?' + query)
  const filters = h('form', {
    class: 'row',
    onsubmit: (event) => {
      event.preventDefault()
      const data = new URLSearchParams([...new FormData(event.target)].filter(([, v]) => v))
      location.hash = '#/sessions?' + data
    }
  },
  h('label', {}, 'Charger', h('input', { name: 'charger', value: params.get('charger') || '' })),
  h('label', {}, 'State', h('select', { name: 'state' }, ['', 'awaiting_payment', 'paid', 'starting', 'charging', 'stopping', 'stopped', 'start_failed', 'refund_pending', 'refunded', 'closed', 'expired'].map((s) => h('option', { value: s, selected: s === (params.get('state') || '') }, s ? human(s) : 'any')))),
  h('button', { type: 'submit' }, 'Filter'),
  h('button', { type: 'button', onclick: () => { const q = new URLSearchParams(query); q.set('format', 'csv'); q.set('limit', '500'); download('/sessions?' + q, 'sessions.csv') } }, 'Export CSV'))
  const table = sessionTable(page.items)
  let cursor = page.next_cursor
  const more = h('button', {
    hidden: !cursor,
    onclick: async () => {
      query.set('cursor', cursor)
      const next = await api('GET', '/sessions?' + query)
      table.querySelector('tbody').append(...sessionTable(next.items).querySelector('tbody').children)
      cursor = next.next_cursor
      more.hidden = !cursor
    }
  }, 'More')
  view.replaceChildren(h('h1', {}, 'Sessions'), filters, table, more)
}

async function sessionView (view, sessionId) {
  const s = await api('GET', '/sessions/' + sessionId)
  const stoppable = ['paid', 'starting', 'charging'].includes(s.state)
  view.replaceChildren(
    h('h1', {}, 'Session ', h('span', { class: 'mono' }, s.session_id)),
    h('p', {}, h('span', { class: 'badge', id: 'session-state', 'data-state': s.state }, human(s.state)), ' on ', h('a', { href: '#/chargers/' + s.charger_id }, s.charger_id), ' connector ' + s.connector_id,
      s.stop_reason ? ' · stopped by ' + s.stop_reason : ''),
    stoppable ? h('button', { class: 'danger', onclick: async () => { try { await api('POST', '/sessions/' + s.session_id + '/stop'); route(true) } catch (e) { toast(e.message) } } }, 'Stop session') : '',
    h('table', {}, h('tbody', {},
      [['Paid', sat(s.paid_msat)], ['Used', sat(s.consumed_msat)], ['Refundable', sat(s.refundable_msat)], ['Refunded', sat(s.refunded_msat)], ['Energy', kwh(s.energy_wh)], ['Charging time', Math.round(s.elapsed_s / 60) + ' min'], ['Started', when(s.started_at)], ['Stopped', when(s.stopped_at)]]
        .map(([k, v]) => h('tr', {}, h('th', {}, k), h('td', {}, v))))),
    h('h2', {}, 'Payments'), ledgerTable(s.payments, ['payment_hash', 'kind', 'state', 'amount_msat', 'settled_at']),
    h('h2', {}, 'Refunds'), ledgerTable(s.refunds, ['refund_id', 'state', 'amount_msat', 'fee_msat', 'detail', 'updated_at']))
}

// Column headers for people: a name and its unit, never the API's field name.
const COLUMNS = {
  period: 'Day (UTC)', sessions: 'Sessions', paid_msat: 'Received (sat)', received_msat: 'Received (sat)', refunded_msat: 'Refunded (sat)',
  refund_fees_msat: 'Refund fees (sat)', revenue_msat: 'Revenue (sat)', energy_wh: 'Energy (kWh)', payment_hash: 'Payment hash', session_id: 'Session',
  kind: 'Kind', state: 'State', amount_msat: 'Amount (sat)', fee_msat: 'Fee (sat)', settled_at: 'Settled', updated_at: 'Updated', refund_id: 'Refund',
  detail: 'Detail', at: 'Time', actor: 'Actor', action: 'Action', target: 'Target'
}
const number = (msat) => (Number(msat) / 1000).toLocaleString('en', { maximumFractionDigits: 3 })
function cell (c, value) {
  if (c.endsWith('_msat')) return value === null ? '—' : number(value)
  if (c.endsWith('_wh')) return kwh(value).slice(0, -4)
  if (c.endsWith('_at') || c === 'at') return when(value)
  if (c === 'state' || c === 'kind') return human(value)
  return String(value ?? '—')
}

// An audit row's detail for people: "energy price per kWh: 400 sat · mode: dynamic", not JSON.
function detailText (detail) {
  return Object.entries(detail || {}).map(([key, value]) => {
    const name = human(key.replace(/_(msat|wh)$/, '').replace(/_msat_per_/, '_per_'))
    if (key.endsWith('_msat') || key.includes('_msat_per_')) return name + ': ' + sat(value)
    if (key.endsWith('_wh')) return name + ': ' + kwh(value)
    return name + ': ' + (value !== null && typeof value === 'object' ? JSON.stringify(value) : String(value))
  }).join(' · ') || '—'
}

function ledgerTable (items, columns, labels) {
  if (!items.length) return h('p', { class: 'muted' }, 'None.')
  const numeric = (c) => c.endsWith('_msat') || c.endsWith('_wh') || c === 'sessions'
  return h('table', {}, h('thead', {}, h('tr', {}, columns.map((c) => h('th', { class: numeric(c) ? 'num' : '', dataset: { column: c } }, (labels || {})[c] || COLUMNS[c] || c)))),
    h('tbody', {}, items.map((row) => h('tr', {}, columns.map((c) => h('td', { class: numeric(c) ? 'num' : (c.includes('hash') ? 'mono' : '') }, cell(c, row[c])))))))
}

// A chart drawn by the server (GET /reports/…svg, the same code as the public price chart).
// It is parsed as XML, never as HTML, and anything that could run or load (scripts, foreign
// objects, event handlers, links) is dropped before it joins the page.
async function serverChart (path, name) {
  const figure = h('figure', { class: 'chart', dataset: { chart: name } })
  try {
    const text = await (await api('GET', path, undefined, true)).text()
    const doc = new DOMParser().parseFromString(text, 'image/svg+xml')
    const svg = doc.documentElement
    if (svg.nodeName !== 'svg' || doc.getElementsByTagName('parsererror').length) throw new Error('not a chart')
    for (const el of [svg, ...svg.querySelectorAll('*')]) {
      if (['script', 'foreignObject', 'a', 'image', 'use'].includes(el.localName)) { el.remove(); continue }
      for (const attr of [...el.attributes]) if (/^on|href$/i.test(attr.name)) el.removeAttribute(attr.name)
    }
    const title = svg.querySelector('title')
    figure.append(h('figcaption', {}, title ? title.textContent : name), document.importNode(svg, true))
  } catch (error) {
    if (error.message === 'unauthorized') throw error
    figure.append(h('p', { class: 'muted' }, 'Chart not available: ' + error.message))
  }
  return figure
}

const dayStart = (offset) => { const d = new Date(); d.setUTCHours(0, 0, 0, 0); d.setUTCDate(d.getUTCDate() + offset); return d }
const monthStart = (offset) => { const d = dayStart(0); d.setUTCDate(1); d.setUTCMonth(d.getUTCMonth() + offset); return d }
const span = (since, until) => 'since=' + encodeURIComponent(since.toISOString()) + '&until=' + encodeURIComponent(until.toISOString())

async function reportsSection () {
  const days = span(dayStart(-29), dayStart(1)) // the last 30 UTC days, today included
  const months = span(monthStart(-11), monthStart(1)) // the last 12 UTC months
  const week = span(dayStart(-7), new Date(Math.floor(Date.now() / 60000) * 60000))
  const [daily, monthly] = await Promise.all([api('GET', '/reports/daily?' + days), api('GET', '/reports/monthly?' + months)])
  const measures = [['energy', 'Energy'], ['received', 'Received'], ['refunded', 'Refunded'], ['revenue', 'Revenue']]
  const charts = await Promise.all([
    ...measures.map(([m]) => serverChart('/reports/daily.svg?' + days + '&measure=' + m, m + '-daily')),
    ...measures.map(([m]) => serverChart('/reports/monthly.svg?' + months + '&measure=' + m, m + '-monthly')),
    serverChart('/reports/availability.svg?' + week, 'availability')
  ])
  const t = daily.total
  return h('section', { id: 'reports' },
    h('h2', {}, 'Last 30 days (UTC)'),
    h('div', { class: 'stats', id: 'report-totals' },
      h('div', { class: 'stat' }, 'Energy', h('b', { dataset: { total: 'energy_wh' } }, kwh(t.energy_wh))),
      h('div', { class: 'stat' }, 'Received', h('b', { dataset: { total: 'received_msat' } }, sat(t.received_msat))),
      h('div', { class: 'stat' }, 'Refunded', h('b', { dataset: { total: 'refunded_msat' } }, sat(t.refunded_msat))),
      h('div', { class: 'stat' }, 'Refund fees', h('b', { dataset: { total: 'refund_fees_msat' } }, sat(t.refund_fees_msat))),
      h('div', { class: 'stat' }, 'Revenue', h('b', { dataset: { total: 'revenue_msat' } }, sat(t.revenue_msat))),
      h('div', { class: 'stat' }, 'Sessions', h('b', { dataset: { total: 'sessions' } }, String(t.sessions)))),
    h('div', { class: 'charts' }, charts.slice(0, 4)),
    h('h2', {}, 'Last 12 months (UTC)'),
    ledgerTable(monthly.rows, ['period', 'sessions', 'energy_wh', 'received_msat', 'refunded_msat', 'refund_fees_msat', 'revenue_msat'], { period: 'Month (UTC)' }),
    h('div', { class: 'charts' }, charts.slice(4, 8)),
    h('h2', {}, 'Availability, last 7 days'),
    h('p', { class: 'muted' }, 'Each connector: online (free), charging, faulted, or offline (its charger not connected).'),
    h('div', { class: 'charts wide' }, charts[8]))
}

async function ledgerView (view) {
  const [totals, payments, refunds, reports] = await Promise.all([api('GET', '/ledger/totals?period=day'), api('GET', '/ledger/payments?limit=50'), api('GET', '/ledger/refunds?limit=50'), reportsSection()])
  view.replaceChildren(
    h('h1', {}, 'Ledger'),
    h('div', { class: 'toolbar' },
      h('button', { onclick: () => download('/ledger/payments?format=csv&limit=1000', 'payments.csv') }, 'Payments CSV'),
      h('button', { onclick: () => download('/ledger/refunds?format=csv&limit=1000', 'refunds.csv') }, 'Refunds CSV')),
    reports,
    h('h2', {}, 'Per day (UTC)'), ledgerTable(totals.totals, ['period', 'sessions', 'paid_msat', 'refunded_msat', 'refund_fees_msat', 'energy_wh']),
    h('h2', {}, 'Payments'), ledgerTable(payments.items, ['payment_hash', 'session_id', 'kind', 'amount_msat', 'settled_at']),
    h('h2', {}, 'Refunds'), ledgerTable(refunds.items, ['refund_id', 'session_id', 'state', 'amount_msat', 'fee_msat', 'updated_at']))
}

async function auditView (view) {
  const page = await api('GET', '/audit?limit=200')
  view.replaceChildren(h('h1', {}, 'Audit log'), ledgerTable(page.items.map((e) => ({ ...e, detail: detailText(e.detail) })), ['at', 'actor', 'action', 'target', 'detail']))
}

// --- routing ----------------------------------------------------------------------------------

async function route (refresh) {
  if (!state.token && !state.nip07) return showSignIn()
  const view = $('view')
  const [path, search] = (location.hash.slice(1) || '/').split('?')
  const params = new URLSearchParams(search || '')
  const parts = path.split('/').filter(Boolean)
  if (refresh && document.activeElement && view.contains(document.activeElement) && document.activeElement.matches('input, select, textarea')) return // do not wipe what the operator types
  if (refresh && state.page.editing) return // nor what they typed and did not save yet
  try {
    if (parts[0] === 'chargers' && parts[1]) await chargerView(view, decodeURIComponent(parts[1]))
    else if (parts[0] === 'sessions' && parts[1]) await sessionView(view, decodeURIComponent(parts[1]))
    else if (parts[0] === 'sessions') await sessionsView(view, params)
    else if (parts[0] === 'ledger') await ledgerView(view)
    else if (parts[0] === 'audit') await auditView(view)
    else if (parts[0] === 'roaming') await roamingView(view, params) // roaming.js
    else await dashboard(view)
  } catch (error) {
    if (error.message !== 'unauthorized') view.replaceChildren(h('p', { class: 'error', role: 'alert' }, error.message))
  }
}

document.addEventListener('DOMContentLoaded', () => {
  $('token-form').addEventListener('submit', (event) => {
    event.preventDefault()
    state.token = $('token').value.trim()
    state.nip07 = false
    sessionStorage.setItem('strom.token', state.token)
    signIn()
  })
  $('setup-form').addEventListener('submit', (event) => {
    event.preventDefault()
    setupSignIn()
  })
  $('nip07').addEventListener('click', () => {
    if (!window.nostr) return showSignIn('No nostr extension (NIP-07) found in this browser.')
    state.nip07 = true
    sessionStorage.setItem('strom.nip07', '1')
    signIn()
  })
  $('signout').addEventListener('click', () => signOut())
  window.addEventListener('hashchange', () => {
    for (const url of state.cache.values()) url.then((u) => typeof u === 'string' && URL.revokeObjectURL(u)).catch(() => {})
    state.cache.clear()
    state.page = {}
    route()
  })
  if (state.token || state.nip07) signIn()
  else showSignIn()
})
