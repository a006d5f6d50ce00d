import { describe, expect, it } from 'vitest';
import { ChatRequest, messageText, lastUserMessageKey, toolContentsOf } from '../../scriptedModel/chatRequest.ts';

describe('ChatRequest', () => {
  it('accepts unknown request fields and null content', () => {
    const body = { model: 'm', temperature: 0, messages: [{ role: 'assistant', content: null, tool_calls: [{ id: 'a' }] }] };
    expect(ChatRequest.safeParse(body).success).toBe(true);
  });

  it('rejects a body without model or messages', () => {
    expect(ChatRequest.safeParse({ messages: [{ role: 'user', content: 'x' }] }).success).toBe(false);
    expect(ChatRequest.safeParse({ model: 'm' }).success).toBe(false);
  });
});

describe('messageText', () => {
  it('joins the text of content parts and skips other parts', () => {
    const message = { role: 'user', content: [{ type: 'text', text: 'a' }, { type: 'image_url', image_url: {} }, { type: 'text', text: 'b' }] };
    expect(messageText(message)).toBe('ab');
  });
});

describe('toolContentsOf', () => {
  it('maps tool_call_id to the content of tool messages only, and keeps the latest user message apart', () => {
    const contents = toolContentsOf([
      { role: 'user', content: 'x', tool_call_id: 'not_a_tool' },
      { role: 'tool', tool_call_id: 'call_1', content: '{"ok":true}' },
      { role: 'user', content: 'later' },
    ]);
    expect(contents.get(lastUserMessageKey)).toBe('later');
    expect([...contents.keys()].filter((k) => k !== lastUserMessageKey)).toEqual(['call_1']);
    expect(contents.get('call_1')).toBe('{"ok":true}');
  });
});
