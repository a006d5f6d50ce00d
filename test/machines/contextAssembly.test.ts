import { describe, expect, it } from 'vitest';
import {
  assembleContext,
  calibrate,
  ContextSettings,
  headLength,
  turnGroups,
  type AssembledContext,
  type AssemblyInput,
  type ContextSummary,
} from '../../machines/contextAssembly.ts';
import type { ChatMessage, ModelToolCall } from '../../machines/conversation.ts';
import type { LedgerEntry } from '../../machines/ledger.ts';
import { seededRandom } from '../fixtures/seededRandom.ts';

/** The estimate every test counts with: a token per four characters. */
const count = (text: string): number => Math.ceil(text.length / 4);

/** The text a message is counted by, restated here so the tests do not trust the source's own. */
function textOf(message: ChatMessage): string {
  switch (message.role) {
    case 'assistant':
      return `${message.content ?? ''}${(message.toolCalls ?? []).map((c) => `${c.id}${c.name}${c.arguments}`).join('')}`;
    case 'tool':
      return `${message.toolCallId}${message.content}`;
    default:
      return message.content;
  }
}

/** The framing rule: 4 tokens per message and 12 per tool call besides the text, calibrated, rounded up per message. */
function costOf(message: ChatMessage, calibration = 1): number {
  const calls = message.role === 'assistant' ? (message.toolCalls?.length ?? 0) : 0;
  return Math.ceil((count(textOf(message)) + 4 + calls * 12) * calibration);
}

const costOfAll = (messages: ChatMessage[], calibration = 1): number => messages.reduce((n, m) => n + costOf(m, calibration), 0);

const ledgerHeader = 'Completed actions of the turns not shown in full:';
const ledgerLine = (e: LedgerEntry): string => `- turn ${e.turn}: ${e.tool} ${e.status}${e.errorCode ? ` (${e.errorCode})` : ''}${e.undone ? ', undone' : ''}`;
const summaryContent = (summary: ContextSummary): string => `Summary of turns 1 to ${summary.throughTurn}, which are no longer shown in full:\n${summary.text}`;

/** A dropped result's note: JSON saying it was dropped (its exact wording is the source's business). */
function isNote(content: string): boolean {
  try {
    const parsed = JSON.parse(content) as { ok?: unknown; dropped?: unknown };
    return parsed.ok === true && typeof parsed.dropped === 'string' && parsed.dropped.includes('was dropped');
  } catch {
    return false;
  }
}

const system: ChatMessage = { role: 'system', content: 'You read records and report what they say.' };
const task: ChatMessage = { role: 'user', content: 'Read every page of the catalogue.' };
const call = (id: string, name = 'fetch', args = '{}'): ModelToolCall => ({ id, name, arguments: args });
const assistant = (calls: ModelToolCall[], content: string | null = null): ChatMessage =>
  calls.length > 0 ? { role: 'assistant', content, toolCalls: calls } : { role: 'assistant', content };
const result = (toolCallId: string, content: string): ChatMessage => ({ role: 'tool', toolCallId, content });
const user = (content: string): ChatMessage => ({ role: 'user', content });

/** Turn `n`: one call `c<n>` whose result is `size` characters. */
const fetchTurn = (n: number, size: number): ChatMessage[] => [assistant([call(`c${n}`)]), result(`c${n}`, 'x'.repeat(size))];
/** System prompt, task, then `turns` fetch turns: turn n starts at index 2n. */
const conversationOf = (turns: number, size: number): ChatMessage[] => [system, task, ...Array.from({ length: turns }, (_, i) => fetchTurn(i + 1, size)).flat()];

const entry = (turn: number, extra: Partial<LedgerEntry> = {}): LedgerEntry => ({
  turn, callId: `k${turn}`, toolCallId: `c${turn}`, tool: 'fetch', arguments: {}, status: 'ok', ...extra,
});

const settings = (overrides: Partial<ContextSettings> = {}): ContextSettings => ContextSettings.parse({ outputHeadroomTokens: 100, ...overrides });

function assemble(input: Partial<AssemblyInput> & Pick<AssemblyInput, 'conversation'>): AssembledContext {
  return assembleContext({
    summary: null, ledger: [], toolTokens: 0, contextWindow: 1_000_000, settings: settings(), count, calibration: 1, canSummarise: false, ...input,
  });
}

/** The window that leaves exactly `limit` tokens under the default test headroom of 100. */
const windowFor = (limit: number): number => limit + 100;

describe('headLength', () => {
  it('covers the system prompt and the task', () => {
    expect(headLength([system, task, ...fetchTurn(1, 10)])).toBe(2);
  });

  it('reaches the first user message however many system messages come first', () => {
    expect(headLength([system, { role: 'system', content: 'Be brief.' }, task])).toBe(3);
  });

  it('is one when there is no user message', () => {
    expect(headLength([system])).toBe(1);
  });
});

describe('turnGroups', () => {
  const a1 = assistant([call('c1')]);
  const t1 = result('c1', 'one');
  const note = user('Also check page 2.');
  const a2 = assistant([call('c2a'), call('c2b')]);
  const t2b = result('c2b', 'two b');
  const t2a = result('c2a', 'two a');
  const redirect = user('Stop: read the archive instead.');
  const early = [user('Use the staging catalogue.'), user('And be quick.')];

  it('starts a group at every assistant message, keeping results and later user notes with their turn', () => {
    const { preamble, groups } = turnGroups([system, task, a1, t1, note, a2, t2b, t2a, redirect]);
    expect(preamble).toEqual([]);
    expect(groups).toEqual([
      { start: 2, turn: 1, messages: [a1, t1, note] },
      { start: 5, turn: 2, messages: [a2, t2b, t2a, redirect] },
    ]);
  });

  it('puts the user messages before the first assistant message in the preamble', () => {
    const { preamble, groups } = turnGroups([system, task, ...early, a1, t1]);
    expect(preamble).toEqual(early);
    expect(groups).toEqual([{ start: 4, turn: 1, messages: [a1, t1] }]);
  });

  it('counts an assistant message without tool calls as a turn of its own', () => {
    const thinking = assistant([], 'Let me think.');
    const { groups } = turnGroups([system, task, thinking, note, a1, t1]);
    expect(groups.map((g) => [g.start, g.turn, g.messages.length])).toEqual([[2, 1, 2], [4, 2, 2]]);
  });

  it('starts from the index it is given', () => {
    const { preamble, groups } = turnGroups([system, task, a1, t1, a2, t2a, t2b], 4);
    expect(preamble).toEqual([]);
    expect(groups).toEqual([{ start: 4, turn: 1, messages: [a2, t2a, t2b] }]);
  });

  it('has no groups when nothing follows the task', () => {
    expect(turnGroups([system, task])).toEqual({ preamble: [], groups: [] });
  });
});

