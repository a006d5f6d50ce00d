import { describe, expect, it } from 'vitest';
import { renderArguments, renderTemplates } from '../../scriptedModel/templates.ts';

const tools = new Map([
  ['call_db', JSON.stringify({ rows: [{ total: 42, name: 'north' }], meta: { source: 'db' } })],
  ['call_text', 'plain words, not JSON'],
]);

describe('renderTemplates', () => {
  it('inserts the whole content of the tool message for {{tool:<id>}}', () => {
    expect(renderTemplates('said: {{tool:call_text}}', tools)).toEqual({ ok: true, value: 'said: plain words, not JSON' });
  });

  it('inserts the value at a dotted path, indexing arrays by number', () => {
    expect(renderTemplates('total {{tool:call_db:rows.0.total}} in {{tool:call_db:rows.0.name}}', tools)).toEqual({ ok: true, value: 'total 42 in north' });
  });

  it('inserts objects as JSON', () => {
    expect(renderTemplates('{{tool:call_db:meta}}', tools)).toEqual({ ok: true, value: '{"source":"db"}' });
  });

  it('leaves text without templates unchanged', () => {
    expect(renderTemplates('no {{templates}} here', tools)).toEqual({ ok: true, value: 'no {{templates}} here' });
  });

  it('fails, naming the id and the known ids, when no tool message has that id', () => {
    const result = renderTemplates('{{tool:call_nope}}', tools);
    expect(result.ok).toBe(false);
    expect(!result.ok && result.error).toMatch(/no tool message with tool_call_id "call_nope".*"call_db", "call_text"/);
  });

  it('fails, naming the missing key and where the path stopped, when the path is absent', () => {
    const result = renderTemplates('{{tool:call_db:rows.3.total}}', tools);
    expect(!result.ok && result.error).toContain('has no "3" at "rows"');
  });

  it('fails when a path is asked of content that is not JSON', () => {
    const result = renderTemplates('{{tool:call_text:a}}', tools);
    expect(!result.ok && result.error).toContain('is not JSON');
  });
});

describe('renderArguments', () => {
  it('sends string arguments verbatim after filling templates, even when they are not JSON', () => {
    expect(renderArguments('{"n": {{tool:call_db:rows.0.total}}', tools)).toEqual({ ok: true, value: '{"n": 42' });
  });

  it('fills strings inside object arguments and serialises them with correct escaping', () => {
    const rendered = renderArguments({ note: 'meta={{tool:call_db:meta}}', nested: [{ n: 1 }] }, tools);
    expect(rendered.ok && JSON.parse(rendered.value)).toEqual({ note: 'meta={"source":"db"}', nested: [{ n: 1 }] });
  });

  it('fails when a template nested in object arguments cannot be resolved', () => {
    expect(renderArguments({ deep: { list: ['{{tool:call_missing}}'] } }, tools).ok).toBe(false);
  });
});
