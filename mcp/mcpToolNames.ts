import { createHash } from 'node:crypto';
import { ToolDefinitionError } from '../tools/defineTool.ts';

/** Both directions of the name mapping of one MCP server's tools, for routing calls, logs and `troupe` output. */
export interface McpToolNames {
  /** MCP tool name → the Troupe tool name it is served as. */
  readonly troupeNameOf: ReadonlyMap<string, string>;
  /** Troupe tool name → the MCP tool name a call goes to. */
  readonly mcpNameOf: ReadonlyMap<string, string>;
}

// defineTool's rule: `<domain>_<action>`, the domain being the part before the first underscore.
const domainPattern = /^[a-z][a-z0-9]*$/;
const maxToolNameLength = 64;
// A longer domain would leave too little room to tell tools apart once names are cut and suffixed.
const maxDomainLength = 32;
const hashLength = 6;

/**
 * Names each MCP tool `<domain>_<action>`, a valid Troupe (and OpenAI function) name: camelCase
 * becomes snake_case, accents are dropped, anything else outside `[a-z0-9]` becomes `_`, and runs of
 * `_` collapse. A name cut to fit 64 characters, or left empty (say, all CJK), ends in a short hash of
 * the MCP name; when several MCP names come out the same, the one already spelt that way keeps it
 * and the others end in a hash of their MCP name. The result depends only on the set of names,
 * never on the order the server listed them in, and no two MCP names share a Troupe name.
 *
 * Throws {@link ToolDefinitionError} for a domain that cannot prefix a tool name (it is
 * configuration, not a server's doing). Duplicate MCP names are mapped once.
 */
export function mcpToolNames(domain: string, mcpNames: Iterable<string>): McpToolNames {
  if (!domainPattern.test(domain) || domain.length > maxDomainLength) {
    throw new ToolDefinitionError(
      `"${domain}" cannot prefix MCP tool names: a domain is a lower-case letter followed by letters and digits (no "-" or "_"), at most ${maxDomainLength} characters.`,
    );
  }
  const maxAction = maxToolNameLength - domain.length - 1;
  // Sorted, so that which member of a collision group gets which name never depends on listing order.
  const names = [...new Set(mcpNames)].sort();
  const actions = new Map(names.map((name) => [name, snakeCaseOf(name)]));
  const spellings = new Map<string, number>();
  for (const action of actions.values()) spellings.set(action, (spellings.get(action) ?? 0) + 1);

  const troupeNameOf = new Map<string, string>();
  const taken = new Set<string>();
  const hashed: string[] = [];
  for (const name of names) {
    const action = actions.get(name) ?? '';
    const plain = action !== '' && action.length <= maxAction && (spellings.get(action) === 1 || action === name);
    if (!plain) {
      hashed.push(name);
      continue;
    }
    troupeNameOf.set(name, `${domain}_${action}`);
    taken.add(`${domain}_${action}`);
  }
  for (const name of hashed) {
    const digest = createHash('sha256').update(name).digest('hex');
    // Six hex digits tell apart any realistic set of tools; a clash (or a plain name that happens to
    // look hashed) gets a longer hash, still a function of the names alone.
    for (let length = hashLength; ; length += 2) {
      const candidate = `${domain}_${suffixed(actions.get(name) ?? '', digest.slice(0, length), maxAction)}`;
      if (!taken.has(candidate) || length >= Math.min(digest.length, maxAction)) {
        troupeNameOf.set(name, candidate);
        taken.add(candidate);
        break;
      }
    }
  }
  return { troupeNameOf, mcpNameOf: new Map([...troupeNameOf].map(([mcp, troupe]) => [troupe, mcp])) };
}

/** `getHTTPStatus-v2.json` → `get_http_status_v2_json`; empty when nothing of the name is Latin or digits. */
function snakeCaseOf(name: string): string {
  return name
    .normalize('NFKD')
    .replace(/\p{M}/gu, '')
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1_$2')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '');
}

/** The action cut to leave room for `_<hash>`; a name with nothing usable left is a `tool`. */
function suffixed(action: string, hash: string, maxAction: number): string {
  const stem = (action || 'tool').slice(0, Math.max(0, maxAction - hash.length - 1)).replace(/_+$/, '');
  return stem ? `${stem}_${hash}` : hash.slice(0, maxAction);
}