describe('assembleContext: budget arithmetic', () => {
  it('splits the total into system, tools, task, ledger, summary and history', () => {
    const preamble = user('Use the staging catalogue.');
    const conversation = [system, task, preamble, ...fetchTurn(1, 40), ...fetchTurn(2, 40), ...fetchTurn(3, 40)];
    const summary: ContextSummary = { text: 'Turn 1 read page 1.', throughIndex: 5, throughTurn: 1 };
    const out = assemble({
      conversation, summary, ledger: [entry(1), entry(2)], toolTokens: 37, contextWindow: 10_000, settings: settings({ outputHeadroomTokens: 1_000 }),
    });
    const ledgerMessage = user(`${ledgerHeader}\n- turn 1: fetch ok`);
    const summaryMessage = user(summaryContent(summary));
    expect(out.messages).toEqual([system, task, preamble, ledgerMessage, summaryMessage, ...conversation.slice(5)]);
    const parts = {
      system: costOf(system), tools: 37, task: costOf(task) + costOf(preamble), ledger: costOf(ledgerMessage),
      summary: costOf(summaryMessage), history: costOfAll(conversation.slice(5)),
    };
    expect(out.breakdown).toEqual({
      ...parts, outputHeadroom: 1_000, limit: 9_000,
      total: parts.system + parts.tools + parts.task + parts.ledger + parts.summary + parts.history,
    });
  });

  it('charges four tokens of framing per message and twelve per tool call', () => {
    const conversation = [
      { role: 'system', content: 'abcd' } as const, user('Read.'),
      assistant([call('a', 'f'), call('b', 'f')]), result('a', 'xyz'), result('b', ''),
    ];
    const out = assemble({ conversation, toolTokens: 101 });
    // system 1+4, task 2+4, assistant "af{}bf{}" 2+4+24, results "axyz" 1+4 and "b" 1+4.
    expect(out.breakdown).toMatchObject({ system: 5, tools: 101, task: 6, history: 40, total: 152 });
  });

  it('multiplies every count, tool definitions included, by the calibration and rounds up per message', () => {
    const conversation = [
      { role: 'system', content: 'abcd' } as const, user('Read.'),
      assistant([call('a', 'f'), call('b', 'f')]), result('a', 'xyz'), result('b', ''),
    ];
    const out = assemble({ conversation, toolTokens: 101, calibration: 1.5 });
    // 5 → 7.5 → 8, 101 → 151.5 → 152, 6 → 9, history 30 → 45 and 5 → 8 twice: 61 (not ⌈40 × 1.5⌉ = 60).
    expect(out.breakdown).toMatchObject({ system: 8, tools: 152, task: 9, history: 61, total: 230 });
  });

  it('keeps the window minus the output headroom as the limit', () => {
    const out = assemble({ conversation: conversationOf(1, 10), contextWindow: 8_192, settings: settings({ outputHeadroomTokens: 2_000 }) });
    expect(out.breakdown.limit).toBe(6_192);
    expect(out.breakdown.outputHeadroom).toBe(2_000);
  });

  it('returns a conversation that fits unchanged, in order, with nothing removed', () => {
    const conversation = [system, task, ...fetchTurn(1, 400), user('Check page 2 too.'), ...fetchTurn(2, 400), assistant([], 'Done.')];
    const out = assemble({ conversation });
    expect(out.messages).toEqual(conversation);
    expect(out.removed).toEqual([]);
    expect(out.summarise).toBeUndefined();
    expect(out.overflow).toBe(false);
  });

  it('leaves a conversation that takes exactly the limit untouched, and compresses one a token over', () => {
    const conversation = conversationOf(6, 2_000);
    const total = costOfAll(conversation);
    const settingsWithOneRecent = settings({ recentTurns: 1 });
    const exact = assemble({ conversation, contextWindow: windowFor(total), settings: settingsWithOneRecent });
    expect(exact.messages).toEqual(conversation);
    expect(exact.removed).toEqual([]);
    const over = assemble({ conversation, contextWindow: windowFor(total - 1), settings: settingsWithOneRecent });
    expect(over.removed.map((r) => r.kind)).toEqual(['tool_results_dropped']);
  });
});

