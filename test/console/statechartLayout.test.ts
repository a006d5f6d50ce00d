import elkBundled from 'elkjs/lib/elk.bundled.js';
import type { ElkNode } from 'elkjs/lib/elk-api.js';
import { beforeAll, describe, expect, it } from 'vitest';
import { refundDeskAgent } from '../../agents/refundDesk.ts';
import { workflowGraphOf } from '../../console/server/sessionWorkflow.ts';
import { statechartGraphOf } from '../../console/server/statechartGraph.ts';
import { anyState, labelSize, layOutStatechart, type StatechartLayout, type StateShape } from '../../console/app/src/statechartLayout.ts';
import { sessionMachine } from '../../machines/session.ts';

// elkjs is CommonJS; its constructor is also its own `default`, which is how `nodenext` types it.
const ELK = elkBundled.default;
const measure = (text: string) => text.length * 7;
const graph = statechartGraphOf(sessionMachine);

const shapeOf = (layout: StatechartLayout, id: string): StateShape => {
  const shape = layout.states.find((s) => s.id === id);
  if (!shape) throw new Error(`no shape for ${id}`);
  return shape;
};
const transitionBetween = (layout: StatechartLayout, source: string, target: string) => {
  const transition = layout.transitions.find((t) => t.source === source && t.target === target);
  if (!transition) throw new Error(`no transition ${source} → ${target}`);
  return transition;
};
const inside = (inner: { x: number; y: number; width: number; height: number }, outer: { x: number; y: number; width: number; height: number }) =>
  inner.x >= outer.x && inner.y >= outer.y && inner.x + inner.width <= outer.x + outer.width && inner.y + inner.height <= outer.y + outer.height;

