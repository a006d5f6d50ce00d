import * as z from 'zod';
import type { ChatMessage } from './conversation.ts';
import type { LedgerEntry } from './ledger.ts';

/** How an agent spends its model's context window; part of its definition. */
export const ContextSettings = z.strictObject({
  /** Kept free for the model's answer: the request never uses more than the window minus this. */
  outputHeadroomTokens: z.number().int().positive().default(4_096),
  /** The newest turns kept in full (their tool results too) before anything older is touched. */
  recentTurns: z.number().int().positive().default(4),
  /** The model that writes summaries of older turns; the turn's model when absent. A cheaper one saves money. */
  summaryModel: z.string().min(1).optional(),
  /** How long a summary may be. */
  summaryMaxTokens: z.number().int().positive().default(800),
});
export type ContextSettings = z.infer<typeof ContextSettings>;

/** A rolling summary of the conversation's older turns: it stands in for `conversation[2, throughIndex)`. */
export const ContextSummary = z.object({
  text: z.string(),
  /** The conversation index the summary covers up to (exclusive). */
  throughIndex: z.number().int().nonnegative(),
  /** The last turn it covers. */
  throughTurn: z.number().int().nonnegative(),
});
export type ContextSummary = z.infer<typeof ContextSummary>;

/** Where the tokens of an assembled request go; recorded on the `chat` span and in `context.assembled`. */
export const ContextBreakdown = z.object({
  system: z.number().int().nonnegative(),
  tools: z.number().int().nonnegative(),
  /** The task and, when it is not among the kept turns, the latest user message. */
  task: z.number().int().nonnegative(),
  ledger: z.number().int().nonnegative(),
  summary: z.number().int().nonnegative(),
  history: z.number().int().nonnegative(),
  outputHeadroom: z.number().int().nonnegative(),
  /** Everything sent: all of the above but the headroom. */
  total: z.number().int().nonnegative(),
  /** The most a request may hold: the window minus the headroom. */
  limit: z.number().int().nonnegative(),
});
export type ContextBreakdown = z.infer<typeof ContextBreakdown>;

/** What one compression step took out, said so in events and spans. */
export const ContextRemoval = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('tool_results_dropped'), results: z.number().int().positive(), turns: z.array(z.number().int()), tokens: z.number().int().nonnegative() }),
  z.object({ kind: z.literal('turns_summarised'), turns: z.array(z.number().int()), tokens: z.number().int().nonnegative(), summaryTokens: z.number().int().nonnegative() }),
  z.object({ kind: z.literal('turns_windowed'), turns: z.array(z.number().int()), tokens: z.number().int().nonnegative() }),
]);
export type ContextRemoval = z.infer<typeof ContextRemoval>;

export interface AssemblyInput {
  /** The session's full transcript: system prompt, task, then turns. */
  conversation: ChatMessage[];
  summary: ContextSummary | null;
  ledger: LedgerEntry[];
  /** Tokens of the tool definitions sent with the request. */
  toolTokens: number;
  contextWindow: number;
  settings: ContextSettings;
  /** Counts the tokens of a text (a real tokenizer or the estimate). */
  count: (text: string) => number;
  /** Multiplies every count: the session's correction from what the model reported (1 to start). */
  calibration: number;
  /** Summaries are not possible (none can be written): go straight to windowing. */
  canSummarise: boolean;
}

export interface AssembledContext {
  messages: ChatMessage[];
  breakdown: ContextBreakdown;
  removed: ContextRemoval[];
  /** Older turns that should be summarised before this request is sent; the caller summarises them and assembles again. */
  summarise?: { fromIndex: number; throughIndex: number; throughTurn: number; messages: ChatMessage[] };
  /** Even the system prompt, the task and the newest turn do not fit: the request would overflow. */
  overflow: boolean;
}

/** The system prompt and the task: everything up to the first user message, always sent. */
export const headLength = (conversation: ChatMessage[]): number => Math.max(1, conversation.findIndex((m) => m.role === 'user') + 1);