describe('assembleContext: compression', () => {
  // Six turns of one call each with a 2000-character result: the system prompt and task cost `fixed`, each turn `turn`.
  const six = conversationOf(6, 2_000);
  const fixed = costOf(system) + costOf(task);
  const turn = costOfAll(fetchTurn(1, 2_000));

  it('first replaces the results of the turns older than the recent ones with a note, keeping the calls', () => {
    const conversation = conversationOf(5, 2_000);
    const total = costOfAll(conversation);
    const out = assemble({ conversation, contextWindow: windowFor(total - 1), settings: settings({ recentTurns: 2 }) });
    expect(out.messages).toHaveLength(conversation.length);
    let saved = 0;
    for (const [i, original] of conversation.entries()) {
      const sent = out.messages[i] as ChatMessage;
      if (original.role !== 'tool' || i >= 8) {
        expect(sent).toBe(original);
        continue;
      }
      expect(sent).toMatchObject({ role: 'tool', toolCallId: original.toolCallId });
      const content = (sent as { content: string }).content;
      expect(isNote(content)).toBe(true);
      expect(content).toContain(`(${costOf(original)} tokens)`);
      saved += costOf(original) - costOf(sent);
    }
    expect(saved).toBeGreaterThan(0);
    expect(out.removed).toEqual([{ kind: 'tool_results_dropped', results: 3, turns: [1, 2, 3], tokens: saved }]);
    expect(out.breakdown.total).toBe(total - saved);
    expect(out.overflow).toBe(false);
  });

  it('keeps an older result that costs less than its note would', () => {
    const conversation = [system, task, assistant([call('c1')]), result('c1', ''), ...fetchTurn(2, 2_000), ...fetchTurn(3, 2_000), ...fetchTurn(4, 2_000)];
    const out = assemble({ conversation, contextWindow: windowFor(costOfAll(conversation) - 1), settings: settings({ recentTurns: 1 }) });
    expect(out.messages[3]).toBe(conversation[3]);
    expect(out.removed).toEqual([expect.objectContaining({ kind: 'tool_results_dropped', results: 2, turns: [2, 3] })]);
  });

  it('asks for a summary of the oldest turns that must go to leave room for the summary', () => {
    const summaryMaxTokens = 200;
    // Without three turns the rest takes exactly the limit with the summary's room: three turns are summarised.
    const limit = fixed + 3 * turn + summaryMaxTokens;
    const out = assemble({ conversation: six, contextWindow: windowFor(limit), settings: settings({ recentTurns: 6, summaryMaxTokens }), canSummarise: true });
    expect(out.summarise).toEqual({ fromIndex: 2, throughIndex: 8, throughTurn: 3, messages: six.slice(2, 8) });
    expect(out.messages).toEqual([]);
    expect(out.removed).toEqual([]);
    expect(out.overflow).toBe(false);

    const tighter = assemble({ conversation: six, contextWindow: windowFor(limit - 1), settings: settings({ recentTurns: 6, summaryMaxTokens }), canSummarise: true });
    expect(tighter.summarise).toMatchObject({ fromIndex: 2, throughIndex: 10, throughTurn: 4 });
  });

  it('drops older results before it asks for a summary', () => {
    const out = assemble({ conversation: six, contextWindow: windowFor(fixed + turn), settings: settings({ recentTurns: 2 }), canSummarise: true });
    expect(out.removed).toEqual([expect.objectContaining({ kind: 'tool_results_dropped', results: 4, turns: [1, 2, 3, 4] })]);
    expect(out.summarise).toBeDefined();
  });

  it('never puts the newest turn in the summary, however small the window', () => {
    const out = assemble({ conversation: six, contextWindow: windowFor(fixed + 1), settings: settings({ recentTurns: 6 }), canSummarise: true });
    expect(out.summarise).toEqual({ fromIndex: 2, throughIndex: 12, throughTurn: 5, messages: six.slice(2, 12) });
  });

  it('plans no summary when the parts always sent do not fit on their own: the request overflows instead', () => {
    const out = assemble({ conversation: six, contextWindow: 0, settings: settings({ recentTurns: 6 }), canSummarise: true });
    expect(out.summarise).toBeUndefined();
    expect(out.overflow).toBe(true);
  });

  it('summarises on from where the current summary ends', () => {
    const summary: ContextSummary = { text: 'Pages 1 and 2 were read.', throughIndex: 6, throughTurn: 2 };
    const out = assemble({ conversation: six, summary, contextWindow: windowFor(fixed + turn), settings: settings({ recentTurns: 6 }), canSummarise: true });
    expect(out.summarise).toEqual({ fromIndex: 6, throughIndex: 12, throughTurn: 5, messages: six.slice(6, 12) });
  });

  it('does not ask for a summary when only one turn is left to keep', () => {
    const out = assemble({ conversation: conversationOf(1, 8_000), contextWindow: windowFor(fixed + 100), canSummarise: true });
    expect(out.summarise).toBeUndefined();
  });

  it('sends the summary instead of the turns it covers, after the ledger of those turns', () => {
    const summary: ContextSummary = { text: 'Pages 1 to 3 were read; page 2 timed out.', throughIndex: 8, throughTurn: 3 };
    const ledger = [entry(1), entry(2, { status: 'error', errorCode: 'TIMEOUT' }), entry(3), entry(4), entry(5)];
    const out = assemble({ conversation: six, summary, ledger, settings: settings({ recentTurns: 6 }) });
    expect(out.messages).toEqual([
      system, task,
      user(`${ledgerHeader}\n- turn 1: fetch ok\n- turn 2: fetch error (TIMEOUT)\n- turn 3: fetch ok`),
      user(summaryContent(summary)),
      ...six.slice(8),
    ]);
    expect((out.messages[3] as { content: string }).content).toMatch(/^Summary of turns 1 to 3/);
    expect(out.removed).toEqual([]);
  });

  it('windows without a summary: drops the oldest turns until the rest fits and lists their completed actions', () => {
    // The ledger of three hidden turns takes far less than 200 tokens and a turn far more, so exactly three go.
    const limit = fixed + 3 * turn + 200;
    const ledger = [
      entry(1), entry(2, { status: 'error', errorCode: 'TIMEOUT' }), entry(3, { tool: 'write', undone: true }), entry(3, { status: 'rejected' }), entry(4), entry(6),
    ];
    const out = assemble({ conversation: six, ledger, contextWindow: windowFor(limit), settings: settings({ recentTurns: 6 }) });
    const ledgerMessage = user(`${ledgerHeader}\n- turn 1: fetch ok\n- turn 2: fetch error (TIMEOUT)\n- turn 3: write ok, undone\n- turn 3: fetch rejected`);
    expect(costOf(ledgerMessage)).toBeLessThan(200);
    expect(out.messages).toEqual([system, task, ledgerMessage, ...six.slice(8)]);
    expect(out.removed).toEqual([{ kind: 'turns_windowed', turns: [1, 2, 3], tokens: 3 * turn }]);
    expect(out.breakdown.total).toBeLessThanOrEqual(out.breakdown.limit);
    expect(out.overflow).toBe(false);
  });

  it('sends no ledger message when the hidden turns completed nothing', () => {
    const out = assemble({ conversation: six, ledger: [entry(6)], contextWindow: windowFor(fixed + 3 * turn), settings: settings({ recentTurns: 6 }) });
    expect(out.messages).toEqual([system, task, ...six.slice(8)]);
  });

  it('drops older results first and windows when that is not enough and no summary can be written', () => {
    const out = assemble({ conversation: six, contextWindow: windowFor(fixed + 2 * turn), settings: settings({ recentTurns: 2 }) });
    expect(out.removed.map((r) => r.kind)).toEqual(['tool_results_dropped', 'turns_windowed']);
    expect(out.messages[2]).toBe(out.messages.find((m) => m.role === 'assistant'));
    expect(out.overflow).toBe(false);
  });

  it('turns the newest turn\'s results into notes when that turn alone is too big', () => {
    const conversation = conversationOf(1, 8_000);
    const out = assemble({ conversation, contextWindow: windowFor(fixed + 200) });
    expect(out.messages.slice(0, 3)).toEqual(conversation.slice(0, 3));
    expect(out.messages[3]).toMatchObject({ role: 'tool', toolCallId: 'c1' });
    expect(isNote((out.messages[3] as { content: string }).content)).toBe(true);
    expect(out.overflow).toBe(false);
  });
});

