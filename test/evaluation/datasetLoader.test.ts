import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DatasetError, type DatasetProblem } from '../../evaluation/datasetError.ts';
import { loadDatasets } from '../../evaluation/datasetLoader.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'troupe-eval-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Writes `text` at `name` under the temp dir (folders made as needed) and returns its absolute path. */
async function file(name: string, text: string): Promise<string> {
  const full = path.join(dir, name);
  await mkdir(path.dirname(full), { recursive: true });
  await writeFile(full, text);
  return full;
}

/** The problems `loadDatasets(paths)` throws, failing the test when it does not throw a DatasetError. */
async function problemsOf(paths: string[]): Promise<DatasetProblem[]> {
  const error: unknown = await loadDatasets(paths).then(
    () => undefined,
    (thrown: unknown) => thrown,
  );
  if (!(error instanceof DatasetError)) throw new Error(`expected a DatasetError, got ${String(error)}`);
  return error.problems;
}

const yamlList = `
- id: calc-add
  task: What is 1 + 2?
  agent: calculator
  script: scripts/add.json
  budgets: { maxSteps: 4 }
  expect:
    output: { contains: "3" }
    trajectory:
      mode: strict
      calls:
        - tool: calc_add
          arguments: { a: 1, b: 2 }
- id: calc-mul
  task: What is 2 * 3?
  repeat: 3
`;

