// Shared by the nostr_tools_*.mjs scripts: load nostr-tools from the directory that
// tests/peers/node.sh installed it into (NOSTR_TOOLS_DIR), and run a batch of operations
// read as JSON from stdin, writing one JSON result per operation to stdout.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'

const dir = process.env.NOSTR_TOOLS_DIR
if (!dir) {
  process.stderr.write('NOSTR_TOOLS_DIR is not set\n')
  process.exit(2)
}

export async function load(name) {
  const file = join(dir, 'node_modules', 'nostr-tools', 'lib', 'esm', `${name}.js`)
  return import(pathToFileURL(file).href)
}

export const hexToBytes = (hex) => Uint8Array.from(Buffer.from(hex, 'hex'))
export const bytesToHex = (bytes) => Buffer.from(bytes).toString('hex')

// ops: { name: async (args) => result }. Input: [{op, ...args}]; output: [{ok, result|error}].
export async function serve(ops) {
  const batch = JSON.parse(readFileSync(0, 'utf8'))
  const results = []
  for (const { op, ...args } of batch) {
    if (!(op in ops)) {
      results.push({ ok: false, error: `unknown op ${op}` })
      continue
    }
    try {
      results.push({ ok: true, result: await ops[op](args) })
    } catch (err) {
      results.push({ ok: false, error: String(err && err.message ? err.message : err) })
    }
  }
  process.stdout.write(JSON.stringify(results))
}