describe('assembleContext: the latest user message', () => {
  const redirect = user('Stop: read the archive instead.');
  const conversation = [system, task, ...fetchTurn(1, 2_000), redirect, ...fetchTurn(2, 2_000), ...fetchTurn(3, 2_000)];
  const fixed = costOf(system) + costOf(task);

  it('is pinned before the kept turns when its turn is windowed', () => {
    const out = assemble({ conversation, contextWindow: windowFor(fixed + costOf(redirect) + costOfAll(conversation.slice(5))) });
    expect(out.removed).toEqual([expect.objectContaining({ kind: 'turns_windowed', turns: [1] })]);
    expect(out.messages).toEqual([system, task, redirect, ...conversation.slice(5)]);
    expect(out.breakdown.task).toBe(costOf(task) + costOf(redirect));
  });

  it('is pinned after the summary when its turn is summarised', () => {
    const summary: ContextSummary = { text: 'Page 1 was read.', throughIndex: 5, throughTurn: 1 };
    const out = assemble({ conversation, summary });
    expect(out.messages).toEqual([system, task, user(summaryContent(summary)), redirect, ...conversation.slice(5)]);
  });

  it('is sent once, in its turn, when that turn is kept', () => {
    const out = assemble({ conversation });
    expect(out.messages.filter((m) => m === redirect)).toHaveLength(1);
    expect(out.messages).toEqual(conversation);
  });

  it('is the only user note pinned when several turns with notes are windowed', () => {
    const earlier = user('Look at page 1 first.');
    const withNotes = [system, task, ...fetchTurn(1, 2_000), earlier, ...fetchTurn(2, 2_000), redirect, ...fetchTurn(3, 2_000)];
    const out = assemble({ conversation: withNotes, contextWindow: windowFor(fixed + costOf(redirect) + costOfAll(withNotes.slice(8))) });
    expect(out.messages).toEqual([system, task, redirect, ...withNotes.slice(8)]);
  });
});

describe('assembleContext: overflow', () => {
  const fixed = costOf(system) + costOf(task);

  it('is false when the request fits', () => {
    expect(assemble({ conversation: conversationOf(3, 100) }).overflow).toBe(false);
  });

  it('is true when the system prompt and task alone exceed the limit', () => {
    const out = assemble({ conversation: [system, task, ...fetchTurn(1, 10)], contextWindow: windowFor(fixed - 1) });
    expect(out.overflow).toBe(true);
    expect(out.messages.slice(0, 2)).toEqual([system, task]);
    expect(out.breakdown.total).toBeGreaterThan(out.breakdown.limit);
  });

  it('is true when the newest turn\'s own call does not fit, with the older turns windowed', () => {
    const big = [assistant([call('c9', 'write', JSON.stringify({ body: 'y'.repeat(8_000) }))]), result('c9', 'ok')];
    const conversation = [...conversationOf(2, 100), ...big];
    const out = assemble({ conversation, contextWindow: windowFor(fixed + 1_000) });
    expect(out.overflow).toBe(true);
    expect(out.messages.slice(0, 3)).toEqual([system, task, big[0]]);
    expect(out.removed).toEqual([expect.objectContaining({ kind: 'turns_windowed', turns: [1, 2] })]);
  });

  it('is false when the newest turn fits once its results are notes', () => {
    expect(assemble({ conversation: conversationOf(3, 8_000), contextWindow: windowFor(fixed + 200) }).overflow).toBe(false);
  });

  // Regression: the ledger of older turns once counted toward an overflow and was never given up.
  it('is false when the system prompt, the task and the newest turn fit, whatever the ledger of older turns', () => {
    const newest = [assistant([call('c9', 'write', JSON.stringify({ body: 'y'.repeat(4_000) }))]), result('c9', 'ok')];
    const conversation = [...conversationOf(3, 100), ...newest];
    const out = assemble({ conversation, ledger: [entry(1), entry(2), entry(3)], contextWindow: windowFor(fixed + costOfAll(newest)) });
    expect(out.overflow).toBe(false);
  });
});

