import { createHash } from 'node:crypto';
import type { ChatRequest } from './chatRequest.ts';
import type { Script, ScriptFault } from './script.ts';

/** How many conversations' fault counts a server remembers by default. */
export const defaultFaultMemory = 10_000;

/** A fault to inject into one response. */
export interface InjectedFault {
  readonly fault: ScriptFault;
  /** 1-based: which faulted answer of this conversation at this step this one is. */
  readonly attempt: number;
}

/**
 * Decides which requests a step's fault applies to. The only state the scripted model keeps:
 * how many faulted answers each conversation has had at each step, so that `times: 2` means two
 * failures and then success. A conversation is identified by the script, the step and a hash of
 * the request's messages; a retry sends the same messages, so it counts against the same budget.
 */
export interface FaultInjector {
  /**
   * The step's fault when it applies to this request (the step has one, its `model`, if set,
   * equals the request's, and this conversation has had fewer than `times` faulted answers at
   * this step), else undefined. Counts the attempt when it returns a fault, so call it once per
   * request.
   */
  take(script: Script, stepIndex: number, request: ChatRequest): InjectedFault | undefined;
}

/**
 * An injector that remembers the counts of the `capacity` most recently faulted conversations;
 * beyond that the least recently faulted one is forgotten, and would be faulted afresh.
 */
export function createFaultInjector(capacity = defaultFaultMemory): FaultInjector {
  const counts = new Map<string, number>();
  return {
    take(script, stepIndex, request) {
      const fault = script.steps[stepIndex]?.fault;
      if (!fault) return undefined;
      if (fault.model !== undefined && fault.model !== request.model) return undefined;
      const key = conversationKey(script.name, stepIndex, request.messages);
      const earlier = counts.get(key) ?? 0;
      if (fault.times !== undefined && earlier >= fault.times) return undefined;
      // Delete and re-insert so that Map order is least recently faulted first.
      counts.delete(key);
      if (counts.size >= capacity) {
        const oldest = counts.keys().next();
        if (!oldest.done) counts.delete(oldest.value);
      }
      counts.set(key, earlier + 1);
      return { fault, attempt: earlier + 1 };
    },
  };
}

function conversationKey(scriptName: string, stepIndex: number, messages: ChatRequest['messages']): string {
  return createHash('sha256').update(JSON.stringify([scriptName, stepIndex, messages])).digest('base64url');
}
