import { describe, expect, it } from 'vitest';
import { addressConflict, conflictAlert, definitionOf, pickDefinition, type Advertisement } from '../../../actors/toolCalls/catalogConflicts.ts';
import { Alert } from '../../../transport/messages.ts';
import { wireNames } from '../../../transport/subjects.ts';

const names = wireNames('staging');
const member = (instance: string, schema: string, overrides: Partial<Advertisement> = {}): Advertisement => ({
  instance, service: 'staging-calc', domain: 'calc', specialist: undefined, tool: 'calc_add', subject: 'staging.tools.calc.calc_add',
  metadata: { 'troupe.tool.input_schema': schema, 'troupe.tool.description': 'Adds.' },
  ...overrides,
});

function permutations<T>(items: T[]): T[][] {
  if (items.length <= 1) return [items];
  return items.flatMap((item, i) => permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]));
}

describe('addressConflict', () => {
  it('accepts a domain\'s own tool at its pool\'s service and subject, and a specialist\'s delegate tool at its own', () => {
    expect(addressConflict(names, member('A', '{}'))).toBeUndefined();
    expect(addressConflict(names, member('S', '{}', {
      service: 'staging-agent-analyst', domain: 'delegate', specialist: 'analyst', tool: 'delegate_analyst', subject: 'staging.agents.analyst.delegate',
    }))).toBeUndefined();
  });

  it('refuses a tool without a domain prefix, or with another domain\'s', () => {
    expect(addressConflict(names, member('A', '{}', { tool: 'add' }))?.reason).toBe('foreign_domain');
    expect(addressConflict(names, member('A', '{}', { tool: 'files_write', subject: 'staging.tools.calc.files_write' }))?.reason).toBe('foreign_domain');
  });

  it('judges addresses by the catalog\'s namespace: another deployment\'s subject is a wrong address', () => {
    expect(addressConflict(names, member('A', '{}', { service: 'troupe-calc', subject: 'troupe.tools.calc.calc_add' }))?.reason).toBe('wrong_address');
  });
});

describe('pickDefinition', () => {
  it('picks what most members advertise, whatever order they answered in', () => {
    const members = [member('C', 'a'), member('A', 'b'), member('B', 'a')];
    for (const order of permutations(members)) expect(pickDefinition(order)).toBe(definitionOf(member('X', 'a')));
  });

  it('breaks a tie with the smallest instance id, whatever order they answered in', () => {
    const members = [member('M2', 'a'), member('M1', 'b'), member('M3', 'c')];
    for (const order of permutations(members)) expect(pickDefinition(order)).toBe(definitionOf(member('X', 'b')));
  });

  it('sees the same definition in metadata listed in another order', () => {
    const reordered = member('B', 'a', { metadata: { 'troupe.tool.description': 'Adds.', 'troupe.tool.input_schema': 'a' } });
    expect(definitionOf(reordered)).toBe(definitionOf(member('A', 'a')));
  });
});

describe('conflictAlert', () => {
  it('is a valid tool_conflict alert about the tool once the publisher adds its source', () => {
    const conflict = addressConflict(names, member('ROGUE', '{}', { tool: 'files_write', subject: 'x' }));
    if (!conflict) throw new Error('expected a conflict');
    const alert = { ...conflictAlert(conflict, new Date(0)), source: 'troupe-orchestrator' };
    expect(Alert.parse(alert)).toMatchObject({ kind: 'tool_conflict', subject: 'files_write', value: 1, threshold: 0, at: '1970-01-01T00:00:00.000Z' });
    expect(alert.detail).toContain('ROGUE');
  });
});
