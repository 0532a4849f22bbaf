// Strom's admin UI, the Roaming page (#/roaming): OCPI partners, what they owe, the OCPI log.
// It uses admin.js's helpers (h, api, sat, when, human, toast, route, state) and, like it, puts
// every value from the server on the page through textContent, never as HTML.
'use strict'

const SETTLEMENTS = [['after_cdr', 'After the charge (an invoice per CDR)'], ['streaming', 'Streaming (paid while charging)']]
const settlementText = (mode) => (SETTLEMENTS.find(([value]) => value === mode) || [mode, human(mode)])[1]
const RECEIVABLE_STATES = [['', 'any'], ['open', 'open'], ['invoiced', 'invoiced'], ['paid', 'paid'], ['written_off', 'written off']]
const party = (p) => p.country_code ? p.country_code + '*' + p.party_id : 'not known yet'
const count = (n, one, many) => n + ' ' + (n === 1 ? one : many)
const day = (iso) => iso ? new Date(iso).toLocaleDateString('en-GB', { day: 'numeric', month: 'short', year: 'numeric' }) : '—'

// Runs a change and re-renders the page; the error goes to a toast and nothing else happens.
async function act (doing, done) {
  try {
    const answer = await doing()
    if (done) toast(done)
    route(true)
    return answer
  } catch (error) { toast(error.message) }
}

// A token A is in one API answer only: show it until the operator has copied it (the
// dialog lives outside the view, so live refreshes do not wipe it).
function showTokenA (answer) {
  const old = $('token-a')
  if (old) old.remove()
  const key = h('code', { id: 'token-a-value', class: 'secret' }, answer.token_a)
  const dialog = h('dialog', { id: 'token-a', 'aria-labelledby': 'token-a-title' },
    h('h2', { id: 'token-a-title' }, 'Token A for ' + answer.partner.name),
    h('p', { class: 'warn' }, 'Copy it now: it is shown only this once. Strom keeps only its hash; a lost one can be replaced with "New token A".'),
    h('p', {}, 'Give the partner both: the token, ', key, ', and Strom\'s versions URL, ', h('code', { id: 'token-a-url', class: 'secret' }, answer.versions_url), '. The partner registers with them; its state then changes from offered to registered.'),
    h('p', {}, h('button', { class: 'primary', type: 'button', onclick: () => { dialog.close(); dialog.remove() } }, 'I have copied it')))
  dialog.addEventListener('cancel', (event) => event.preventDefault())
  document.body.append(dialog)
  dialog.showModal()
}

function addPartnerForm (readOnly) {
  return h('details', { id: 'add-partner', open: Boolean(state.page.adding) },
    h('summary', { onclick: () => { state.page.adding = !state.page.adding } }, 'Add a partner'),
    h('p', { class: 'muted' }, 'A name alone: Strom makes a token A for the partner to register with (shown once). With the partner\'s versions URL and the token A it gave you: Strom registers with it now.'),
    h('form', {
      class: 'row',
      onsubmit: async (event) => {
        event.preventDefault()
        const data = Object.fromEntries([...new FormData(event.target)].filter(([, v]) => v))
        const answer = await act(() => api('POST', '/ocpi/partners', data), data.versions_url ? 'Registered with ' + data.name : null)
        if (answer && answer.token_a) showTokenA(answer)
        if (answer) { state.page.adding = false; event.target.reset() }
      }
    },
    h('label', {}, 'Name', h('input', { name: 'name', required: true, maxlength: 100 })),
    h('label', {}, 'Partner\'s versions URL (optional)', h('input', { name: 'versions_url', type: 'url', placeholder: 'https://…/versions' })),
    h('label', {}, 'Its token A (optional)', h('input', { name: 'token', autocomplete: 'off' })),
    h('button', { class: 'primary', type: 'submit', disabled: readOnly }, 'Add partner')))
}

