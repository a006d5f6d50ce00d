import type { StatechartGraph } from '../../consoleApi.ts';
import { readStatechart } from './api.ts';
import { layOutStatechart, type StatechartLayout } from './statechartLayout.ts';
import { measureText } from './textMeasure.ts';

/** The graph as the console sent it, and its layout. */
export interface LaidOutStatechart {
  graph: StatechartGraph;
  layout: StatechartLayout;
}

let pending: Promise<LaidOutStatechart> | null = null;
const workflows = new Map<string, Promise<LaidOutStatechart>>();
// Each agent has one workflow; a console that has shown many keeps the latest few.
const workflowsKept = 8;

/** elkjs, loaded on first use, so the sessions list never waits for it. */
const loadElk = () => import('elkjs/lib/elk.bundled.js');

async function layOut(graph: StatechartGraph, options: { placeLabels?: boolean } = {}): Promise<LaidOutStatechart> {
  const { default: ELK } = await loadElk();
  const elk = new ELK();
  const layout = await layOutStatechart(graph, (root) => elk.layout(root), measureText, options);
  return { graph, layout };
}

/**
 * The session statechart, read and laid out once per page load (every session runs the same
 * machine). A failure is not cached: the next session page tries again.
 */
export function loadStatechart(): Promise<LaidOutStatechart> {
  // The graph and elkjs fetched at once.
  pending ??= Promise.all([readStatechart(), loadElk()]).then(([graph]) => layOut(graph)).catch((error: unknown) => {
    pending = null;
    throw error;
  });
  return pending;
}

/**
 * An agent's workflow (from a session's detail), laid out once per page load however often the
 * detail changes: it is keyed by the graph itself, which the sessions of one agent share.
 */
export function loadWorkflowChart(graph: StatechartGraph): Promise<LaidOutStatechart> {
  const key = JSON.stringify(graph);
  let laidOut = workflows.get(key);
  if (!laidOut) {
    // A workflow has few phases: room for every label, where the loop's would triple its width.
    laidOut = layOut(graph, { placeLabels: true }).catch((error: unknown) => {
      workflows.delete(key);
      throw error;
    });
    workflows.set(key, laidOut);
    for (const old of [...workflows.keys()].slice(0, Math.max(0, workflows.size - workflowsKept))) workflows.delete(old);
  }
  return laidOut;
}
