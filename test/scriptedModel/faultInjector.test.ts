import { describe, expect, it } from 'vitest';
import type { ChatRequest } from '../../scriptedModel/chatRequest.ts';
import { createFaultInjector } from '../../scriptedModel/faultInjector.ts';
import { Script, type ScriptFault } from '../../scriptedModel/script.ts';

const scriptWith = (fault?: ScriptFault) => Script.parse({ name: 'flaky', match: { userIncludes: 'flaky' }, steps: [{ content: 'ok', ...(fault ? { fault } : {}) }, { content: 'later' }] });
const request = (text: string, model = 'primary'): ChatRequest => ({ model, messages: [{ role: 'user', content: `flaky ${text}` }] });
const attemptsOf = (injector: ReturnType<typeof createFaultInjector>, script: Script, req: ChatRequest, count: number) =>
  Array.from({ length: count }, () => injector.take(script, 0, req)?.attempt ?? null);

describe('createFaultInjector', () => {
  it('injects nothing at a step without a fault', () => {
    expect(createFaultInjector().take(scriptWith(), 0, request('a'))).toBeUndefined();
    expect(createFaultInjector().take(scriptWith({ kind: 'empty' }), 1, request('a'))).toBeUndefined();
  });

  it('faults every request when times is not set, numbering the attempts', () => {
    const script = scriptWith({ kind: 'disconnect' });
    expect(attemptsOf(createFaultInjector(), script, request('a'), 3)).toEqual([1, 2, 3]);
  });

  it('faults the first `times` requests of a conversation, then lets the step answer', () => {
    const script = scriptWith({ kind: 'http_error', status: 429, times: 2 });
    const injector = createFaultInjector();
    expect(attemptsOf(injector, script, request('a'), 4)).toEqual([1, 2, null, null]);
  });

  it('counts each conversation separately', () => {
    const script = scriptWith({ kind: 'empty', times: 1 });
    const injector = createFaultInjector();
    expect(injector.take(script, 0, request('a'))?.attempt).toBe(1);
    expect(injector.take(script, 0, request('a'))).toBeUndefined();
    expect(injector.take(script, 0, request('b'))?.attempt).toBe(1);
  });

  it('faults only requests for the fault\'s model, and does not count the others', () => {
    const script = scriptWith({ kind: 'http_error', status: 503, model: 'primary', times: 1 });
    const injector = createFaultInjector();
    expect(injector.take(script, 0, request('a', 'fallback'))).toBeUndefined();
    expect(injector.take(script, 0, request('a', 'primary'))?.fault.kind).toBe('http_error');
    expect(injector.take(script, 0, request('a', 'primary'))).toBeUndefined();
  });

  it('forgets the least recently faulted conversation beyond its capacity', () => {
    const script = scriptWith({ kind: 'empty', times: 1 });
    const injector = createFaultInjector(2);
    injector.take(script, 0, request('a'));
    injector.take(script, 0, request('b'));
    injector.take(script, 0, request('c'));
    expect(injector.take(script, 0, request('b'))).toBeUndefined();
    expect(injector.take(script, 0, request('c'))).toBeUndefined();
    expect(injector.take(script, 0, request('a'))?.attempt).toBe(1);
  });
});
