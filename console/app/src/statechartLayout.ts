import type { ElkExtendedEdge, ElkNode, ElkPoint } from 'elkjs/lib/elk-api.js';
import type { StatechartGraph } from '../../consoleApi.ts';
import { isEventless, transitionLabel } from './transitionLabel.ts';

type GraphNode = StatechartGraph['nodes'][number];

/** One state placed on the drawing, in the drawing's coordinates. */
export interface StateShape {
  id: string;
  key: string;
  type: GraphNode['type'];
  /** Has children: drawn as a container with its key at the top. */
  container: boolean;
  /** The machine's root: drawn as the frame around everything. */
  root: boolean;
  x: number;
  y: number;
  width: number;
  height: number;
}

/** One arrow: every transition between the same two states, merged. */
export interface TransitionShape {
  id: string;
  /** A state's id, or `anyState` for a transition of the root (taken from whatever state is active). */
  source: string;
  target: string;
  /** SVG path data, from the source's border to the target's. */
  path: string;
  /** The events as shown (shortened), without eventless ones; joined, the arrow's label. */
  labels: string[];
  /** The events as the graph names them (`always` for an eventless transition). */
  events: string[];
  /** Where the label goes when shown: the middle of the route's longest segment. */
  labelAt: ElkPoint;
  /** Where the layout placed the label, its events a line each, when it placed labels (`placeLabels`); null otherwise, or for an arrow without one. */
  labelBox: { x: number; y: number; width: number; height: number } | null;
}

/** The dot that marks a compound state's initial child, and its arrow. */
export interface InitialMarker {
  parent: string;
  x: number;
  y: number;
  path: string;
}

/** The statechart placed: everything the view draws, in one coordinate space of `width` × `height`. */
export interface StatechartLayout {
  width: number;
  height: number;
  states: StateShape[];
  transitions: TransitionShape[];
  initials: InitialMarker[];
  /** The box transitions of the root come from, labelled "any state"; null when the root has none. */
  anyState: { x: number; y: number; width: number; height: number } | null;
}

/** Measures a line of text as the drawing will render it, in pixels. */
export type TextMeasure = (text: string) => number;

/** The box of an arrow's label, a line each: set at 11px against the states' 12px (styles.css), with a little room around. */
export const labelSize = (lines: readonly string[], measure: TextMeasure) => ({
  width: Math.max(0, ...lines.map(measure)) * (11 / 12) + 8,
  height: labelLineHeight * Math.max(1, lines.length) + 2,
});
/** The distance between two lines of a label. */
export const labelLineHeight = 13;

/** Whatever lays an ELK graph out: elkjs's `ELK#layout`. Injected so the page loads elkjs lazily. */
export type ElkLayout = (graph: ElkNode) => Promise<ElkNode>;

/** The id of the "any state" box, which stands for the root in transitions of the root. */
export const anyState = '__any';
const stateHeight = 30;
const initialSize = 8;
const initialPrefix = '__initial:';
const framePadding = { top: 30, side: 14 };

/**
 * Lays the statechart out once, with ELK's layered algorithm over the whole hierarchy
 * (`INCLUDE_CHILDREN`), left to right, so arrows may cross container borders.
 *
 * Choices that keep it readable: the root is not given to ELK as a container (its transitions,
 * the ones any state takes, such as `cancel`, come from one "any state" box instead, and a frame
 * is drawn around the result), which lets the cycle breaker follow the machine's order so the
 * initial state comes first; transitions between the same two states are merged into one arrow;
 * labels are not laid out (a label node per arrow made the loop's drawing three times as wide),
 * the view shows them on demand. A small chart (a workflow's phases) can afford them:
 * `placeLabels` has ELK place every label, where none covers another or a state.
 */
