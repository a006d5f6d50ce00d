import type { SessionEvent } from '../transport/messages.ts';
import { terminalLine, terminalText } from './terminalText.ts';

const maxShown = 160;
const clip = (text: string) => (text.length > maxShown ? `${text.slice(0, maxShown - 1)}…` : text);
const money = (usd: number) => `$${usd.toFixed(usd < 0.01 ? 5 : 4)}`;
const tokens = (n: number) => n.toLocaleString('en-US');

/**
 * One readable line per event, or undefined for events a person need not see. Safe to print: the
 * models', tools' and people's text in it carries no escape sequence or control character.
 */
export function describeEvent(event: SessionEvent): string | undefined {
  const line = describeEventAsIs(event);
  return line === undefined ? undefined : terminalLine(line);
}

function describeEventAsIs(event: SessionEvent): string | undefined {
  switch (event.type) {
    case 'session.started':
      return `▶ session ${event.sessionId} · agent ${event.agent} · model ${event.model}${event.tenant ? ` · tenant ${event.tenant}` : ''}${event.user ? ` · user ${event.user}` : ''} · trace ${event.traceId}${event.phases ? `\n◆ phase ${event.phases.join(' › ')}` : ''}`;
    case 'guardrail.decided':
      if (event.outcome === 'pass' && !event.failed) return undefined;
      return `  ⛨ guardrail ${event.guardrail} at ${event.point}${event.tool ? ` (${event.tool})` : ''}: ${event.outcome === 'block' ? 'blocked' : event.outcome === 'rewrite' ? 'rewrote' : 'passed'}${event.detail ? `: ${clip(event.detail)}` : ''}`;
    case 'workflow.transitioned':
      return `◆ phase ${event.to.join(' › ')} (from ${event.from.join(' › ')}: ${phaseTrigger(event)})`;
    case 'approval.requested':
      return `  ⏸ waiting for approval until ${event.expiresAt}: ${event.calls.map((c) => `${c.tool} ${clip(JSON.stringify(c.arguments))} [${c.callId}]`).join('; ')}`;
    case 'approval.decided':
      return `  ${event.decision === 'approved' ? '✔' : '✘'} ${event.decision} by ${event.by}${event.reason ? `: ${event.reason}` : ''}`;
    case 'control.applied':
      return event.accepted ? undefined : `  ✘ ${event.control.replace('session.', '')} [${event.controlId}] refused: ${event.reason ?? 'no reason given'}`;
    case 'session.interrupted':
      return `⏸ interrupted by a person after turn ${event.turn}; waiting for a redirect or continue`;
    case 'session.redirected':
      return `  ➜ new instruction from a person: ${clip(event.instruction)}`;
    case 'session.rolled_back':
      return `↶ rolled back to turn ${event.toTurn} by ${event.by}: ${event.steps.map((s) => `${s.tool} ${s.result ?? s.action.replaceAll('_', ' ')}`).join(', ') || 'nothing to undo'}`;
    case 'session.taken_over':
      return `✋ taken over by ${event.by}: the model waits while they call tools themselves`;
    case 'session.handed_back':
      return `↩ handed back to the model by ${event.by}${event.instruction ? `: ${clip(event.instruction)}` : ''}`;
    case 'session.resumed':
      return `↺ resumed by ${event.owner} from its checkpoint (${event.state})${event.resentToolCalls.length > 0 ? `; re-sending ${event.resentToolCalls.map((c) => c.tool).join(', ')} with the same call ids` : ''}`;
    case 'turn.started':
      return `─ turn ${event.turn}`;
    case 'model.responded': {
      const said = event.content ? ` "${clip(event.content.replace(/\s+/g, ' '))}"` : '';
      const asked = event.toolCalls.length > 0 ? ` → ${event.toolCalls.map((c) => c.name).join(', ')}` : '';
      if (event.cached) return `  model ${event.model} (from the cache, saved ${money(event.savedUsd ?? 0)})${said}${asked}`;
      return `  model ${event.model}${said}${asked} · ${tokens(event.usage.inputTokens)} in / ${tokens(event.usage.outputTokens)} out · ${money(event.usage.costUsd)} (total ${tokens(event.totals.inputTokens + event.totals.outputTokens)} tok, ${money(event.totals.costUsd)})`;
    }
    case 'tool.call.rejected':
      return `  ✗ ${event.tool} refused before sending: ${clip(event.failure.message)}`;
    case 'tool.call.started':
      return `  → ${event.tool} ${clip(JSON.stringify(event.arguments))}`;
    case 'tool.call.finished': {
      const via = event.servedBy && event.servedBy !== event.tool ? ` (served by ${event.servedBy})` : '';
      const tries = event.attempts && event.attempts > 1 ? ` after ${event.attempts} attempts` : '';
      const summary = `${event.summarised ? ' [summarised: too large for the model]' : ''}${event.cached ? ' [from the cache]' : ''}`;
      return event.status === 'ok'
        ? `  ✓ ${event.tool}${via} ${ms(event.durationMs)}${tries}${summary} · ${clip(JSON.stringify(event.result) ?? 'null')}`
        : `  ✗ ${event.tool} ${ms(event.durationMs)}${tries} · ${event.failure?.code}: ${clip(event.failure?.message ?? '')}`;
    }
    case 'tool.call.in_doubt':
      return `  ? ${event.tool} in doubt: its worker died after starting it, so whether it took effect is unknown; a person must decide (troupe sessions resume <id> "<answer>")`;
    case 'tool.call.progress':
      return `  … ${event.tool} ${event.total !== undefined ? `${event.progress}/${event.total}` : event.progress}${event.message ? `: ${clip(event.message)}` : ''}`;
    case 'tool.call.retrying':
      return `  ↻ ${event.tool} attempt ${event.attempt} in ${ms(event.delayMs)} (${event.failure.code}: ${clip(event.failure.message)})`;
    case 'tool.call.fallback':
      return `  ⇢ ${event.from} unavailable, falling back to ${event.to}`;
    case 'tool.breaker.changed':
      return `  ⚡ circuit for ${event.tool}: ${event.from} → ${event.to}`;
    case 'model.retrying':
      return `  ↻ model ${event.model} attempt ${event.attempt} in ${ms(event.delayMs)}${event.retryAfter ? ' (Retry-After)' : ''}: ${clip(event.error)}`;
    case 'model.fallback':
      return `  ⇢ model ${event.from} failed, falling back to ${event.to}: ${clip(event.error)}`;
    case 'session.repair':
      return `  ✎ asking the model to repair its output (${event.consecutive} in a row): ${clip(event.reason)}`;
    case 'session.model_switched':
      return `  ⇢ switching model ${event.from} → ${event.to}: ${event.reason}`;
    case 'loop.detected':
      return `  ⟲ loop detected, ${event.action === 'refocus' ? 'refocusing the model' : 'escalating to a person'}: ${clip(event.description)}`;
    case 'model.routed':
      return `  ⤳ model ${event.model} for turn ${event.turn} · ${clip(event.reason)}`;
    case 'specialist.event':
      return describeSpecialistEvent(event);
    case 'context.assembled':
      // Every turn has one; the live status line shows the size, and compressions get their own line.
      return undefined;
    case 'context.compressed':
      return `  ⇣ context kept within budget: ${event.removed.map(describeRemoval).join('; ')}`;
    case 'session.finished':
      return undefined;
    default:
      return unreachable(event);
  }
}