describe('assembleContext: the ledger of hidden turns', () => {
  const fixed = costOf(system) + costOf(task);
  const thirty = conversationOf(30, 100);
  // Five actions a turn, each line "- turn N: inventory_lookup_by_warehouse ok": 11 tokens, 12 with the line's share.
  const long = Array.from({ length: 30 }, (_, t) => Array.from({ length: 5 }, () => entry(t + 1, { tool: 'inventory_lookup_by_warehouse' }))).flat();
  const bodyOf = (out: AssembledContext): string[] => {
    const message = out.messages.find((m) => m.role === 'user' && m.content.startsWith(ledgerHeader)) as { content: string };
    return message.content.split('\n').slice(1);
  };

  it('lists the newest actions of the hidden turns within a fifth of the limit and says how many it left out', () => {
    const out = assemble({ conversation: thirty, ledger: long, contextWindow: windowFor(1_000) });
    const hidden = out.removed.find((r) => r.kind === 'turns_windowed')?.turns.length ?? 0;
    expect(hidden).toBeGreaterThan(10);
    const body = bodyOf(out);
    // 200 tokens at 12 a line: 16 lines, the newest of the hidden turns, oldest first.
    const listed = long.filter((e) => e.turn <= hidden).slice(-16).map(ledgerLine);
    expect(body).toEqual([...listed, `(${5 * hidden - 16} earlier actions not listed.)`]);
    expect(out.overflow).toBe(false);
  });

  it('says the summary covers the actions it leaves out when there is one', () => {
    const summary: ContextSummary = { text: 'Pages 1 to 20 were read.', throughIndex: 42, throughTurn: 20 };
    const out = assemble({ conversation: thirty, summary, ledger: long, contextWindow: windowFor(2_000) });
    expect(bodyOf(out).at(-1)).toMatch(/^\(\d+ earlier actions not listed; the summary covers them\.\)$/);
  });

  it('keeps a long session from overflowing: the ledger shrinks with the room there is', () => {
    const newest = thirty.slice(-2);
    const out = assemble({ conversation: thirty, ledger: long, contextWindow: windowFor(fixed + costOfAll(newest) + 200) });
    expect(out.overflow).toBe(false);
    expect(out.messages.slice(-2)).toEqual(newest);
    expect(out.breakdown.total).toBeLessThanOrEqual(out.breakdown.limit);
  });

  // Regression: the ledger's share was once compared with uncalibrated counts.
  it('keeps the ledger within about a fifth of the limit whatever the calibration', () => {
    const out = assemble({ conversation: thirty, ledger: long, contextWindow: windowFor(2_000), calibration: 3 });
    // A fifth, plus a quarter of that for the header, the omission note and the framing.
    expect(out.breakdown.ledger).toBeLessThanOrEqual(500);
  });
});

describe('calibrate', () => {
  it('averages the reported-to-counted ratio with the previous factor', () => {
    expect(calibrate(1, 1_000, 1_400, false)).toBe(1.2);
    expect(calibrate(1.2, 1_000, 1_000, true)).toBe(1.1);
  });

  it('rounds to four decimals', () => {
    expect(calibrate(1, 3, 1, false)).toBe(0.6667);
  });

  it('stays within 0.5 and 3', () => {
    expect(calibrate(2.5, 100, 1_000, false)).toBe(3);
    expect(calibrate(0.6, 1_000, 100, false)).toBe(0.5);
  });

  it('never goes below 1 for an exact count', () => {
    expect(calibrate(1, 1_000, 800, false)).toBe(0.9);
    expect(calibrate(1, 1_000, 800, true)).toBe(1);
  });

  it('keeps the previous factor when nothing was counted or reported', () => {
    expect(calibrate(1.7, 0, 500, false)).toBe(1.7);
    expect(calibrate(1.7, 500, 0, true)).toBe(1.7);
  });
});

// Property-based: random valid conversations from a seeded generator; every assertion names its seed.


class Random {
  readonly next: () => number;
  constructor(seed: number) {
    this.next = seededRandom(seed);
  }
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(0, items.length - 1)] as T;
  }
  shuffle<T>(items: readonly T[]): T[] {
    const out = [...items];
    for (let i = out.length - 1; i > 0; i--) {
      const j = this.int(0, i);
      [out[i], out[j]] = [out[j] as T, out[i] as T];
    }
    return out;
  }
  /** Text of exactly `length` characters (a random chunk repeated: only the length is counted). */
  text(length: number): string {
    const chunk = Array.from({ length: 8 }, () => 'abcdefghij klmnopqrstuvwxyz'[this.int(0, 26)]).join('');
    return chunk.repeat(Math.ceil(length / 8)).slice(0, length);
  }
}

/** What the generator knows about the conversation it built. */
interface Shape {
  /** Index of each turn's assistant message: turn n starts at starts[n - 1]. */
  starts: number[];
  /** User messages between the task and turn 1. */
  preamble: number;
  lastUser: ChatMessage;
}

interface Case {
  seed: number;
  input: AssemblyInput;
  shape: Shape;
}

const toolNames = ['fetch', 'search', 'write_file', 'inventory_lookup'] as const;
const errorCodes = ['TIMEOUT', 'NOT_FOUND', 'INVALID_INPUT', 'UNAVAILABLE'] as const;
const calibrations = [1, 1, 1, 0.5, 0.8, 1.25, 1.7, 3] as const;
const baseSeed = 0x7e0e;