export async function layOutStatechart(graph: StatechartGraph, layout: ElkLayout, measure: TextMeasure, options: { placeLabels?: boolean } = {}): Promise<StatechartLayout> {
  const byId = new Map(graph.nodes.map((node) => [node.id, node]));
  const children = new Map<string | null, GraphNode[]>();
  for (const node of graph.nodes) {
    const parent = node.parent !== null && byId.has(node.parent) ? node.parent : null;
    children.set(parent, [...(children.get(parent) ?? []), node]);
  }
  const tops = children.get(null) ?? [];
  // One root with children (XState's case): flatten it.
  const root = tops.length === 1 && (children.get(tops[0]!.id) ?? []).length > 0 ? tops[0]! : null;
  const topLevel = root ? (children.get(root.id) ?? []) : tops;
  const parentOf = (id: string): string | null => {
    const parent = byId.get(id)?.parent ?? null;
    return parent === null || parent === root?.id || !byId.has(parent) ? null : parent;
  };

  const merged = new Map<string, { source: string; target: string; events: string[] }>();
  for (const edge of graph.edges) {
    if (!byId.has(edge.source) || !byId.has(edge.target)) continue;
    const source = edge.source === root?.id ? anyState : edge.source;
    const target = edge.target === root?.id ? anyState : edge.target;
    const key = `${source}\u0000${target}`;
    const entry = merged.get(key) ?? { source, target, events: [] };
    if (!entry.events.includes(edge.event)) entry.events.push(edge.event);
    merged.set(key, entry);
  }
  const transitions = [...merged.values()].map((entry, index) => ({
    id: `t${index}`,
    ...entry,
    labels: [...new Set(entry.events.filter((event) => !isEventless(event)).map(transitionLabel))],
  }));
  const usesAnyState = transitions.some((t) => t.source === anyState || t.target === anyState);

  const edgesByContainer = new Map<string | null, ElkExtendedEdge[]>();
  const addEdge = (container: string | null, edge: ElkExtendedEdge) => edgesByContainer.set(container, [...(edgesByContainer.get(container) ?? []), edge]);
  for (const transition of transitions) {
    // A placed label has an event a line: narrower, which keeps the drawing narrow.
    const labels = options.placeLabels && transition.labels.length > 0
      ? [{ id: `${transition.id}:label`, text: transition.labels.join('\n'), ...labelSize(transition.labels, measure) }]
      : [];
    addEdge(edgeContainer(transition.source, transition.target, parentOf), { id: transition.id, sources: [transition.source], targets: [transition.target], labels });
  }

  const initialMarker = (parent: string, kids: GraphNode[]): ElkNode[] => {
    const initial = kids.find((kid) => kid.initial) ?? (parent === root?.id ? undefined : undefined);
    if (!initial) return [];
    addEdge(parent === root?.id ? null : parent, { id: `${initialPrefix}${parent}:edge`, sources: [initialPrefix + parent], targets: [initial.id] });
    return [{ id: initialPrefix + parent, width: initialSize, height: initialSize }];
  };
  const elkNode = (node: GraphNode): ElkNode => {
    const kids = children.get(node.id) ?? [];
    if (kids.length === 0) return { id: node.id, width: Math.max(56, measure(node.key) + 24), height: stateHeight };
    return {
      id: node.id,
      // The key is drawn above the children: room for it, and at least its width.
      layoutOptions: {
        'elk.padding': `[top=${framePadding.top},left=${framePadding.side},bottom=${framePadding.side},right=${framePadding.side}]`,
        'elk.nodeSize.constraints': 'MINIMUM_SIZE',
        'elk.nodeSize.minimum': `(${measure(node.key) + 28},40)`,
      },
      children: [...initialMarker(node.id, kids), ...kids.map(elkNode)],
    };
  };

  const graphRoot: ElkNode = {
    id: '__graph',
    layoutOptions: {
      'elk.algorithm': 'layered',
      'elk.direction': 'RIGHT',
      'elk.hierarchyHandling': 'INCLUDE_CHILDREN',
      'elk.edgeRouting': 'ORTHOGONAL',
      'elk.layered.spacing.nodeNodeBetweenLayers': '26',
      'elk.layered.spacing.edgeNodeBetweenLayers': '10',
      'elk.spacing.nodeNode': '16',
      'elk.spacing.edgeNode': '10',
      'elk.spacing.edgeEdge': '6',
      // The machine's own order: the initial state first, back edges the ones that return to it.
      'elk.layered.cycleBreaking.strategy': 'MODEL_ORDER',
      'elk.layered.considerModelOrder.strategy': 'NODES_AND_EDGES',
      'elk.layered.nodePlacement.strategy': 'NETWORK_SIMPLEX',
      'elk.json.shapeCoords': 'ROOT',
      'elk.json.edgeCoords': 'ROOT',
      'elk.edgeLabels.placement': 'CENTER',
      'elk.padding': root
        ? `[top=${framePadding.top},left=${framePadding.side},bottom=${framePadding.side},right=${framePadding.side}]`
        : '[top=4,left=4,bottom=4,right=4]',
    },
    children: [
      ...(usesAnyState ? [{ id: anyState, width: measure('any state') + 24, height: stateHeight }] : []),
      ...(root ? initialMarker(root.id, topLevel) : []),
      ...topLevel.map(elkNode),
    ],
  };
  const attachEdges = (node: ElkNode, container: string | null) => {
    node.edges = edgesByContainer.get(container) ?? [];
    for (const child of node.children ?? []) if (byId.has(child.id)) attachEdges(child, child.id);
  };
  attachEdges(graphRoot, null);

  const placed = await layout(graphRoot);
  return readLayout(placed, byId, root, transitions);
}

