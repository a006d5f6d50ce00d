import { delegateToolName } from '../../agents/defineAgent.ts';
import type { AlertBody } from '../../transport/messages.ts';
import type { WireNames } from '../../transport/subjects.ts';

/**
 * Why discovery refuses a pool member's advertisement of a tool. The first three are about the
 * address alone and hold for every round; the last compares the member with the definition the
 * catalog already holds.
 */
export const CatalogConflictReason = {
  /** The tool's name is not `<domain>_…` of the pool's own domain: a pool serves only its domain's tools. */
  foreignDomain: 'foreign_domain',
  /** `delegate_<agent>` advertised by anything but the specialist pool of that agent, or a specialist pool advertising anything else. */
  notTheSpecialist: 'not_the_specialist',
  /** The service name or the endpoint's subject is not the one the domain's (or agent's) pool has in this namespace. */
  wrongAddress: 'wrong_address',
  /** A member of the right pool advertising another definition (schema, description, flags, timeout, …) than the one in use. */
  definitionDiffers: 'definition_differs',
} as const;
export type CatalogConflictReason = (typeof CatalogConflictReason)[keyof typeof CatalogConflictReason];

/** One pool member kept from serving one tool, as discovery reports it (log, diagnostics, alert). */
export interface CatalogConflict {
  readonly tool: string;
  readonly reason: CatalogConflictReason;
  /** The service instance id of the member refused. */
  readonly instance: string;
  /** Its service name and the domain it claims. */
  readonly service: string;
  readonly domain: string;
  /** For people: what was refused and why, in a sentence. */
  readonly detail: string;
}

/** What one pool member says about itself and one of its endpoints in its `$SRV.INFO` answer. */
export interface Advertisement {
  readonly instance: string;
  readonly service: string;
  /** The pool's `troupe.domain` metadata. */
  readonly domain: string;
  /** The pool's `troupe.specialist` metadata: the agent a specialist pool serves. */
  readonly specialist: string | undefined;
  readonly tool: string;
  readonly subject: string;
  readonly metadata: Readonly<Record<string, string>>;
}

/**
 * The address rule, which needs no history: a tool named `<domain>_…` may be served only by the
 * pool of that domain (service `<ns>-<domain>`, subject `<ns>.tools.<domain>.<tool>`), and
 * `delegate_<agent>` only by that agent's specialist pool (service `<ns>-agent-<agent>`, subject
 * `<ns>.agents.<agent>.delegate`), which serves nothing else. The name decides the owner, so no
 * pool can take over another domain's tool however early it answers. Undefined when it complies.
 */
export function addressConflict(names: WireNames, ad: Advertisement): CatalogConflict | undefined {
  const conflict = (reason: CatalogConflictReason, why: string): CatalogConflict => ({
    tool: ad.tool, reason, instance: ad.instance, service: ad.service, domain: ad.domain,
    detail: `Pool member ${ad.instance} (service ${ad.service}, domain ${ad.domain}) advertises ${ad.tool}, which it may not serve: ${why}. It gets no calls for it.`,
  });
  const prefix = ad.tool.includes('_') ? ad.tool.slice(0, ad.tool.indexOf('_')) : undefined;
  if (ad.specialist !== undefined || prefix === 'delegate') {
    const agent = ad.specialist;
    if (agent === undefined || ad.domain !== 'delegate' || ad.tool !== delegateToolName(agent)) {
      return conflict(CatalogConflictReason.notTheSpecialist, agent === undefined
        ? `delegate_* tools are served only by the specialist pool of their agent, and this pool serves no agent`
        : `the specialist pool of ${agent} serves ${delegateToolName(agent)} only`);
    }
    if (ad.service !== names.services.specialist(agent) || ad.subject !== names.subjects.delegation(agent)) {
      return conflict(CatalogConflictReason.wrongAddress, `${agent}'s specialist pool is service ${names.services.specialist(agent)} on ${names.subjects.delegation(agent)}, not ${ad.service} on ${ad.subject}`);
    }
    return undefined;
  }
  if (prefix !== ad.domain) {
    return conflict(CatalogConflictReason.foreignDomain, `a pool serves only tools named ${ad.domain}_…${prefix ? `, and ${ad.tool} belongs to domain ${prefix}` : ''}`);
  }
  if (ad.service !== names.services.pool(ad.domain) || ad.subject !== names.subjects.tool(ad.domain, ad.tool)) {
    return conflict(CatalogConflictReason.wrongAddress, `the ${ad.domain} pool is service ${names.services.pool(ad.domain)} on ${names.subjects.tool(ad.domain, ad.tool)}, not ${ad.service} on ${ad.subject}`);
  }
  return undefined;
}

/** The tool's definition as a member advertises it (every endpoint metadata key), comparable as a string. */
export function definitionOf(ad: Advertisement): string {
  return JSON.stringify(Object.entries(ad.metadata).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/**
 * The definition to establish for a tool the catalog does not hold yet, among members that
 * disagree: the one most members advertise, then the one of the member with the smallest instance
 * id. Every orchestrator that sees the same members picks the same one, whatever order they answer in.
 */
export function pickDefinition(ads: readonly Advertisement[]): string | undefined {
  const members = new Map<string, string[]>();
  for (const ad of ads) members.set(definitionOf(ad), [...(members.get(definitionOf(ad)) ?? []), ad.instance]);
  const smallest = (ids: string[]) => ids.reduce((a, b) => (b < a ? b : a));
  return [...members].sort(([, a], [, b]) => b.length - a.length || (smallest(a) < smallest(b) ? -1 : 1))[0]?.[0];
}

/** The conflict of a member of the right pool whose definition is not the one in use; `keys` are the metadata keys that differ. */
export function definitionConflict(ad: Advertisement, established: Readonly<Record<string, string>>): CatalogConflict {
  const keys = [...new Set([...Object.keys(established), ...Object.keys(ad.metadata)])].filter((k) => established[k] !== ad.metadata[k]).sort();
  return {
    tool: ad.tool, reason: CatalogConflictReason.definitionDiffers, instance: ad.instance, service: ad.service, domain: ad.domain,
    detail: `Pool member ${ad.instance} of ${ad.service} advertises another definition of ${ad.tool} than the one in use (${keys.join(', ')} differ${keys.length === 1 ? 's' : ''}); the first definition is kept. During a rolling upgrade this clears once the old members are gone; otherwise one member is misconfigured or not what it claims.`,
  };
}

/** The `tool_conflict` alert of a conflict: one member refused (value 1 over threshold 0), the tool as its subject. */
export function conflictAlert(conflict: CatalogConflict, at: Date): AlertBody {
  return { type: 'alert.raised', kind: 'tool_conflict', subject: conflict.tool, value: 1, threshold: 0, detail: conflict.detail, at: at.toISOString() };
}
