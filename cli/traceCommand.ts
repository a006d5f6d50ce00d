import { parseArgs } from 'node:util';
import { followSessionEvents } from '../client/sessionEventFeed.ts';
import { createLogger } from '../observability/logger.ts';
import { describeTraceTree, traceTree, type TraceNode } from '../observability/traceTree.ts';
import { connectProcess } from './natsSettings.ts';
import { subjectTokenPattern } from '../transport/subjects.ts';
import { ConfigurationError, readEnvironment, type Environment } from './environment.ts';
import { terminalJson, terminalLine } from './terminalText.ts';
import { UsageError } from './usageError.ts';

const usage = 'usage: troupe trace <sessionId> [--json]   (reads Jaeger at JAEGER_URL, e.g. http://localhost:16686)';

/** The session's trace id, from its event stream (every session event stream starts with it). */
async function traceIdOf(env: Environment, sessionId: string): Promise<string> {
  const namespace = env.TROUPE_NAMESPACE;
  const nc = await connectProcess(env, { name: 'troupe-trace', logger: createLogger({ name: 'trace', level: 'warn' }), longRunning: false });
  try {
    const feed = await followSessionEvents(nc, sessionId, { namespace });
    if (!feed.replayable) throw new ConfigurationError('JetStream is not available, so the session\'s trace id cannot be looked up: pass the trace id instead (troupe trace --trace-id <id>).');
    const timer = setTimeout(() => feed.stop(), 5_000);
    try {
      for await (const event of feed.events) {
        if ('traceId' in event && event.traceId) return event.traceId;
      }
    } finally {
      clearTimeout(timer);
      feed.stop();
    }
    throw new UsageError(`No events of session ${sessionId} were found: is the id right, and did the session run on this NATS, in namespace ${namespace}?`);
  } finally {
    await nc.drain();
  }
}

/** `troupe trace <sessionId>`: the session's span tree with durations, tokens and cost, from Jaeger. */
export async function traceCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, options: { json: { type: 'boolean', default: false }, 'trace-id': { type: 'string' } }, strict: true, allowPositionals: true });
  const sessionId = positionals[0];
  if (values['trace-id'] === undefined && (positionals.length !== 1 || !sessionId || !subjectTokenPattern.test(sessionId))) throw new UsageError(usage);
  const env = readEnvironment();
  if (!env.JAEGER_URL) throw new ConfigurationError('troupe trace reads Jaeger\'s query API: set JAEGER_URL (e.g. http://localhost:16686).');
  const traceId = values['trace-id'] ?? (await traceIdOf(env, sessionId as string));
  if (!/^[0-9a-f]{32}$/.test(traceId)) throw new UsageError(`"${traceId}" is not a trace id (32 hex digits)`);
  const url = new URL(`/api/v3/traces/${traceId}`, env.JAEGER_URL);
  let response: Response;
  try {
    response = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  } catch (error) {
    throw new ConfigurationError(`Jaeger did not answer at ${url.origin}: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (response.status === 404) {
    process.stderr.write(`troupe: Jaeger has no trace ${traceId} (yet): spans are exported in batches, and only by processes with OTEL_EXPORTER_OTLP_ENDPOINT set.\n`);
    return 1;
  }
  if (!response.ok) throw new ConfigurationError(`Jaeger answered ${response.status} for ${url.href}: ${(await response.text()).slice(0, 300)}`);
  const roots = traceTree(await response.json());
  if (values.json) {
    process.stdout.write(`${terminalJson({ traceId, spans: roots })}\n`);
    return 0;
  }
  const all: TraceNode[] = [];
  const collect = (n: TraceNode) => {
    all.push(n);
    n.children.forEach(collect);
  };
  roots.forEach(collect);
  const chats = all.filter((n) => n.name.startsWith('chat '));
  const tokensIn = chats.reduce((s, n) => s + (n.inputTokens ?? 0), 0);
  const tokensOut = chats.reduce((s, n) => s + (n.outputTokens ?? 0), 0);
  const cost = chats.reduce((s, n) => s + (n.costUsd ?? 0), 0);
  process.stdout.write(`trace ${traceId}${sessionId ? ` · session ${sessionId}` : ''}\n`);
  // Span names and error messages carry tool and model text.
  for (const line of describeTraceTree(roots)) process.stdout.write(`${terminalLine(line)}\n`);
  process.stdout.write(`\n${all.length} spans · ${new Set(all.map((n) => n.service)).size} services · ${chats.length} model calls · ${tokensIn} in / ${tokensOut} out · $${cost.toFixed(6)}\n`);
  return 0;
}