/** Where ELK wants an edge: inside the outer end when one end contains the other, else in the two ends' lowest common ancestor (null: the top level). */
function edgeContainer(source: string, target: string, parentOf: (id: string) => string | null): string | null {
  const ancestors = (id: string): string[] => {
    const chain: string[] = [];
    for (let parent = parentOf(id); parent !== null; parent = parentOf(parent)) chain.push(parent);
    return chain;
  };
  const sourceAncestors = ancestors(source);
  const targetAncestors = ancestors(target);
  if (source === target) return sourceAncestors[0] ?? null;
  if (targetAncestors.includes(source)) return source;
  if (sourceAncestors.includes(target)) return target;
  return sourceAncestors.find((id) => targetAncestors.includes(id)) ?? null;
}

function readLayout(
  placed: ElkNode,
  byId: Map<string, GraphNode>,
  root: GraphNode | null,
  transitions: Array<{ id: string; source: string; target: string; events: string[]; labels: string[] }>,
): StatechartLayout {
  const states: StateShape[] = [];
  const initials: InitialMarker[] = [];
  const edges = new Map<string, ElkExtendedEdge>();
  const initialDots = new Map<string, ElkNode>();
  let anyStateBox: StatechartLayout['anyState'] = null;
  const visit = (node: ElkNode) => {
    for (const edge of node.edges ?? []) edges.set(edge.id, edge);
    for (const child of node.children ?? []) {
      const state = byId.get(child.id);
      const box = { x: child.x ?? 0, y: child.y ?? 0, width: child.width ?? 0, height: child.height ?? 0 };
      if (state) states.push({ id: state.id, key: state.key, type: state.type, container: (child.children ?? []).length > 0, root: false, ...box });
      else if (child.id.startsWith(initialPrefix)) initialDots.set(child.id, child);
      else if (child.id === anyState) anyStateBox = box;
      visit(child);
    }
  };
  visit(placed);
  const width = placed.width ?? 0;
  const height = placed.height ?? 0;
  if (root) states.unshift({ id: root.id, key: root.key, type: root.type, container: true, root: true, x: 0, y: 0, width, height });
  for (const [id, dot] of initialDots) {
    const edge = edges.get(`${id}:edge`);
    initials.push({ parent: id.slice(initialPrefix.length), x: (dot.x ?? 0) + initialSize / 2, y: (dot.y ?? 0) + initialSize / 2, path: edge ? edgePath(edge) : '' });
  }
  const shapes = transitions.map((transition): TransitionShape => {
    const edge = edges.get(transition.id);
    const points = edge ? edgePoints(edge) : [];
    const label = edge?.labels?.[0];
    const labelBox = label?.x !== undefined && label.y !== undefined ? { x: label.x, y: label.y, width: label.width ?? 0, height: label.height ?? 0 } : null;
    return { ...transition, path: edge ? edgePath(edge) : '', labelAt: longestSegmentMiddle(points), labelBox };
  });
  return { width, height, states, transitions: shapes, initials, anyState: anyStateBox };
}

function edgePoints(edge: ElkExtendedEdge): ElkPoint[] {
  return (edge.sections ?? []).flatMap((section) => [section.startPoint, ...(section.bendPoints ?? []), section.endPoint]);
}

function longestSegmentMiddle(points: ElkPoint[]): ElkPoint {
  let best = { x: points[0]?.x ?? 0, y: points[0]?.y ?? 0 };
  let longest = -1;
  for (let i = 1; i < points.length; i++) {
    const a = points[i - 1]!;
    const b = points[i]!;
    // Horizontal segments first: a label reads along them.
    const length = distance(a, b) * (a.y === b.y ? 2 : 1);
    if (length > longest) {
      longest = length;
      best = { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 };
    }
  }
  return best;
}

/** An ELK edge's route as SVG path data, its bends slightly rounded. */
function edgePath(edge: ElkExtendedEdge): string {
  return (edge.sections ?? []).map((section) => roundedPolyline([section.startPoint, ...(section.bendPoints ?? []), section.endPoint])).join(' ');
}

function roundedPolyline(points: ElkPoint[]): string {
  const radius = 5;
  const first = points[0];
  if (!first) return '';
  let path = `M${round(first.x)},${round(first.y)}`;
  for (let i = 1; i < points.length; i++) {
    const point = points[i]!;
    const next = points[i + 1];
    if (!next) {
      path += ` L${round(point.x)},${round(point.y)}`;
      break;
    }
    const previous = points[i - 1]!;
    const before = towards(point, previous, Math.min(radius, distance(previous, point) / 2));
    const after = towards(point, next, Math.min(radius, distance(point, next) / 2));
    path += ` L${before.x},${before.y} Q${round(point.x)},${round(point.y)} ${after.x},${after.y}`;
  }
  return path;
}

const distance = (a: ElkPoint, b: ElkPoint) => Math.hypot(a.x - b.x, a.y - b.y);

function towards(from: ElkPoint, to: ElkPoint, length: number): ElkPoint {
  const d = distance(from, to) || 1;
  return { x: round(from.x + ((to.x - from.x) * length) / d), y: round(from.y + ((to.y - from.y) * length) / d) };
}

const round = (n: number) => Math.round(n * 10) / 10;