function partnerCard (p, readOnly) {
  const path = '/ocpi/partners/' + p.id
  const patch = (body, done) => act(() => api('PATCH', path, body), done)
  const badges = [h('span', { class: 'badge ' + (p.state === 'registered' ? 'on' : 'warn'), 'data-partner-state': p.state }, p.state)]
  if (p.blocked) badges.push(h('span', { class: 'badge off', 'data-blocked': '' }, 'blocked by you'))
  if (p.blocked_by_overdue) badges.push(h('span', { class: 'badge alert', 'data-overdue-blocked': '' }, 'blocked: invoice overdue'))
  const registration = p.state === 'registered' ? '' : h('details', {}, h('summary', {}, 'Register with the partner'), h('form', {
    class: 'row',
    onsubmit: async (event) => {
      event.preventDefault()
      await act(() => api('POST', path + '/register', Object.fromEntries(new FormData(event.target))), 'Registered with ' + p.name)
    }
  },
  h('label', {}, 'Partner\'s versions URL', h('input', { name: 'versions_url', type: 'url', required: true })),
  h('label', {}, 'Its token A', h('input', { name: 'token', autocomplete: 'off', required: true })),
  h('button', { type: 'submit', disabled: readOnly }, 'Register')))
  return h('div', { class: 'card', dataset: { partner: p.id } },
    h('h2', {}, p.name, ' ', badges),
    h('p', { class: 'muted' }, 'Party ' + party(p) + (p.roles.length ? ' · ' + p.roles.join(', ') : '') + (p.version ? ' · OCPI ' + p.version : '') + ' · added ' + day(p.created_at)),
    h('table', {}, h('tbody', {},
      h('tr', {}, h('th', {}, 'Settlement'), h('td', { 'data-settlement': p.settlement }, settlementText(p.settlement))),
      h('tr', {}, h('th', {}, 'Owes'), h('td', { 'data-open': p.open_msat }, sat(p.open_msat) + ' (' + count(p.open_receivables, 'session', 'sessions') + ' unpaid)')),
      h('tr', { class: p.overdue_receivables ? 'overdue' : '' }, h('th', {}, 'Overdue'), h('td', { 'data-overdue': p.overdue_msat }, sat(p.overdue_msat) + ' (' + count(p.overdue_receivables, 'invoice', 'invoices') + ')')),
      h('tr', {}, h('th', {}, 'Terms'), h('td', {}, p.payment_terms_days + ' days to pay' + (p.block_when_overdue ? '; new starts refused while an invoice is overdue' : '; overdue invoices block nothing'))))),
    h('form', {
      class: 'row terms',
      onsubmit: (event) => {
        event.preventDefault()
        const data = new FormData(event.target)
        patch({ settlement: data.get('settlement'), payment_terms_days: Number(data.get('payment_terms_days')), block_when_overdue: data.get('block_when_overdue') === 'on' }, 'Saved ' + p.name)
      }
    },
    h('label', {}, 'Settlement', h('select', { name: 'settlement', disabled: readOnly }, SETTLEMENTS.map(([value, label]) => h('option', { value, selected: value === p.settlement }, label)))),
    h('label', {}, 'Days to pay', h('input', { name: 'payment_terms_days', type: 'number', min: 0, max: 365, required: true, value: p.payment_terms_days, disabled: readOnly })),
    h('label', {}, 'Block when overdue', h('input', { name: 'block_when_overdue', type: 'checkbox', checked: p.block_when_overdue, disabled: readOnly })),
    h('button', { type: 'submit', disabled: readOnly }, 'Save')),
    registration,
    h('div', { class: 'toolbar' },
      h('button', { type: 'button', disabled: readOnly, 'data-block': '', onclick: () => patch({ blocked: !p.blocked }, (p.blocked ? 'Unblocked ' : 'Blocked ') + p.name) }, p.blocked ? 'Unblock' : 'Block'),
      h('button', {
        type: 'button',
        disabled: readOnly,
        onclick: async () => {
          const answer = await act(() => api('POST', path + '/rotate'), p.state === 'registered' ? 'New credentials exchanged with ' + p.name : null)
          if (answer && answer.token_a) showTokenA(answer)
        }
      }, p.state === 'registered' ? 'Rotate credentials' : 'New token A'),
      h('button', {
        type: 'button',
        class: 'danger',
        disabled: readOnly,
        onclick: () => {
          const told = p.state === 'registered' ? ' Strom tells the partner first.' : ''
          if (confirm('Remove ' + p.name + '? Its tokens stop working at once.' + told)) act(() => api('DELETE', path), 'Removed ' + p.name)
        }
      }, 'Remove')))
}

function invoiceCell (r) {
  if (!r.bolt11) return '—'
  return h('details', {}, h('summary', {}, 'Invoice'), h('code', { class: 'mono', dataset: { bolt11: '' } }, r.bolt11))
}

function receivableRow (r, readOnly) {
  const unpaid = r.state === 'open' || r.state === 'invoiced'
  const path = '/ocpi/receivables/' + r.id
  return h('tr', { class: r.overdue ? 'overdue' : '', dataset: { receivable: r.id, state: r.state } },
    h('td', {}, r.partner_name || 'partner ' + r.partner_id),
    h('td', {}, h('a', { href: '#/sessions/' + r.session_id, class: 'mono' }, r.session_id)),
    h('td', { class: 'num' }, sat(r.amount_msat)),
    h('td', {}, h('span', { class: 'badge' }, human(r.state)), r.overdue ? h('span', { class: 'badge alert', 'data-overdue': '' }, 'overdue') : ''),
    h('td', {}, day(r.invoiced_at)), h('td', {}, day(r.due_at)), h('td', {}, day(r.paid_at)),
    h('td', {}, invoiceCell(r)),
    h('td', {}, unpaid ? [
      h('button', { type: 'button', disabled: readOnly, 'data-invoice': '', onclick: () => act(() => api('POST', path + '/invoice'), 'Invoice ready for ' + sat(r.amount_msat)) }, r.bolt11 ? 'New invoice' : 'Invoice'), ' ',
      h('button', {
        type: 'button',
        class: 'danger',
        disabled: readOnly,
        'data-write-off': '',
        onclick: () => { if (confirm('Write off ' + sat(r.amount_msat) + ' owed by ' + (r.partner_name || r.partner_id) + '? The partner is no longer blocked by it.')) act(() => api('POST', path + '/write-off'), 'Written off') }
      }, 'Write off')] : ''))
}

