// What a map or marketplace client built on nostr-tools makes of Strom's listing and handler
// events: their kind's class, whether its filters (#g cells, #t, #k, #d) select them, and the
// naddr a NIP-89 client puts in place of <bech32>.
import { load, serve } from './nostr_tools_lib.mjs'

const pure = await load('pure')
const kinds = await load('kinds')
const filter = await load('filter')
const nip19 = await load('nip19')

await serve({
  verify: ({ event }) => pure.verifyEvent({ ...event }),
  classify: ({ kind }) => kinds.classifyKind(kind),
  kinds: () => ({
    listing: kinds.ClassifiedListing,
    handler_information: kinds.Handlerinformation,
    handler_recommendation: kinds.Handlerrecommendation,
  }),
  matches: ({ filter: f, event }) => filter.matchFilter(f, event),
  handler_url: ({ handler, event }) => {
    const web = handler.tags.find((t) => t[0] === 'web' && t[2] === 'naddr')
    const d = event.tags.find((t) => t[0] === 'd')[1]
    const naddr = nip19.naddrEncode({ kind: event.kind, pubkey: event.pubkey, identifier: d })
    return web[1].replace('<bech32>', naddr)
  },
})
