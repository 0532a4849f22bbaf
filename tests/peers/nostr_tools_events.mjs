// Events and NIP-19 as nostr-tools sees them: sign, hash, verify, encode, decode.
import { bytesToHex, hexToBytes, load, serve } from './nostr_tools_lib.mjs'

const pure = await load('pure')
const nip19 = await load('nip19')

await serve({
  sign: ({ secret, kind, tags, content, created_at }) =>
    pure.finalizeEvent({ kind, tags, content, created_at }, hexToBytes(secret)),
  hash: ({ event }) => pure.getEventHash(event),
  verify: ({ event }) => pure.verifyEvent({ ...event }),
  public_key: ({ secret }) => pure.getPublicKey(hexToBytes(secret)),
  decode: ({ text }) => {
    const { type, data } = nip19.decode(text)
    return { type, data: data instanceof Uint8Array ? bytesToHex(data) : data }
  },
  encode_naddr: (pointer) => nip19.naddrEncode(pointer),
  encode_nprofile: (pointer) => nip19.nprofileEncode(pointer),
  encode_npub: ({ pubkey }) => nip19.npubEncode(pubkey),
})