function roamingFilters (params, partners) {
  const partnerOptions = [['', 'all partners'], ...partners.map((p) => [String(p.id), p.name])]
  const select = (name, options) => h('select', { name }, options.map(([value, label]) => h('option', { value, selected: value === (params.get(name) || '') }, label)))
  return h('form', {
    class: 'row',
    id: 'roaming-filters',
    onsubmit: (event) => {
      event.preventDefault()
      location.hash = '#/roaming?' + new URLSearchParams([...new FormData(event.target)].filter(([, v]) => v))
    }
  },
  h('label', {}, 'Partner', select('partner_id', partnerOptions)),
  h('label', {}, 'Receivables', select('state', RECEIVABLE_STATES)),
  h('label', {}, 'Only overdue', h('input', { name: 'overdue', type: 'checkbox', value: 'true', checked: params.get('overdue') === 'true' })),
  h('button', { type: 'submit' }, 'Show'))
}

function logTable (lines, names) {
  if (!lines.length) return h('p', { class: 'muted' }, 'No OCPI requests yet.')
  return h('div', { class: 'scroll' }, h('table', { id: 'ocpi-log' },
    h('thead', {}, h('tr', {}, ['Time', 'Partner', 'Way', 'Request', 'HTTP', 'OCPI status', 'Excerpt'].map((t) => h('th', {}, t)))),
    h('tbody', {}, lines.map((line) => h('tr', { dataset: { line: line.id } },
      h('td', {}, when(line.at)),
      h('td', {}, line.partner_id ? names[line.partner_id] || 'partner ' + line.partner_id : 'unknown'),
      h('td', {}, line.direction === 'in' ? 'received' : 'sent'),
      h('td', {}, h('span', { class: 'mono' }, line.method + ' ' + line.url)),
      h('td', { class: 'num' }, String(line.http_status ?? '—')),
      h('td', { class: 'num' }, String(line.status_code ?? '—')),
      h('td', {}, h('code', {}, line.excerpt)))))))
}

async function roamingView (view, params) {
  const readOnly = readOnlyUser()
  const shown = location.hash
  const query = new URLSearchParams([...params].filter(([key]) => ['state', 'partner_id', 'overdue'].includes(key)))
  const log = new URLSearchParams({ limit: '100' })
  if (params.get('partner_id')) log.set('partner_id', params.get('partner_id'))
  const [partners, receivables, lines] = await Promise.all([
    api('GET', '/ocpi/partners'), api('GET', '/ocpi/receivables?' + query), api('GET', '/ocpi/log?' + log)
  ])
  // A live refresh begun before the filters changed must not paint the old answer over the new.
  if (location.hash !== shown) return
  const names = Object.fromEntries(partners.partners.map((p) => [p.id, p.name]))
  const owed = receivables.receivables
  view.replaceChildren(
    h('h1', {}, 'Roaming (OCPI)'),
    h('h2', {}, 'Partners'),
    addPartnerForm(readOnly),
    partners.partners.length
      ? h('div', { class: 'cards', id: 'partners' }, partners.partners.map((p) => partnerCard(p, readOnly)))
      : h('p', { class: 'muted' }, 'No roaming partners yet.'),
    h('h2', {}, 'What partners owe'),
    roamingFilters(params, partners.partners),
    owed.length
      ? h('div', { class: 'scroll' }, h('table', { id: 'receivables' },
        h('thead', {}, h('tr', {}, ['Partner', 'Session', 'Amount', 'State', 'Invoiced', 'Due', 'Paid', 'Invoice', ''].map((t) => h('th', { class: t === 'Amount' ? 'num' : '' }, t)))),
        h('tbody', {}, owed.map((r) => receivableRow(r, readOnly)))))
      : h('p', { class: 'muted', id: 'receivables' }, 'Nothing here.'),
    h('h2', {}, 'OCPI log (latest 100' + (params.get('partner_id') ? ', ' + (names[params.get('partner_id')] || 'partner ' + params.get('partner_id')) : '') + ')'),
    logTable(lines.lines, names))
}