describe('loadDatasets', () => {
  it('reads a YAML list of cases, fills the defaults and resolves the script against the dataset file', async () => {
    const script = await file('evals/scripts/add.json', '{}');
    const dataset = await file('evals/calc.yaml', yamlList);
    const cases = await loadDatasets([dataset]);
    expect(cases).toHaveLength(2);
    expect(cases[0]).toMatchObject({
      id: 'calc-add',
      file: dataset,
      line: 2,
      agent: 'calculator',
      scriptFile: script,
      budgets: { maxSteps: 4 },
      repeat: 1,
      expect: { status: 'completed', output: { contains: '3' }, trajectory: { mode: 'strict', arguments: 'exact', calls: [{ tool: 'calc_add', arguments: { a: 1, b: 2 } }] } },
    });
    expect(cases[1]).toMatchObject({ id: 'calc-mul', repeat: 3, expect: { status: 'completed' } });
    expect(cases[1]?.scriptFile).toBeUndefined();
  });

  it('reads a YAML mapping of cases', async () => {
    const dataset = await file('cases.yml', 'cases:\n  - id: one\n    task: first\n  - id: two\n    task: second\n');
    expect((await loadDatasets([dataset])).map((c) => c.id)).toEqual(['one', 'two']);
  });

  it('reads JSONL, one case per non-empty line', async () => {
    const dataset = await file('cases.jsonl', '{"id":"one","task":"first"}\n\n{"id":"two","task":"second","expect":{"status":"failed"}}\n');
    const cases = await loadDatasets([dataset]);
    expect(cases.map((c) => [c.id, c.line, c.expect.status])).toEqual([['one', 1, 'completed'], ['two', 3, 'failed']]);
  });

  it('reads every dataset file under a folder, recursively and sorted by path, skipping hidden entries and other files', async () => {
    await file('evals/b.yaml', '- { id: b, task: t }\n');
    await file('evals/a/z.jsonl', '{"id":"a-z","task":"t"}\n');
    await file('evals/a.yml', '- { id: a, task: t }\n');
    await file('evals/README.md', '# not a dataset\n');
    await file('evals/.hidden/x.yaml', '- { id: hidden, task: t }\n');
    const cases = await loadDatasets([path.join(dir, 'evals')]);
    // By path as a string: "a.yml" sorts before "a/z.jsonl" ('.' before '/').
    expect(cases.map((c) => c.id)).toEqual(['a', 'a-z', 'b']);
  });

  it('reads a file named twice once', async () => {
    const dataset = await file('evals/a.yaml', '- { id: a, task: t }\n');
    expect(await loadDatasets([path.join(dir, 'evals'), dataset])).toHaveLength(1);
  });

  it('reports an unknown field, a trajectory mode that does not exist and a missing script with file, line, case and field, all at once', async () => {
    const dataset = await file(
      'evals/bad.yaml',
      [
        '- id: typo',
        '  task: t',
        '  expect:',
        '    outptu: { contains: x }',
        '- id: bad-mode',
        '  task: t',
        '  expect:',
        '    trajectory:',
        '      mode: sideways',
        '      calls: []',
        '- id: no-script',
        '  task: t',
        '  script: missing.json',
        '',
      ].join('\n'),
    );
    const problems = await problemsOf([dataset]);
    expect(problems).toEqual([
      { file: dataset, line: 4, caseId: 'typo', field: 'expect.outptu', message: 'unknown field' },
      expect.objectContaining({ file: dataset, line: 9, caseId: 'bad-mode', field: 'expect.trajectory.mode' }),
      { file: dataset, line: 13, caseId: 'no-script', field: 'script', message: `no such script file: ${path.join(dir, 'evals/missing.json')}` },
    ]);
    expect(problems[1]?.message).toContain('unordered');
  });

  it('reports schema failures deep in a case with the field path, and one problem per unknown key', async () => {
    const dataset = await file(
      'bad.jsonl',
      [
        '{"id":"has space","task":""}',
        '{"id":"calls","task":"t","extra":1,"other":2,"expect":{"trajectory":{"mode":"strict","calls":[{"tool":"calc_add","match":"loose"}]}}}',
        '{"id":"output","task":"t","expect":{"output":{"regex":"(unclosed","json":[{"path":"total"}]},"maxCostUsd":-1}}',
        '{"id":"budget","task":"t","budgets":{"maxSteps":0,"maxToolCalls":3},"repeat":101}',
      ].join('\n'),
    );
    const problems = await problemsOf([dataset]);
    const summary = problems.map((p) => `${p.line} ${p.caseId} ${p.field}`);
    expect(summary).toEqual([
      '1 has space id',
      '1 has space task',
      '2 calls expect.trajectory.calls[0].match',
      '2 calls extra',
      '2 calls other',
      '3 output expect.output.regex',
      '3 output expect.output.json[0].path',
      '3 output expect.maxCostUsd',
      '4 budget budgets.maxSteps',
      '4 budget budgets.maxToolCalls',
      '4 budget repeat',
    ]);
    expect(problems.find((p) => p.field === 'expect.output.regex')?.message).toMatch(/^not a valid regular expression/);
    expect(problems.find((p) => p.field === 'budgets.maxToolCalls')?.message).toBe('unknown field');
  });

  it('reports YAML and JSON syntax errors with their line', async () => {
    const yamlFile = await file('broken.yaml', '- id: a\n  task: t\n- id: b\n  task: [unclosed\n');
    const jsonlFile = await file('broken.jsonl', '{"id":"ok","task":"t"}\n{"id": nope}\n');
    const problems = await problemsOf([yamlFile, jsonlFile]);
    expect(problems).toHaveLength(2);
    expect(problems[0]).toMatchObject({ file: yamlFile, message: expect.stringMatching(/^not valid YAML/) });
    expect(problems[0]?.line).toBeGreaterThanOrEqual(4);
    expect(problems[1]).toMatchObject({ file: jsonlFile, line: 2, message: expect.stringMatching(/^not valid JSON/) });
  });

  it('reports a duplicate id across files, naming where it was first defined', async () => {
    const first = await file('a.yaml', '- id: same\n  task: t\n');
    const second = await file('b.jsonl', '{"id":"other","task":"t"}\n{"id":"same","task":"t"}\n');
    const problems = await problemsOf([first, second]);
    expect(problems).toEqual([{ file: second, line: 2, caseId: 'same', field: 'id', message: `duplicate case id: also defined in ${first}:1` }]);
  });

  it('reports paths that are not datasets: missing, another kind of file, an empty folder, a file with no cases, a top-level key', async () => {
    const missing = path.join(dir, 'nowhere.yaml');
    const text = await file('notes.txt', 'hello');
    await mkdir(path.join(dir, 'empty'));
    const emptyFile = await file('empty.yaml', '');
    const badTop = await file('top.yaml', 'cases: []\nversion: 2\n');
    const problems = await problemsOf([missing, text, path.join(dir, 'empty'), emptyFile, badTop]);
    expect(problems).toEqual([
      { file: missing, message: 'no such file or folder' },
      { file: text, message: 'neither a dataset file (.yaml, .yml, .jsonl) nor a folder' },
      { file: path.join(dir, 'empty'), message: 'a folder with no dataset file (.yaml, .yml, .jsonl) in it' },
      { file: emptyFile, message: 'the file holds no cases' },
      expect.objectContaining({ file: badTop, line: 2, field: 'version' }),
    ]);
  });

  it('lists every problem in the error message, one per line as file:line case id: field: message', async () => {
    const dataset = await file('evals/bad.yaml', '- id: a\n  task: t\n  repeet: 2\n- id: b\n');
    const problems = await problemsOf([dataset]);
    expect(problems).toHaveLength(2);
    const error = new DatasetError(problems);
    const lines = error.message.split('\n');
    expect(lines[0]).toBe('The eval datasets have 2 problems:');
    expect(lines[1]).toBe(`${dataset}:3 case a: repeet: unknown field`);
    expect(lines[2]).toMatch(new RegExp(`^${dataset.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:4 case b: task: `));
    expect(error.name).toBe('DatasetError');
  });
});