function randomCase(seed: number, options: { canSummarise?: boolean; emptyLedger?: boolean } = {}): Case {
  const r = new Random(seed);
  let notes = 0;
  const note = (kind: string): ChatMessage => user(`${kind} ${++notes}: ${r.text(r.int(0, 300))}`);
  const conversation: ChatMessage[] = [{ role: 'system', content: r.text(r.int(1, 600)) }, user(`task: ${r.text(r.int(0, 600))}`)];
  const preamble = r.chance(0.2) ? r.int(1, 2) : 0;
  for (let i = 0; i < preamble; i++) conversation.push(note('instruction'));
  const starts: number[] = [];
  const turns = r.int(0, 40);
  for (let t = 1; t <= turns; t++) {
    starts.push(conversation.length);
    const calls = Array.from({ length: r.int(0, 3) }, (_, k) => call(`call_${t}_${k}`, r.pick(toolNames), JSON.stringify({ q: r.text(r.int(0, 80)) })));
    conversation.push(assistant(calls, calls.length > 0 && r.chance(0.5) ? null : r.text(r.int(0, 300))));
    for (const c of r.shuffle(calls)) conversation.push(result(c.id, r.text(r.int(0, 4_000))));
    if (r.chance(0.2)) conversation.push(note('note'));
    if (r.chance(0.1)) conversation.push(note('redirect'));
  }
  const lastUser = conversation.findLast((m) => m.role === 'user') as ChatMessage;

  const ledger: LedgerEntry[] = [];
  if (!options.emptyLedger && !r.chance(0.2)) {
    for (let t = 1; t <= turns; t++) {
      if (!r.chance(0.6)) continue;
      for (let k = r.int(1, 3); k > 0; k--) {
        const status = r.pick(['ok', 'ok', 'error', 'rejected'] as const);
        ledger.push(entry(t, {
          tool: r.pick(toolNames), status, ...(status === 'error' ? { errorCode: r.pick(errorCodes) } : {}), ...(r.chance(0.1) ? { undone: true } : {}),
        }));
      }
    }
  }

  const contextSettings = settings({ recentTurns: r.int(1, 6), outputHeadroomTokens: r.int(100, 2_000), summaryMaxTokens: r.int(50, 500) });
  const calibration = r.pick(calibrations);
  const toolTokens = r.chance(0.3) ? 0 : r.int(0, 1_500);
  const summary: ContextSummary | null = turns >= 2 && r.chance(0.3)
    ? (() => {
        const k = r.int(1, turns - 1);
        return { text: r.text(r.int(0, contextSettings.summaryMaxTokens * 4)), throughIndex: starts[k] as number, throughTurn: k };
      })()
    : null;

  // From a window that cannot hold the system prompt and task to one well past the whole conversation.
  const head = costOfAll(conversation.slice(0, 2), calibration) + Math.ceil(toolTokens * calibration);
  const whole = costOfAll(conversation, calibration) + Math.ceil(toolTokens * calibration) + 200;
  const room = r.chance(0.1) ? r.int(0, head) : r.int(head, Math.ceil(whole * 1.3));
  return {
    seed,
    shape: { starts, preamble, lastUser },
    input: {
      conversation, summary, ledger, toolTokens, contextWindow: room + contextSettings.outputHeadroomTokens, settings: contextSettings, count, calibration,
      canSummarise: options.canSummarise ?? r.chance(0.5),
    },
  };
}

/**
 * The ledger message for the turns up to `hiddenUpTo`: their newest lines, oldest first, while the lines'
 * uncalibrated counts (plus one a line) stay within a fifth of the limit, at most 200, and how many were left out.
 */
function ledgerOf(input: AssemblyInput, hiddenUpTo: number, limit: number): ChatMessage[] {
  const hidden = input.ledger.filter((e) => e.turn <= hiddenUpTo).map(ledgerLine);
  const share = Math.floor(limit / 5);
  const listed: string[] = [];
  let used = 0;
  // Lines are counted like everything else: calibrated.
  const lineCost = (line: string) => Math.ceil((count(line) + 1) * input.calibration);
  for (const line of hidden.toReversed()) {
    if (listed.length === 200 || used + lineCost(line) > share) break;
    listed.unshift(line);
    used += lineCost(line);
  }
  if (listed.length === 0) return [];
  const omitted = hidden.length - listed.length;
  const note = omitted > 0 ? `\n(${omitted} earlier action${omitted === 1 ? '' : 's'} not listed${input.summary ? '; the summary covers them' : ''}.)` : '';
  return [user(`${ledgerHeader}\n${listed.join('\n')}${note}`)];
}

/** Every assistant's calls answered by the tool messages right after it, each exactly once; no tool message elsewhere. */
function expectPaired(messages: ChatMessage[], at: string): void {
  let open: Set<string> | null = null;
  for (const [i, m] of messages.entries()) {
    if (m.role === 'tool') {
      expect(open?.has(m.toolCallId) ?? false, `${at}: tool message ${i} (${m.toolCallId}) answers no open call of the assistant message before it`).toBe(true);
      open?.delete(m.toolCallId);
      continue;
    }
    expect([...(open ?? [])], `${at}: message ${i} comes before every call of the assistant message was answered`).toEqual([]);
    open = m.role === 'assistant' ? new Set((m.toolCalls ?? []).map((c) => c.id)) : null;
  }
  expect([...(open ?? [])], `${at}: the last assistant message has unanswered calls`).toEqual([]);
}

