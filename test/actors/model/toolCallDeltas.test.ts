import type { ChatCompletionChunk } from 'openai/resources/chat/completions';
import { describe, expect, it } from 'vitest';
import { ToolCallDeltas } from '../../../actors/model/toolCallDeltas.ts';

type Delta = ChatCompletionChunk.Choice.Delta.ToolCall;
// What an endpoint that leaves `index` out sends: the client's types insist on it.
const unindexed = (delta: Omit<Delta, 'index'>) => delta as Delta;

function rebuild(deltas: Delta[]) {
  const accumulated = new ToolCallDeltas();
  for (const delta of deltas) accumulated.add(delta);
  return accumulated.toolCalls(3);
}

describe('ToolCallDeltas', () => {
  it('concatenates each call’s fragments by index, in order', () => {
    expect(rebuild([
      { index: 0, id: 'a', type: 'function', function: { name: 'calc_evaluate', arguments: '' } },
      { index: 0, function: { arguments: '{"expression":' } },
      { index: 1, id: 'b', type: 'function', function: { name: 'files_read', arguments: '{"path"' } },
      { index: 0, function: { arguments: '"1+1"}' } },
      { index: 1, function: { arguments: ':"x"}' } },
    ])).toEqual([
      { id: 'a', name: 'calc_evaluate', arguments: '{"expression":"1+1"}' },
      { id: 'b', name: 'files_read', arguments: '{"path":"x"}' },
    ]);
  });

  it('keeps whole calls apart when the stream’s deltas carry no index', () => {
    expect(rebuild([
      unindexed({ id: 'a', type: 'function', function: { name: 'calc_evaluate', arguments: '{"expression":"1+1"}' } }),
      unindexed({ id: 'b', type: 'function', function: { name: 'files_read', arguments: '{"path":"x"}' } }),
    ])).toEqual([
      { id: 'a', name: 'calc_evaluate', arguments: '{"expression":"1+1"}' },
      { id: 'b', name: 'files_read', arguments: '{"path":"x"}' },
    ]);
  });

  it('continues the latest call with fragments that carry no index, id or name', () => {
    expect(rebuild([
      unindexed({ id: 'a', type: 'function', function: { name: 'calc_evaluate', arguments: '' } }),
      unindexed({ function: { arguments: '{"expression":' } }),
      unindexed({ function: { arguments: '"2"}' } }),
      unindexed({ function: { name: 'files_read', arguments: '{"path":"y"}' } }),
    ])).toEqual([
      { id: 'a', name: 'calc_evaluate', arguments: '{"expression":"2"}' },
      { id: 'call_3_1', name: 'files_read', arguments: '{"path":"y"}' },
    ]);
  });

  it('starts a call without a name for arguments that nothing can continue, instead of gluing them on', () => {
    expect(rebuild([
      unindexed({ id: 'a', type: 'function', function: { name: 'calc_evaluate', arguments: '{"expression":"2"}' } }),
      unindexed({ function: { arguments: '{"expression":"3"}' } }),
    ])).toEqual([
      { id: 'a', name: 'calc_evaluate', arguments: '{"expression":"2"}' },
      { id: 'call_3_1', name: '', arguments: '{"expression":"3"}' },
    ]);
  });

  it('takes a new id under an index already used as a new call, not a rename', () => {
    expect(rebuild([
      { index: 0, id: 'a', type: 'function', function: { name: 'calc_evaluate', arguments: '{"expression":"2"}' } },
      { index: 0, id: 'b', type: 'function', function: { name: 'files_read', arguments: '{"path":' } },
      { index: 0, function: { arguments: '"z"}' } },
    ])).toEqual([
      { id: 'a', name: 'calc_evaluate', arguments: '{"expression":"2"}' },
      { id: 'b', name: 'files_read', arguments: '{"path":"z"}' },
    ]);
  });
});