/** The ledger of hidden turns may take at most this share of the request, and this many lines. */
const ledgerShareOfLimit = 0.2;
const maxLedgerLines = 200;

/** Every message costs a few tokens of framing besides its text. */
const perMessageOverhead = 4;

/** A turn as the context sees it: an assistant message with its tool results, and what a person added after them. */
interface TurnGroup {
  start: number;
  messages: ChatMessage[];
  turn: number;
}

function textOf(message: ChatMessage): string {
  if (message.role === 'assistant') return `${message.content ?? ''}${(message.toolCalls ?? []).map((c) => `${c.id}${c.name}${c.arguments}`).join('')}`;
  if (message.role === 'tool') return `${message.toolCallId}${message.content}`;
  return message.content;
}

/** A tool call's framing on the wire (its type, the function wrapper) besides its name, id and arguments. */
const perToolCallOverhead = 12;

/**
 * Splits the turns after the task into groups that are kept or dropped whole, so that a tool call
 * never loses its result nor a result its call: each group starts at an assistant message.
 * Messages before the first assistant message (instructions given before turn 1) join the task.
 */
export function turnGroups(conversation: ChatMessage[], from = headLength(conversation), turnsBefore = 0): { preamble: ChatMessage[]; groups: TurnGroup[] } {
  const preamble: ChatMessage[] = [];
  const groups: TurnGroup[] = [];
  let turn = turnsBefore;
  for (let i = from; i < conversation.length; i++) {
    const message = conversation[i] as ChatMessage;
    if (message.role === 'assistant') {
      turn += 1;
      groups.push({ start: i, messages: [message], turn });
    } else if (groups.length === 0) preamble.push(message);
    else (groups.at(-1) as TurnGroup).messages.push(message);
  }
  return { preamble, groups };
}

const droppedResult = (tokens: number) =>
  JSON.stringify({ ok: true, dropped: `This result (${tokens} tokens) was dropped to keep the context within budget; the ledger above keeps the outcome.` });

/**
 * Builds the request for the next model call from the session's explicit state, in order of
 * priority: the system prompt, the task (and the latest user message), the ledger of completed
 * actions, the rolling summary, then the newest turns in full. When that exceeds the window minus
 * the output headroom it compresses, in order: older tool results are replaced by a note (the call
 * and its answer stay paired), older turns are summarised (the caller writes the summary), and the
 * conversation is windowed to the newest turns that fit. Pure: counting is passed in.
 */
