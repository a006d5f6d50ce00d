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

/**
 * The session statechart, read and laid out once per page load (every session runs the same
 * machine). elkjs is loaded here, on first use, so the sessions list never waits for it. A
 * failure is not cached: the next session page tries again.
 */
export function loadStatechart(): Promise<LaidOutStatechart> {
  pending ??= (async () => {
    const [graph, { default: ELK }] = await Promise.all([readStatechart(), import('elkjs/lib/elk.bundled.js')]);
    const elk = new ELK();
    const layout = await layOutStatechart(graph, (root) => elk.layout(root), measureText);
    return { graph, layout };
  })().catch((error: unknown) => {
    pending = null;
    throw error;
  });
  return pending;
}
