// NIP-57 as nostr-tools does it: make and sign zap requests, validate a receipt's description.
import { hexToBytes, load, serve } from './nostr_tools_lib.mjs'

const pure = await load('pure')
const nip57 = await load('nip57')

await serve({
  // A zap request exactly as a client sends it to the LNURL callback: the JSON text.
  zap_request: ({ secret, pubkey, event, amount, relays, comment, created_at, extra_tags }) => {
    const template = nip57.makeZapRequest(
      event ? { event, amount, relays, comment } : { pubkey, amount, relays, comment },
    )
    if (created_at !== undefined) template.created_at = created_at
    for (const tag of extra_tags || []) template.tags.push(tag)
    return JSON.stringify(pure.finalizeEvent(template, hexToBytes(secret)))
  },
  validate_zap_request: ({ description }) => nip57.validateZapRequest(description),
  receipt_amount_sat: ({ bolt11 }) => nip57.getSatoshisAmountFromBolt11(bolt11),
})