/** Checks a request (not a summary plan) against everything the assembler promises. Returns which path it took. */
function checkRequest(seed: number, input: AssemblyInput, shape: Shape, out: AssembledContext): 'fits' | 'compressed' | 'overflow' {
  const at = `seed ${seed}`;
  const { conversation, calibration, summary } = input;
  const { messages, breakdown: b } = out;
  const firstTurn = 2 + shape.preamble;
  const turnOf = (index: number): number => shape.starts.filter((s) => s <= index).length;
  const liveStarts = shape.starts.filter((s) => !summary || s >= summary.throughIndex);
  const liveTurns = liveStarts.map((s) => turnOf(s));

  // (a) Budget arithmetic, recomputed from the messages themselves.
  expect(b.tools, at).toBe(Math.ceil(input.toolTokens * calibration));
  expect(b.limit, at).toBe(Math.max(0, input.contextWindow - input.settings.outputHeadroomTokens));
  expect(b.outputHeadroom, at).toBe(input.settings.outputHeadroomTokens);
  expect(b.system + b.tools + b.task + b.ledger + b.summary + b.history, `${at}: the parts add up to the total`).toBe(b.total);
  expect(costOfAll(messages, calibration), `${at}: the messages cost the total without the tools`).toBe(b.total - b.tools);
  expect(out.overflow, `${at}: overflow means over the limit`).toBe(b.total > b.limit);
  if (!out.overflow) expect(b.total, at).toBeLessThanOrEqual(b.limit);

  // (b), (e) Calls and results paired, no result without its call.
  expectPaired(messages, at);
  // (c) System prompt, then task.
  expect(messages[0], `${at}: the system prompt comes first`).toBe(conversation[0]);
  expect(messages[1], `${at}: the task comes second`).toBe(conversation[1]);
  // (d) The latest user message, exactly once.
  expect(messages.filter((m) => m === shape.lastUser), `${at}: the latest user message is sent once`).toHaveLength(1);

  // Layout: preamble, ledger, summary, pinned message, then a suffix of the live turns.
  let i = 2;
  for (; i < firstTurn; i++) expect(messages[i], `${at}: preamble message ${i}`).toBe(conversation[i]);
  const ledgerMessage = messages[i]?.role === 'user' && (messages[i] as { content: string }).content.startsWith(ledgerHeader) ? messages[i++] : undefined;
  if (summary) expect(messages[i++], `${at}: the summary follows the ledger`).toEqual(user(summaryContent(summary)));
  expect(messages.some((m) => m.role === 'user' && m.content.startsWith('Summary of turns')), `${at}: a summary only when there is one`).toBe(summary !== null);
  const pinned = messages[i] === shape.lastUser;
  if (pinned) i += 1;
  const rest = messages.slice(i);
  const keptFrom = rest.length > 0 ? conversation.indexOf(rest[0] as ChatMessage) : conversation.length;
  expect(rest.length > 0 || liveStarts.length === 0, `${at}: at least the newest turn is kept`).toBe(true);
  if (rest.length > 0) expect(liveStarts, `${at}: the kept turns start at a live turn`).toContain(keptFrom);
  const original = conversation.slice(keptFrom);
  expect(rest, `${at}: the kept turns run to the end`).toHaveLength(original.length);
  const keptTurns = liveTurns.filter((t) => (shape.starts[t - 1] as number) >= keptFrom);
  const notedTurns = new Set<number>();
  for (const [j, o] of original.entries()) {
    const sent = rest[j] as ChatMessage;
    if (o.role !== 'tool' || sent === o) {
      expect(sent, `${at}: kept message ${keptFrom + j} is sent as it is`).toBe(o);
      continue;
    }
    expect(sent.role === 'tool' && sent.toolCallId === o.toolCallId && isNote(sent.content), `${at}: result ${keptFrom + j} is either itself or a note`).toBe(true);
    notedTurns.add(turnOf(keptFrom + j));
    if (turnOf(keptFrom + j) !== keptTurns.at(-1)) {
      expect(costOf(sent, calibration), `${at}: the note for result ${keptFrom + j} costs less than the result`).toBeLessThan(costOf(o, calibration));
    }
  }
  const lastUserIndex = conversation.indexOf(shape.lastUser);
  expect(pinned, `${at}: the latest user message is pinned exactly when its turn is not sent`).toBe(lastUserIndex >= firstTurn && lastUserIndex < keptFrom);

  // The ledger message lists the newest completed actions of the turns not sent, and only those; it is
  // given up only when the newest turn alone does not fit with it.
  if (ledgerMessage || keptTurns.length !== 1) {
    expect(ledgerMessage ? [ledgerMessage] : [], `${at}: the ledger of the hidden turns`).toEqual(ledgerOf(input, turnOf(keptFrom - 1), b.limit));
  }

  // What was removed, in order, says so.
  // Older results first, then windowing, then (the newest turn sent alone) that turn's own results.
  const order = ['tool_results_dropped', 'turns_windowed', 'tool_results_dropped'];
  let next = 0;
  for (const kind of out.removed.map((r) => r.kind)) {
    while (next < order.length && order[next] !== kind) next += 1;
    expect(next, `${at}: removal order ${out.removed.map((r) => r.kind).join(', ')}`).toBeLessThan(order.length);
    next += 1;
  }
  const windowedTurns = liveTurns.filter((t) => !keptTurns.includes(t));
  const windowed = out.removed.find((r) => r.kind === 'turns_windowed');
  expect(windowed?.turns ?? [], `${at}: the windowed turns`).toEqual(windowedTurns);
  const dropped = out.removed.find((r) => r.kind === 'tool_results_dropped');
  const older = liveTurns.slice(0, Math.max(0, liveTurns.length - input.settings.recentTurns));
  if (dropped) expect(dropped.tokens, `${at}: dropping results saves tokens`).toBeGreaterThan(0);
  const newestAlone = keptTurns.length === 1 ? keptTurns[0] : undefined;
  const droppedTurns = out.removed.flatMap((r) => (r.kind === 'tool_results_dropped' ? r.turns : []));
  for (const t of droppedTurns) expect(older.includes(t) || t === newestAlone, `${at}: results dropped only in turns older than the recent ones, or the newest sent alone`).toBe(true);
  for (const t of notedTurns) {
    expect(droppedTurns.includes(t) || t === newestAlone, `${at}: turn ${t} has notes only if its results were dropped or it is the newest turn sent alone`).toBe(true);
  }
  if (out.overflow) expect(keptTurns.length, `${at}: an overflow keeps no more than the newest turn`).toBeLessThanOrEqual(1);

  // A request that fits as it is goes unchanged.
  const coveredEnd = liveStarts[0] ?? conversation.length;
  const untouched = [
    ...conversation.slice(0, firstTurn),
    ...ledgerOf(input, turnOf(coveredEnd - 1), b.limit),
    ...(summary ? [user(summaryContent(summary))] : []),
    ...(lastUserIndex >= firstTurn && lastUserIndex < coveredEnd ? [shape.lastUser] : []),
    ...conversation.slice(coveredEnd),
  ];
  const fits = costOfAll(untouched, calibration) + b.tools <= b.limit;
  if (fits) {
    expect(messages, `${at}: a request that fits is sent as it is`).toEqual(untouched);
    expect(out.removed, at).toEqual([]);
  } else if (liveStarts.length > 1) {
    expect(out.removed.length, `${at}: a request over the limit is compressed`).toBeGreaterThan(0);
  }
  return out.overflow ? 'overflow' : fits ? 'fits' : 'compressed';
}

