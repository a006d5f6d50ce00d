import type { ChatCompletionChunk } from 'openai/resources/chat/completions';
import type { ModelToolCall } from '../../machines/conversation.ts';

type ToolCallDelta = ChatCompletionChunk.Choice.Delta.ToolCall;

const isCompleteJson = (text: string): boolean => {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
};

/**
 * Rebuilds the tool calls of a streamed reply from their deltas, in the order they began. OpenAI
 * numbers every delta with the `index` of its call; not every compatible endpoint does, and the
 * typed client does not check. Calls are never merged or dropped for want of an index:
 *
 * - With an `index`: the call of that index, unless the delta brings a different id than that call
 *   already has (endpoints that send every call as index 0): then it is a new call.
 * - Without one: a delta with an id belongs to the call with that id, or to the latest call if that
 *   one has no id yet, or else begins a call; a delta with a name belongs to the latest call if that
 *   one has no name yet, or else begins a call; arguments alone continue the latest call, unless its
 *   arguments are already whole JSON, which nothing can continue: then they begin a call of their
 *   own, with no name, which the session answers as a call without a tool name instead of running
 *   it or gluing it onto the one before.
 */
export class ToolCallDeltas {
  readonly #calls: Array<{ id: string; name: string; arguments: string }> = [];
  readonly #positionByIndex = new Map<number, number>();
  #latest: number | undefined;

  add(delta: ToolCallDelta): void {
    const position = this.#positionOf(delta);
    const call = this.#calls[position] as { id: string; name: string; arguments: string };
    if (delta.id) call.id = delta.id;
    if (delta.function?.name) call.name += delta.function.name;
    if (delta.function?.arguments) call.arguments += delta.function.arguments;
    this.#latest = position;
  }

  /** The calls so far; one without an id gets `call_<turn>_<position>`. */
  toolCalls(turn: number): ModelToolCall[] {
    return this.#calls.map((c, position) => ({ id: c.id || `call_${turn}_${position}`, name: c.name, arguments: c.arguments }));
  }

  #positionOf(delta: ToolCallDelta): number {
    // The client's types say `index` is always there; what arrives on the wire may say otherwise.
    const index: unknown = delta.index;
    if (typeof index === 'number' && Number.isInteger(index) && index >= 0) {
      const known = this.#positionByIndex.get(index);
      const knownId = known === undefined ? '' : this.#calls[known]?.id;
      if (known !== undefined && !(delta.id && knownId && delta.id !== knownId)) return known;
      const position = this.#begin();
      this.#positionByIndex.set(index, position);
      return position;
    }
    const latest = this.#latest === undefined ? undefined : this.#calls[this.#latest];
    if (delta.id) {
      const same = this.#calls.findIndex((c) => c.id === delta.id);
      if (same >= 0) return same;
      return latest && latest.id === '' && this.#latest !== undefined ? this.#latest : this.#begin();
    }
    if (delta.function?.name) return latest && latest.name === '' && this.#latest !== undefined ? this.#latest : this.#begin();
    const fragment = delta.function?.arguments ?? '';
    if (latest && this.#latest !== undefined && (fragment.trim() === '' || !isCompleteJson(latest.arguments))) return this.#latest;
    return this.#begin();
  }

  #begin(): number {
    this.#calls.push({ id: '', name: '', arguments: '' });
    return this.#calls.length - 1;
  }
}
