// NIP-04, NIP-44 and NIP-17/NIP-59 as nostr-tools does them.
import { bytesToHex, hexToBytes, load, serve } from './nostr_tools_lib.mjs'

const nip04 = await load('nip04')
const nip44 = await load('nip44')
const nip17 = await load('nip17')
const nip59 = await load('nip59')

const conversationKey = (secret, pubkey) => nip44.v2.utils.getConversationKey(hexToBytes(secret), pubkey)

await serve({
  nip04_encrypt: ({ secret, pubkey, text }) => nip04.encrypt(hexToBytes(secret), pubkey, text),
  nip04_decrypt: ({ secret, pubkey, payload }) => nip04.decrypt(hexToBytes(secret), pubkey, payload),
  nip44_conversation_key: ({ secret, pubkey }) => bytesToHex(conversationKey(secret, pubkey)),
  nip44_encrypt: ({ secret, pubkey, text, nonce }) =>
    nip44.v2.encrypt(text, conversationKey(secret, pubkey), nonce ? hexToBytes(nonce) : undefined),
  nip44_decrypt: ({ secret, pubkey, payload }) => nip44.v2.decrypt(payload, conversationKey(secret, pubkey)),
  nip17_wrap: ({ secret, recipient, text }) =>
    nip17.wrapEvent(hexToBytes(secret), { publicKey: recipient }, text),
  nip59_unwrap: ({ secret, wrap }) => nip59.unwrapEvent(wrap, hexToBytes(secret)),
})
