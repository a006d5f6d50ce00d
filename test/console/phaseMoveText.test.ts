import { describe, expect, it } from 'vitest';
import { phaseMoveText } from '../../console/app/src/phaseMoveText.ts';
import { refundDeskSession } from './sessionStream.ts';

describe('phaseMoveText', () => {
  it('reads each move of the refund desk as where from, where to and why', () => {
    const moves = refundDeskSession().filter((e) => e.type === 'workflow.transitioned');

    expect(moves.map((move) => phaseMoveText(move as unknown as Record<string, unknown>))).toEqual([
      { route: 'triage → investigate', why: 'the model\'s choice', reason: 'Order 1002 exists: Diego Lopez\'s, shipped.' },
      { route: 'investigate → propose', why: 'the model\'s choice', reason: 'One portable speaker at 5900 cents is refundable.' },
      { route: 'propose → execute', why: 'the model\'s choice, approved by ana (console)', reason: 'The proposal is in proposals/order-1002.md: refund 5900 cents for one broken speaker.' },
      { route: 'execute → report', why: 'refunds_issue succeeded', reason: null },
    ]);
  });

  it('says a guard held, joins nested phases outermost first, and survives missing fields', () => {
    expect(phaseMoveText({ from: ['work', 'draft'], to: ['escalate'], trigger: 'guard' })).toEqual({ route: 'work › draft → escalate', why: 'a ledger guard held', reason: null });
    expect(phaseMoveText({ trigger: 'approval' })).toEqual({ route: '? → ?', why: 'the model\'s choice, approved by a person', reason: null });
    expect(phaseMoveText({ from: ['a'], to: ['b'], trigger: 'teleport', detail: 'new' })).toEqual({ route: 'a → b', why: 'teleport', reason: 'new' });
  });
});