export function assembleContext(input: AssemblyInput): AssembledContext {
  const { conversation, settings } = input;
  const cost = (message: ChatMessage) =>
    Math.ceil((input.count(textOf(message)) + perMessageOverhead + (message.role === 'assistant' ? (message.toolCalls?.length ?? 0) * perToolCallOverhead : 0)) * input.calibration);
  const sum = (messages: ChatMessage[]) => messages.reduce((n, m) => n + cost(m), 0);
  const limit = Math.max(0, input.contextWindow - settings.outputHeadroomTokens);
  const headEnd = Math.min(conversation.length, headLength(conversation));
  const head = conversation.slice(0, headEnd);
  const system = head.filter((m) => m.role === 'system');
  const task = head.filter((m) => m.role !== 'system');
  const summary = input.summary;
  // Turns a summary covers are never looked at again: assembly costs what the unsummarised turns cost.
  const preamble: ChatMessage[] = [];
  for (let i = headEnd; i < conversation.length && conversation[i]?.role !== 'assistant'; i++) preamble.push(conversation[i] as ChatMessage);
  const { groups } = summary ? turnGroups(conversation, Math.max(headEnd, summary.throughIndex), summary.throughTurn) : turnGroups(conversation, headEnd);
  const live = groups;

  // The latest user message always reaches the model, even when its turn was summarised away.
  const lastUserIndex = conversation.findLastIndex((m) => m.role === 'user');
  const pinned = (kept: TurnGroup[]) =>
    lastUserIndex >= headEnd && !kept.some((g) => g.start <= lastUserIndex && lastUserIndex < g.start + g.messages.length) && !preamble.includes(conversation[lastUserIndex] as ChatMessage)
      ? [conversation[lastUserIndex] as ChatMessage]
      : [];

  const removed: ContextRemoval[] = [];
  const summaryMessage: ChatMessage[] = summary ? [{ role: 'user', content: `Summary of turns 1 to ${summary.throughTurn}, which are no longer shown in full:\n${summary.text}` }] : [];
  // The ledger of hidden turns, newest first, within its share of the budget: the oldest actions
  // are in the summary, and a session of thousands of turns must not send thousands of lines.
  const ledgerShare = Math.floor(limit * ledgerShareOfLimit);
  const lineOf = (e: LedgerEntry) => `- turn ${e.turn}: ${e.tool} ${e.status}${e.errorCode ? ` (${e.errorCode})` : ''}${e.undone ? ', undone' : ''}`;
  const ledgerFor = (hiddenUpTo: number): ChatMessage[] => {
    const lines: string[] = [];
    let tokens = 0;
    // The ledger is in turn order: skip the shown turns from the end, then take lines until the share is used.
    let last = input.ledger.length - 1;
    while (last >= 0 && (input.ledger[last] as LedgerEntry).turn > hiddenUpTo) last -= 1;
    let i = last;
    for (; i >= 0 && lines.length < maxLedgerLines; i--) {
      const line = lineOf(input.ledger[i] as LedgerEntry);
      const lineTokens = Math.ceil((input.count(line) + 1) * input.calibration);
      if (tokens + lineTokens > ledgerShare) break;
      lines.push(line);
      tokens += lineTokens;
    }
    const omitted = i + 1;
    if (lines.length === 0) return [];
    const earlier = omitted > 0 ? `\n(${omitted} earlier action${omitted === 1 ? '' : 's'} not listed${summary ? '; the summary covers them' : ''}.)` : '';
    return [{ role: 'user', content: `Completed actions of the turns not shown in full:\n${lines.reverse().join('\n')}${earlier}` }];
  };

  let kept = live.map((g) => ({ ...g, messages: [...g.messages] }));
  const toolTokens = Math.ceil(input.toolTokens * input.calibration);
  const fixed = sum(system) + toolTokens + sum([...task, ...preamble]);
  // The ledger is the first thing given up when even the newest turn alone does not fit with it.
  let ledgerAllowed = true;
  // Hidden turns are always the oldest ones (summarised, then windowed), so one number says which.
  const measure = () => {
    const hiddenUpTo = kept.length > 0 ? (kept[0] as TurnGroup).turn - 1 : (groups.at(-1)?.turn ?? summary?.throughTurn ?? 0);
    const ledger = hiddenUpTo > 0 && ledgerAllowed ? ledgerFor(hiddenUpTo) : [];
    const pin = pinned(kept);
    const history = kept.reduce((n, g) => n + sum(g.messages), 0);
    return { ledger, pin, history, total: fixed + sum(pin) + sum(ledger) + sum(summaryMessage) + history };
  };
  let state = measure();

  // 1. Low-value content: the tool results of turns older than the recent ones become a note.
  if (state.total > limit) {
    const older = kept.slice(0, Math.max(0, kept.length - settings.recentTurns));
    let results = 0;
    let saved = 0;
    const turns: number[] = [];
    for (const group of older) {
      let touched = false;
      group.messages = group.messages.map((m) => {
        if (m.role !== 'tool') return m;
        const before = cost(m);
        const note: ChatMessage = { role: 'tool', toolCallId: m.toolCallId, content: droppedResult(before) };
        if (cost(note) >= before) return m;
        results += 1;
        saved += before - cost(note);
        touched = true;
        return note;
      });
      if (touched) turns.push(group.turn);
    }
    if (results > 0) {
      removed.push({ kind: 'tool_results_dropped', results, turns, tokens: saved });
      state = measure();
    }
  }

  // 2. Older turns summarised: the caller writes the summary and assembles again. Not when the parts
  // always sent cannot fit on their own: no summary would help, and its call would be wasted.
  const alwaysSent = fixed + sum(pinned([])) + sum(summaryMessage);
  if (state.total > limit && input.canSummarise && kept.length > 1 && alwaysSent < limit) {
    let total = state.total;
    let cut = 0;
    // Keep at least the newest turn; summarise from the oldest until the rest would fit with room for the summary.
    while (cut < kept.length - 1 && total + settings.summaryMaxTokens > limit) {
      total -= sum((kept[cut] as TurnGroup).messages);
      cut += 1;
    }
    const through = kept[cut] as TurnGroup;
    const first = summary ? summary.throughIndex : (groups[0]?.start ?? headEnd);
    return {
      messages: [],
      breakdown: breakdownOf(),
      removed,
      summarise: { fromIndex: first, throughIndex: through.start, throughTurn: through.turn - 1, messages: conversation.slice(first, through.start) },
      overflow: false,
    };
  }

  // 3. Windowed: the oldest turns go until the rest fits.
  if (state.total > limit) {
    const dropped: TurnGroup[] = [];
    let tokens = 0;
    while (kept.length > 1 && state.total > limit) {
      const group = kept.shift() as TurnGroup;
      dropped.push(group);
      tokens += sum(group.messages);
      state = measure();
    }
    if (dropped.length > 0) removed.push({ kind: 'turns_windowed', turns: dropped.map((g) => g.turn), tokens });
    // The newest turn alone is still too big: the ledger goes, then its own tool results become notes.
    if (state.total > limit && kept.length === 1) {
      ledgerAllowed = false;
      state = measure();
    }
    if (state.total > limit && kept.length === 1) {
      const group = kept[0] as TurnGroup;
      let results = 0;
      let saved = 0;
      group.messages = group.messages.map((m) => {
        if (m.role !== 'tool') return m;
        const note: ChatMessage = { role: 'tool', toolCallId: m.toolCallId, content: droppedResult(cost(m)) };
        if (cost(note) >= cost(m)) return m;
        results += 1;
        saved += cost(m) - cost(note);
        return note;
      });
      if (results > 0) removed.push({ kind: 'tool_results_dropped', results, turns: [group.turn], tokens: saved });
      state = measure();
    }
  }

  // The latest user message, when its own turn is not shown, comes before the turns that are: where it was said.
  const messages: ChatMessage[] = [...system, ...task, ...preamble, ...state.ledger, ...summaryMessage, ...state.pin, ...kept.flatMap((g) => g.messages)];
  return { messages, breakdown: breakdownOf(), removed, overflow: state.total > limit };

  function breakdownOf(): ContextBreakdown {
    return {
      system: sum(system), tools: toolTokens, task: sum([...task, ...preamble, ...state.pin]), ledger: sum(state.ledger),
      summary: sum(summaryMessage), history: state.history, outputHeadroom: settings.outputHeadroomTokens, total: state.total, limit,
    };
  }
}

/**
 * The session's token-count correction after a model call: the ratio of the input tokens the
 * model reported to those counted before sending, averaged with the previous correction so one
 * odd answer does not swing it, and kept within [0.5, 3]. A count made with the model's own
 * tokenizer is exact on the text, so its correction never goes below 1: the endpoint adds framing,
 * never removes text, and a report lower than the count is an endpoint's own estimate.
 */
export function calibrate(previous: number, counted: number, reported: number, exact: boolean): number {
  if (counted <= 0 || reported <= 0) return previous;
  const next = (previous + reported / counted) / 2;
  return Math.min(3, Math.max(exact ? 1 : 0.5, Number(next.toFixed(4))));
}