/** Checks a summary plan: a run of whole turns from where the current summary ends, never the newest turn. */
function checkSummarise(seed: number, input: AssemblyInput, shape: Shape, out: AssembledContext): void {
  const at = `seed ${seed}`;
  const plan = out.summarise as NonNullable<AssembledContext['summarise']>;
  const { conversation, summary } = input;
  const liveStarts = shape.starts.filter((s) => !summary || s >= summary.throughIndex);
  expect(input.canSummarise, at).toBe(true);
  expect(out.messages, `${at}: a plan sends nothing`).toEqual([]);
  expect(out.overflow, at).toBe(false);
  expect(out.breakdown.total, `${at}: a summary is asked for only over the limit`).toBeGreaterThan(out.breakdown.limit);
  expect(liveStarts.length, `${at}: only with more than one turn to keep`).toBeGreaterThan(1);
  expect(plan.fromIndex, `${at}: from the end of the current summary or turn 1`).toBe(summary ? summary.throughIndex : shape.starts[0]);
  expect(liveStarts.slice(1), `${at}: through the start of a turn after the first, so never the newest`).toContain(plan.throughIndex);
  expect(plan.throughTurn, `${at}: the turns before throughIndex`).toBe(shape.starts.indexOf(plan.throughIndex));
  expect(plan.messages, `${at}: a slice of the conversation`).toEqual(conversation.slice(plan.fromIndex, plan.throughIndex));
  plan.messages.forEach((m, j) => expect(m, at).toBe(conversation[plan.fromIndex + j]));
  expect(plan.messages[0]?.role, `${at}: starting at a turn`).toBe('assistant');
  expect(out.removed.every((r) => r.kind === 'tool_results_dropped'), at).toBe(true);
  // Without dropped results the turns cost what they cost in full, so the cut can be checked exactly:
  // the fewest oldest turns after which the rest fits with room for the summary (or all but the newest).
  if (out.removed.length === 0) {
    const cut = liveStarts.indexOf(plan.throughIndex);
    const turnCost = (k: number) => costOfAll(conversation.slice(liveStarts[k], liveStarts[k + 1] ?? conversation.length), input.calibration);
    const without = (n: number) => out.breakdown.total - Array.from({ length: n }, (_, k) => turnCost(k)).reduce((a, c) => a + c, 0);
    const room = input.settings.summaryMaxTokens;
    expect(cut === liveStarts.length - 1 || without(cut) + room <= out.breakdown.limit, `${at}: enough turns summarised`).toBe(true);
    expect(without(cut - 1) + room, `${at}: no more turns summarised than needed`).toBeGreaterThan(out.breakdown.limit);
  }
}

describe('assembleContext, over random conversations', () => {
  const cases = 600;

  it(`keeps every windowed request within budget, paired, ordered and complete (${cases} cases)`, () => {
    const paths = { fits: 0, compressed: 0, overflow: 0 };
    for (let n = 0; n < cases; n++) {
      const c = randomCase(baseSeed + n, { canSummarise: false });
      const out = assembleContext(c.input);
      expect(out.summarise, `seed ${c.seed}`).toBeUndefined();
      paths[checkRequest(c.seed, c.input, c.shape, out)] += 1;
    }
    // The generator reaches every path, so the properties are not checked on easy cases only.
    expect(paths.fits).toBeGreaterThan(cases / 20);
    expect(paths.compressed).toBeGreaterThan(cases / 20);
    expect(paths.overflow).toBeGreaterThan(cases / 50);
  });

  it(`plans summaries of whole older turns, and the request with the summary keeps every promise (${cases} cases)`, () => {
    const paths = { summarise: 0, fits: 0, compressed: 0, overflow: 0 };
    for (let n = 0; n < cases; n++) {
      const seed = baseSeed + 10_000 + n;
      const c = randomCase(seed, { canSummarise: true });
      const out = assembleContext(c.input);
      if (!out.summarise) {
        paths[checkRequest(seed, c.input, c.shape, out)] += 1;
        continue;
      }
      paths.summarise += 1;
      checkSummarise(seed, c.input, c.shape, out);
      // As the caller does: a summary of at most summaryMaxTokens replaces the planned turns, and it assembles again.
      const r = new Random(seed);
      const summary: ContextSummary = { text: r.text(c.input.settings.summaryMaxTokens * 4), throughIndex: out.summarise.throughIndex, throughTurn: out.summarise.throughTurn };
      const again = { ...c.input, summary, canSummarise: false };
      checkRequest(seed, again, c.shape, assembleContext(again));
    }
    expect(paths.summarise).toBeGreaterThan(cases / 10);
    expect(paths.fits).toBeGreaterThan(cases / 20);
  });

  it(`reports an overflow exactly when the newest turn in full cannot fit beside what is always sent, with no ledger (${cases} cases)`, () => {
    let overflows = 0;
    for (let n = 0; n < cases; n++) {
      const seed = baseSeed + 20_000 + n;
      const { input, shape } = randomCase(seed, { canSummarise: false, emptyLedger: true });
      const out = assembleContext(input);
      const { conversation, calibration, summary } = input;
      const at = `seed ${seed}`;
      const firstTurn = 2 + shape.preamble;
      const liveStarts = shape.starts.filter((s) => !summary || s >= summary.throughIndex);
      const newestFrom = liveStarts.at(-1) ?? conversation.length;
      const lastUserIndex = conversation.indexOf(shape.lastUser);
      const always = [
        ...conversation.slice(0, firstTurn), ...(summary ? [user(summaryContent(summary))] : []),
        ...(lastUserIndex >= firstTurn && lastUserIndex < newestFrom ? [shape.lastUser] : []),
      ];
      const base = costOfAll(always, calibration) + Math.ceil(input.toolTokens * calibration);
      const newest = costOfAll(conversation.slice(newestFrom), calibration);
      const limit = out.breakdown.limit;
      if (base + newest <= limit) expect(out.overflow, `${at}: the newest turn fits in full`).toBe(false);
      if (base > limit) expect(out.overflow, `${at}: what is always sent does not fit`).toBe(true);
      if (out.overflow) overflows += 1;
    }
    expect(overflows).toBeGreaterThan(cases / 50);
  });
});
