/**
 * A trace as OTLP/JSON carries it (what Jaeger's query API v3 returns), turned into the tree of
 * spans `troupe trace` prints: names, services, durations, tokens and cost.
 */

interface OtlpValue { stringValue?: string; intValue?: string | number; doubleValue?: number; boolValue?: boolean; arrayValue?: { values?: OtlpValue[] } }
interface OtlpSpan {
  traceId?: string;
  spanId?: string;
  parentSpanId?: string;
  name?: string;
  startTimeUnixNano?: string | number;
  endTimeUnixNano?: string | number;
  attributes?: Array<{ key: string; value: OtlpValue }>;
  status?: { code?: number | string; message?: string };
}
interface OtlpTrace {
  resourceSpans?: Array<{ resource?: { attributes?: Array<{ key: string; value: OtlpValue }> }; scopeSpans?: Array<{ spans?: OtlpSpan[] }> }>;
}

/** One span of the tree, with what an operator looks for first. */
export interface TraceNode {
  spanId: string;
  name: string;
  service: string;
  startMs: number;
  durationMs: number;
  inputTokens?: number;
  outputTokens?: number;
  costUsd?: number;
  error?: string;
  children: TraceNode[];
}

const valueOf = (v: OtlpValue): unknown =>
  v.stringValue ?? (v.intValue !== undefined ? Number(v.intValue) : undefined) ?? v.doubleValue ?? v.boolValue ?? v.arrayValue?.values?.map(valueOf);

// OTLP/JSON ids are hex; some gateways send the protobuf bytes as base64. Both become hex here.
function hexId(id: string | undefined): string {
  if (!id) return '';
  if (/^[0-9a-f]+$/i.test(id)) return id.toLowerCase();
  return Buffer.from(id, 'base64').toString('hex');
}

/** The traces in a query API answer (`{ result: { resourceSpans } }`) or a plain OTLP export. */
export function traceTree(answer: unknown): TraceNode[] {
  const body = ((answer as { result?: OtlpTrace })?.result ?? answer) as OtlpTrace;
  const nodes = new Map<string, TraceNode & { parentId: string }>();
  for (const rs of body.resourceSpans ?? []) {
    const resource = Object.fromEntries((rs.resource?.attributes ?? []).map((a) => [a.key, valueOf(a.value)]));
    for (const ss of rs.scopeSpans ?? []) {
      for (const span of ss.spans ?? []) {
        const attributes = Object.fromEntries((span.attributes ?? []).map((a) => [a.key, valueOf(a.value)]));
        const start = Number(BigInt(span.startTimeUnixNano ?? 0) / 1000n) / 1000;
        const end = Number(BigInt(span.endTimeUnixNano ?? 0) / 1000n) / 1000;
        const failed = span.status?.code === 2 || span.status?.code === 'STATUS_CODE_ERROR';
        const number = (key: string) => (typeof attributes[key] === 'number' ? (attributes[key] as number) : undefined);
        const node = {
          spanId: hexId(span.spanId), parentId: hexId(span.parentSpanId), name: span.name ?? '(unnamed)', service: String(resource['service.name'] ?? '?'),
          startMs: start, durationMs: Math.max(0, end - start), children: [],
          ...(number('gen_ai.usage.input_tokens') !== undefined ? { inputTokens: number('gen_ai.usage.input_tokens') } : {}),
          ...(number('gen_ai.usage.output_tokens') !== undefined ? { outputTokens: number('gen_ai.usage.output_tokens') } : {}),
          ...(number('troupe.cost_usd') !== undefined ? { costUsd: number('troupe.cost_usd') } : {}),
          ...(failed ? { error: span.status?.message || String(attributes['error.type'] ?? 'error') } : {}),
        } as TraceNode & { parentId: string };
        nodes.set(node.spanId, node);
      }
    }
  }
  const roots: TraceNode[] = [];
  for (const node of nodes.values()) {
    const parent = nodes.get(node.parentId);
    if (parent) parent.children.push(node);
    else roots.push(node);
  }
  const byStart = (a: TraceNode, b: TraceNode) => a.startMs - b.startMs;
  const sort = (list: TraceNode[]) => {
    list.sort(byStart);
    for (const n of list) sort(n.children);
  };
  sort(roots);
  return roots;
}

/** The tree as lines: one span each, indented under its parent. */
export function describeTraceTree(roots: TraceNode[]): string[] {
  const lines: string[] = [];
  const walk = (node: TraceNode, depth: number) => {
    const parts = [`${'  '.repeat(depth)}${node.name}`, node.service, `${node.durationMs.toFixed(1)} ms`];
    if (node.inputTokens !== undefined || node.outputTokens !== undefined) parts.push(`${node.inputTokens ?? 0} in / ${node.outputTokens ?? 0} out`);
    if (node.costUsd !== undefined) parts.push(`$${node.costUsd.toFixed(6)}`);
    if (node.error) parts.push(`ERROR ${node.error}`);
    lines.push(parts.join(' · '));
    for (const child of node.children) walk(child, depth + 1);
  };
  for (const root of roots) walk(root, 0);
  return lines;
}
