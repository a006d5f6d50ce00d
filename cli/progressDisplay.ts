import type { SessionEvent } from '../transport/messages.ts';

const maxShown = 160;
const clip = (text: string) => (text.length > maxShown ? `${text.slice(0, maxShown - 1)}…` : text);
const money = (usd: number) => `$${usd.toFixed(usd < 0.01 ? 5 : 4)}`;
const tokens = (n: number) => n.toLocaleString('en-US');

/** One readable line per event, or undefined for events a person need not see. */
export function describeEvent(event: SessionEvent): string | undefined {
  switch (event.type) {
    case 'session.started':
      return `▶ session ${event.sessionId} · agent ${event.agent} · model ${event.model} · trace ${event.traceId}`;
    case 'turn.started':
      return `─ turn ${event.turn}`;
    case 'model.responded': {
      const said = event.content ? ` "${clip(event.content.replace(/\s+/g, ' '))}"` : '';
      const asked = event.toolCalls.length > 0 ? ` → ${event.toolCalls.map((c) => c.name).join(', ')}` : '';
      return `  model ${event.model}${said}${asked} · ${tokens(event.usage.inputTokens)} in / ${tokens(event.usage.outputTokens)} out · ${money(event.usage.costUsd)} (total ${tokens(event.totals.inputTokens + event.totals.outputTokens)} tok, ${money(event.totals.costUsd)})`;
    }
    case 'tool.call.rejected':
      return `  ✗ ${event.tool} refused before sending: ${clip(event.failure.message)}`;
    case 'tool.call.started':
      return `  → ${event.tool} ${clip(JSON.stringify(event.arguments))}`;
    case 'tool.call.finished':
      return event.status === 'ok'
        ? `  ✓ ${event.tool} ${event.durationMs} ms · ${clip(JSON.stringify(event.result) ?? 'null')}`
        : `  ✗ ${event.tool} ${event.durationMs} ms · ${event.failure?.code}: ${clip(event.failure?.message ?? '')}`;
    case 'session.finished':
      return undefined;
  }
}

/** The closing block: status, the answer, and what the session spent. */
export function describeOutcome(event: Extract<SessionEvent, { type: 'session.finished' }>): string {
  const lines = [
    '',
    `■ ${event.status}${event.status === 'completed' ? '' : ` (${event.stopReason})`}`,
  ];
  if (event.error) lines.push(`  error: ${event.error}`);
  if (event.output) lines.push('', event.output, '');
  lines.push(
    `  steps ${event.steps} · tool calls ${event.toolCalls} · tokens ${tokens(event.usage.inputTokens)} in / ${tokens(event.usage.outputTokens)} out · cost ${money(event.usage.costUsd)} · ${(event.durationMs / 1000).toFixed(1)} s`,
    `  trace ${event.traceId}`,
  );
  return lines.join('\n');
}

/**
 * The live status line on a terminal: redrawn in place under the event lines, showing the turn,
 * the tools running, the tokens and cost so far and the time elapsed.
 */
export class LiveStatusLine {
  readonly #out: NodeJS.WriteStream;
  readonly #started = Date.now();
  readonly #running = new Set<string>();
  #turn = 0;
  #tokens = 0;
  #costUsd = 0;
  #timer: NodeJS.Timeout;
  #frame = 0;

  constructor(out: NodeJS.WriteStream) {
    this.#out = out;
    this.#timer = setInterval(() => this.#draw(), 120);
  }

  /** Prints an event line above the status line and updates the counters. */
  show(event: SessionEvent): void {
    if (event.type === 'turn.started') this.#turn = event.turn;
    if (event.type === 'model.responded') {
      this.#tokens = event.totals.inputTokens + event.totals.outputTokens;
      this.#costUsd = event.totals.costUsd;
    }
    if (event.type === 'tool.call.started') this.#running.add(event.callId);
    if (event.type === 'tool.call.finished') this.#running.delete(event.callId);
    const line = describeEvent(event);
    this.#out.write('\r\x1b[K');
    if (line) this.#out.write(`${line}\n`);
    this.#draw();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#out.write('\r\x1b[K');
  }

  #draw(): void {
    const spinner = '⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏'[this.#frame++ % 10];
    const running = this.#running.size > 0 ? ` · ${this.#running.size} tool call(s) running` : '';
    const seconds = ((Date.now() - this.#started) / 1000).toFixed(1);
    this.#out.write(`\r\x1b[K${spinner} turn ${this.#turn}${running} · ${tokens(this.#tokens)} tokens · ${money(this.#costUsd)} · ${seconds} s`);
  }
}
