// NIP-98 HTTP Auth as nostr-tools does it: make Authorization headers, validate them.
import { hexToBytes, load, serve } from './nostr_tools_lib.mjs'

const pure = await load('pure')
const nip98 = await load('nip98')

const signer = (secret) => async (event) => pure.finalizeEvent(event, hexToBytes(secret))

await serve({
  // payload: the JSON object a client sends as its body (nostr-tools hashes JSON.stringify of it)
  header: ({ secret, url, method, payload }) =>
    nip98.getToken(url, method, signer(secret), true, payload || undefined),
  validate: async ({ header, url, method, payload }) => {
    const event = await nip98.unpackEventFromToken(header)
    return nip98.validateEvent(event, url, method, payload || undefined)
  },
})
