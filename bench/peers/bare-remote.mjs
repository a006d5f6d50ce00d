// Lower bound for any design whose tool runs in another process over NATS:
// the bare loop, plus one NATS request per tool call to a responder process
// (nats-bench.mjs --responder) through a plain nats-server (no JetStream).
// No checkpoints, events, validation or tracing. The tool also runs here
// (addTool) only so that the heap gate and the tool count work as for other rows.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { connect } from '@nats-io/transport-node';
import { chatCaller } from '../lib/chat-caller.mjs';
import { PROMPT, SYSTEM, addTool } from '../lib/workload.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const TROUPE_DIR = process.env.TROUPE_DIR;
const { startNatsServer } = await import(path.join(TROUPE_DIR, 'testing/natsServer.ts'));

export async function create({ mode, baseURL, durable = false }) {
  const callModel = chatCaller({ mode, baseURL });
  const nats = await startNatsServer({});
  const responder = spawn(process.execPath, [path.join(here, '..', 'nats-bench.mjs'), '--responder', nats.url], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((resolve) => responder.stdout.once('data', resolve));
  process.on('exit', () => { try { responder.kill('SIGTERM'); } catch {} try { process.kill(nats.pid, 'SIGTERM'); } catch {} });
  const nc = await connect({ servers: nats.url });
  let js = null;
  if (durable) {
    const { jetstream, jetstreamManager } = await import(path.join(TROUPE_DIR, 'node_modules/@nats-io/jetstream/lib/mod.js'));
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: 'CKPT', subjects: ['ckpt.>'] });
    js = jetstream(nc);
  }
  let sessionSeq = 0;

  async function runSession() {
    const messages = [{ role: 'system', content: SYSTEM }, { role: 'user', content: PROMPT }];
    const id = ++sessionSeq;
    for (;;) {
      const message = await callModel(messages);
      messages.push(message);
      // The least durability can cost: the step's new message stored, acked, before acting on it.
      if (js) await js.publish(`ckpt.${id}`, JSON.stringify(message));
      if (!message.tool_calls?.length) return message.content;
      for (const call of message.tool_calls) {
        const args = JSON.parse(call.function.arguments);
        const reply = await nc.request('bench.tools.add', JSON.stringify(args), { timeout: 5000 });
        const { sum } = reply.json();
        if (sum !== await addTool(args.a, args.b)) throw new Error('bad sum');
        messages.push({ role: 'tool', tool_call_id: call.id, content: String(sum) });
      }
    }
  }
  return {
    runSession,
    otherProcesses: () => [{ name: 'worker', pid: responder.pid }, { name: 'nats-server', pid: nats.pid }],
  };
}