describe('layOutStatechart', () => {
  let layout: StatechartLayout;
  let given: ElkNode;
  beforeAll(async () => {
    const elk = new ELK();
    layout = await layOutStatechart(graph, (elkGraph) => {
      given = structuredClone(elkGraph);
      return elk.layout(elkGraph);
    }, measure);
  });

  it('places every state of the session machine once, the root first as the frame around the drawing', () => {
    expect(layout.states.map((s) => s.id).sort()).toEqual(graph.nodes.map((n) => n.id).sort());
    expect(layout.states[0]).toMatchObject({ id: 'session', root: true, container: true, x: 0, y: 0, width: layout.width, height: layout.height });
    expect(layout.states.filter((s) => s.root)).toHaveLength(1);
    expect(layout.states.filter((s) => s.container && !s.root).map((s) => s.id).sort()).toEqual([
      'session.calling_model_beside_input_check', 'session.calling_model_beside_input_check.input', 'session.calling_model_beside_input_check.model', 'session.manual', 'session.validating',
    ]);
  });

  it('puts each state inside its parent, and leaves room for its name', () => {
    for (const node of graph.nodes) {
      if (node.parent === null) continue;
      const shape = shapeOf(layout, node.id);
      expect(inside(shape, shapeOf(layout, node.parent)), `${node.id} inside ${node.parent}`).toBe(true);
      if (!shape.container) expect(shape.width).toBeGreaterThanOrEqual(measure(node.key) + 24);
    }
  });

  it('draws the root’s transitions from one “any state” box, never from the frame', () => {
    expect(layout.anyState).not.toBeNull();
    expect(layout.transitions.filter((t) => t.source === anyState).map((t) => [t.target, t.labels])).toEqual([
      ['session.cancelled', ['session.cancel']],
      ['session.escalated', ['session.escalate']],
      ['session.budget_exhausted', ['session.deadline_reached']],
    ]);
    expect(layout.transitions.some((t) => t.source === 'session' || t.target === 'session')).toBe(false);
  });

  it('merges the transitions between the same two states into one arrow, with every event', () => {
    expect(transitionBetween(layout, 'session.interrupted', 'session.preparing').events).toEqual(['session.redirect', 'session.continue']);
    expect(transitionBetween(layout, 'session.rolling_back', 'session.interrupted').labels).toEqual(['done: rollBack', 'error: rollBack']);
    expect(layout.transitions.filter((t) => t.source === 'session.manual.triaging' && t.target === 'session.manual.idle')).toHaveLength(1);
    const pairs = layout.transitions.map((t) => `${t.source}→${t.target}`);
    expect(new Set(pairs).size).toBe(pairs.length);
    expect(new Set(layout.transitions.map((t) => t.id)).size).toBe(layout.transitions.length);
  });

  it('labels an eventless transition with nothing, and keeps its event as `always`', () => {
    const eventless = transitionBetween(layout, 'session.running_tools', 'session.observing');
    expect(eventless.events).toEqual(['always']);
    expect(eventless.labels).toEqual([]);
    expect(transitionBetween(layout, 'session.calling_model', 'session.validating').labels).toEqual(['done: callModel']);
  });

  it('leaves the loop’s labels to the view: it places none', () => {
    expect(layout.transitions.every((t) => t.labelBox === null)).toBe(true);
    expect((given.edges ?? []).every((e) => (e.labels ?? []).length === 0)).toBe(true);
  });

  it('places every label of a workflow, an event a line, where none covers another or a phase', async () => {
    const workflow = await layOutStatechart(workflowGraphOf(refundDeskAgent.workflow!), (elkGraph) => new ELK().layout(elkGraph), measure, { placeLabels: true });
    const overlaps = (a: { x: number; y: number; width: number; height: number }, b: typeof a) => a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
    const boxes = workflow.transitions.map((t) => ({ id: t.id, labels: t.labels, box: t.labelBox }));

    expect(boxes.every((b) => b.box !== null)).toBe(true);
    const merged = transitionBetween(workflow, 'execute', 'report');
    expect(merged.labels).toEqual(['tool.refunds_issue', '1 failed refunds_issue']);
    expect(merged.labelBox).toMatchObject(labelSize(merged.labels, measure));
    const phases = workflow.states.filter((state) => !state.container);
    for (const [i, { id, box }] of boxes.entries()) {
      expect(inside(box!, { x: 0, y: 0, width: workflow.width, height: workflow.height }), `${id} inside the drawing`).toBe(true);
      for (const phase of phases) expect(overlaps(box!, phase), `${id} over ${phase.id}`).toBe(false);
      for (const other of boxes.slice(i + 1)) expect(overlaps(box!, other.box!), `${id} over ${other.id}`).toBe(false);
    }
  });

  it('routes every arrow and puts its label on its route', () => {
    for (const t of layout.transitions) {
      expect(t.path, t.id).toMatch(/^M[\d.-]+,[\d.-]+ /);
      const numbers = [...t.path.matchAll(/(-?[\d.]+),(-?[\d.]+)/g)].map((m) => ({ x: Number(m[1]), y: Number(m[2]) }));
      const xs = numbers.map((p) => p.x);
      const ys = numbers.map((p) => p.y);
      expect(t.labelAt.x, t.id).toBeGreaterThanOrEqual(Math.min(...xs) - 1);
      expect(t.labelAt.x, t.id).toBeLessThanOrEqual(Math.max(...xs) + 1);
      expect(t.labelAt.y, t.id).toBeGreaterThanOrEqual(Math.min(...ys) - 1);
      expect(t.labelAt.y, t.id).toBeLessThanOrEqual(Math.max(...ys) + 1);
    }
  });

  it('marks the initial state of the root and of each compound state, its arrow ending at that state', () => {
    // A parallel state has no initial state of its own: its regions do.
    expect(layout.initials.map((i) => i.parent).sort()).toEqual([
      'session', 'session.calling_model_beside_input_check.input', 'session.calling_model_beside_input_check.model', 'session.manual', 'session.validating',
    ]);
    const initialOf = {
      session: 'session.preparing', 'session.validating': 'session.validating.routing', 'session.manual': 'session.manual.idle',
      'session.calling_model_beside_input_check.model': 'session.calling_model_beside_input_check.model.calling',
      'session.calling_model_beside_input_check.input': 'session.calling_model_beside_input_check.input.checking',
    } as Record<string, string>;
    for (const marker of layout.initials) {
      const end = /(-?[\d.]+),(-?[\d.]+)$/.exec(marker.path);
      expect(end, marker.parent).not.toBeNull();
      const target = shapeOf(layout, initialOf[marker.parent]!);
      expect(inside({ x: Number(end![1]), y: Number(end![2]), width: 0, height: 0 }, target), `${marker.parent}'s initial arrow ends at its initial state`).toBe(true);
    }
  });

  it('gives ELK each arrow in the lowest state that holds both its ends, the root flattened away', () => {
    const edgesIn = (node: ElkNode): string[] => (node.edges ?? []).flatMap((e) => e.sources.map((s, i) => `${s}→${e.targets[i]}`));
    const child = (id: string) => given.children!.find((c) => c.id === id)!;

    expect(given.children!.some((c) => c.id === 'session')).toBe(false);
    expect(edgesIn(child('session.validating'))).toEqual(expect.arrayContaining([
      'session.validating.routing→session.validating.triaging_tool_calls',
      'session.validating.triaging_tool_calls→session.validating.triaged',
    ]));
    expect(edgesIn(child('session.validating'))).not.toContain('session.validating.routing→session.completed');
    expect(edgesIn(given)).toEqual(expect.arrayContaining(['session.validating.routing→session.completed', `${anyState}→session.cancelled`]));
    expect(edgesIn(child('session.manual'))).toContain('session.manual.idle→session.manual.triaging');
  });

  it('draws several top-level states side by side, with no frame and no “any state” box', async () => {
    const flat = await layOutStatechart(
      {
        nodes: [
          { id: 'a', key: 'a', parent: null, type: 'atomic', initial: false },
          { id: 'b', key: 'b', parent: null, type: 'atomic', initial: false },
        ],
        edges: [
          { id: 'a->b:go', source: 'a', target: 'b', event: 'go' },
          { id: 'a->missing:go', source: 'a', target: 'missing', event: 'go' },
        ],
      },
      (elkGraph) => new ELK().layout(elkGraph),
      measure,
    );

    expect(flat.states.map((s) => [s.id, s.root, s.container])).toEqual([['a', false, false], ['b', false, false]]);
    expect(flat.anyState).toBeNull();
    expect(flat.transitions.map((t) => [t.source, t.target, t.labels])).toEqual([['a', 'b', ['go']]]);
  });
});
