// A charge point played by ocpp-rpc (an independent OCPP-J implementation), driven by the
// Python tests over stdin/stdout, one JSON object per line.
//
// Commands (stdin), each with an "id" echoed in the reply:
//   {"op":"connect","url":...,"identity":...,"password":?,"ca":?,"protocols":?,"defaults":?}
//       defaults: the answer to each of the server's CALLs by method (else status Accepted)
//   {"op":"call","method":...,"params":{...}}   -> {"ok":true,"result":{...}} | {"ok":false,"code":...}
//   {"op":"raw","frame":"..."}                  -> sends the text as is
//   {"op":"answer","method":...,"result":{...}} -> canned answer to the server's CALLs of method
//   {"op":"answer","method":...,"error":"..."}  -> answer them with a CALLERROR of that code
//   {"op":"answer","method":...,"silent":true}  -> never answer them
//   {"op":"close","force":?}
// Events (stdout): {"event":"call",...} for every CALL from the server, {"event":"inbound",
// "message":...} for every frame received, {"event":"strictValidationFailure",...},
// {"event":"badMessage",...}, {"event":"close",...}.
//
// Strict mode is on: ocpp-rpc checks what it sends and what it receives against its schemas of
// the protocol agreed (OCPP 1.6 or 2.0.1) and reports any failure as an event.
'use strict';

const fs = require('fs');
const readline = require('readline');
const { RPCClient, createRPCError, NOREPLY } = require('ocpp-rpc');

let client = null;
let defaults = {};
const answers = new Map();

function emit(obj) {
    process.stdout.write(JSON.stringify(obj) + '\n');
}

function defaultAnswer(method) {
    return defaults[method] ?? { status: 'Accepted' };
}

async function connect(cmd) {
    const wsOpts = {};
    if (cmd.ca) {
        wsOpts.ca = fs.readFileSync(cmd.ca);
    }
    defaults = cmd.defaults ?? {};
    client = new RPCClient({
        endpoint: cmd.url,
        identity: cmd.identity,
        password: cmd.password ?? undefined,
        protocols: cmd.protocols ?? ['ocpp1.6'],
        strictMode: true,
        reconnect: false,
        pingIntervalMs: 600000,
        callTimeoutMs: 10000,
        wsOpts,
    });
    client.on('message', ({ message, outbound }) => {
        if (!outbound) emit({ event: 'inbound', message: message.toString() });
    });
    client.on('strictValidationFailure', (e) => emit({
        event: 'strictValidationFailure',
        method: e.method,
        outbound: e.outbound,
        isCall: e.isCall,
        error: String(e.error && e.error.message),
    }));
    client.on('badMessage', (e) => emit({
        event: 'badMessage',
        message: e.buffer.toString(),
        error: String(e.error && e.error.message),
    }));
    client.on('close', (e) => emit({ event: 'close', code: e.code, reason: String(e.reason) }));
    client.handle(({ method, params }) => {
        emit({ event: 'call', method, params });
        const answer = answers.get(method) ?? { result: defaultAnswer(method) };
        if (answer.silent) return NOREPLY;
        if (answer.error) throw createRPCError(answer.error, 'refused by the test');
        return answer.result;
    });
    await client.connect();
    return { protocol: client.protocol };
}

async function handle(cmd) {
    switch (cmd.op) {
        case 'connect':
            return connect(cmd);
        case 'call':
            return client.call(cmd.method, cmd.params);
        case 'raw':
            client.sendRaw(cmd.frame);
            return {};
        case 'answer':
            answers.set(cmd.method, cmd);
            return {};
        case 'close':
            // force: drop the TCP connection without a close handshake (a network failure)
            if (client) await client.close({ code: 1000, force: Boolean(cmd.force) });
            return {};
        default:
            throw new Error(`unknown op ${cmd.op}`);
    }
}

const lines = readline.createInterface({ input: process.stdin });
lines.on('line', async (line) => {
    let cmd;
    try {
        cmd = JSON.parse(line);
    } catch (err) {
        emit({ event: 'driverError', error: String(err) });
        return;
    }
    try {
        const result = await handle(cmd);
        emit({ id: cmd.id, ok: true, result: result ?? {} });
    } catch (err) {
        emit({
            id: cmd.id,
            ok: false,
            code: String(err.rpcErrorCode ?? err.code ?? err.name),
            message: String(err.message),
        });
    }
});
lines.on('close', async () => {
    if (client) await client.close({ code: 1000, force: true }).catch(() => {});
    process.exit(0);
});