const ms = (value: number) => `${Math.round(value)} ms`;

function phaseTrigger(move: Extract<SessionEvent, { type: 'workflow.transitioned' }>): string {
  switch (move.trigger) {
    case 'tool': return `${move.detail ?? 'a tool'} succeeded`;
    case 'choice': return `the model moved on${move.detail ? `: ${clip(move.detail)}` : ''}`;
    case 'guard': return `a guard over the ledger held${move.detail ? `: ${move.detail}` : ''}`;
    case 'approval': return `approved by ${move.by ?? 'a person'}${move.detail ? `: ${clip(move.detail)}` : ''}`;
  }
}

const turnRange = (turns: number[]) => (turns.length === 0 ? '' : turns.length === 1 ? `turn ${turns[0]}` : `turns ${turns[0]}–${turns.at(-1)}`);

function describeRemoval(removal: Extract<SessionEvent, { type: 'context.compressed' }>['removed'][number]): string {
  switch (removal.kind) {
    case 'tool_results_dropped':
      return `dropped ${removal.results} older tool result(s) of ${turnRange(removal.turns)} (${tokens(removal.tokens)} tokens)`;
    case 'turns_summarised':
      return `summarised ${turnRange(removal.turns)} (${tokens(removal.tokens)} tokens → ${tokens(removal.summaryTokens)})`;
    case 'turns_windowed':
      return `left out ${turnRange(removal.turns)} (${tokens(removal.tokens)} tokens)`;
  }
}

/** A specialist's event, indented by its depth and marked with its name. */
function describeSpecialistEvent(relayed: Extract<SessionEvent, { type: 'specialist.event' }>): string | undefined {
  const inner = relayed.event;
  const line = inner.type === 'session.finished'
    ? `◀ ${inner.status}${inner.status === 'completed' ? '' : ` (${inner.stopReason})`} · steps ${inner.steps} · tool calls ${inner.toolCalls} · ${tokens(inner.usage.inputTokens + inner.usage.outputTokens)} tok · ${money(inner.usage.costUsd)}`
    : inner.type === 'session.started'
      ? `▶ ${clip(inner.task.replace(/\s+/g, ' '))} · model ${inner.model}`
      : describeEvent(inner);
  if (line === undefined) return undefined;
  return `${'    '.repeat(relayed.depth)}[${relayed.agent}] ${line.trimStart()}`;
}

// Fails to compile when an event type is added without a line here.
function unreachable(event: never): undefined {
  void event;
  return undefined;
}

/**
 * The closing block: status, the answer, and what the session spent. Safe to print: the answer
 * keeps its line breaks and tabs, and loses any escape sequence or other control character.
 */
export function describeOutcome(event: Extract<SessionEvent, { type: 'session.finished' }>): string {
  const lines = [
    '',
    terminalLine(`■ ${event.status}${event.status === 'completed' ? '' : ` (${event.stopReason})`}`),
  ];
  if (event.error) lines.push(terminalLine(`  error: ${event.error}`));
  if (event.output) lines.push('', terminalText(event.output), '');
  lines.push(
    `  steps ${event.steps} · tool calls ${event.toolCalls} · tokens ${tokens(event.usage.inputTokens)} in / ${tokens(event.usage.outputTokens)} out · cost ${money(event.usage.costUsd)} · ${(event.durationMs / 1000).toFixed(1)} s`,
    `  trace ${event.traceId}`,
  );
  if (event.cache) {
    lines.splice(lines.length - 1, 0, `  from the cache: ${event.cache.modelHits} model answer(s), ${event.cache.toolHits} tool result(s) · saved ${money(event.cache.savedUsd)}`);
  }
  if (event.delegated) {
    const d = event.delegated;
    lines.splice(lines.length - 1, 0, `  of which specialists: steps ${d.steps} · tool calls ${d.toolCalls} · tokens ${tokens(d.usage.inputTokens)} in / ${tokens(d.usage.outputTokens)} out · cost ${money(d.usage.costUsd)}`);
  }
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
