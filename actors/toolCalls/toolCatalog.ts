import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import * as z from 'zod';
import { silentLogger } from '../../observability/logger.ts';
import { RetryPolicy } from '../../machines/retryPolicy.ts';
import { maxTimerDelayMs } from '../../machines/timerDelay.ts';
import { defaultToolTimeoutMs } from '../../tools/defineTool.ts';
import { InfoResponse, toolMetadataKeys, toolPoolKind } from '../../transport/serviceProtocol.ts';
import { isNoResponders } from '../../transport/natsConnection.ts';
import { defaultNamespace, serviceDiscoverySubject, wireNames, type WireNames } from '../../transport/subjects.ts';
import { decodeWireMessage } from '../../transport/wireMessage.ts';
import { addressConflict, definitionConflict, definitionOf, pickDefinition, type Advertisement, type CatalogConflict } from './catalogConflicts.ts';

const missedRoundsBeforeRemoval = 2;

// How long a tool whose pool stopped answering is remembered (see `departed`).
const departedMemoryMs = 10 * 60 * 1000;

/** The definition in use for a tool: its advertised metadata, and that as a comparable key. */
interface HeldDefinition {
  readonly key: string;
  readonly metadata: Readonly<Record<string, string>>;
}

/** A tool as the orchestrator knows it: discovered from a running pool, never from a hand-kept list. */
export interface CatalogTool {
  readonly name: string;
  readonly domain: string;
  readonly description: string;
  readonly subject: string;
  /** The JSON Schema the pool advertised, sent to the model as the function's parameters. */
  readonly inputSchema: Record<string, unknown>;
  /** Built from `inputSchema`: the orchestrator's check before a call goes on the wire. */
  readonly validator: z.ZodType;
  readonly timeoutMs: number;
  readonly sideEffects: boolean;
  readonly retry: RetryPolicy;
  readonly fallbacks: string[];
  readonly requiresApproval: boolean;
  readonly undoable: boolean;
  /** The agent behind the tool when it delegates to a specialist (`delegate_<agent>`); null for plain tools. */
  readonly specialist: string | null;
  /** Service instance ids of the pool members that answered the latest discovery round. */
  readonly instances: ReadonlySet<string>;
}

export interface ToolCatalogOptions {
  nats: NatsConnection;
  /** Discover only the pools of this deployment (`TROUPE_NAMESPACE`); `troupe` when absent. */
  namespace?: string;
  logger?: Logger;
  /** How often to ask every pool for its tools; announcements refresh sooner. */
  refreshIntervalMs?: number;
  /** How long a discovery round waits for more answers after the last one. */
  quietPeriodMs?: number;
  /**
   * How long a tool whose members stopped answering stays (besides two rounds in a row): a busy
   * member answers after the round's quiet period, and a pool losing one member while its others
   * are slow must not vanish from sessions mid-call. 10 s by default.
   */
  removalGraceMs?: number;
  /**
   * Told each pool member kept from serving a tool, the first round it shows up in (again only
   * after a round without it); the session runtime raises a `tool_conflict` alert. Logged either way.
   */
  onConflict?: (conflict: CatalogConflict) => void;
}

/**
 * The live list of tools, built from the NATS service protocol: every discovery round sends one
 * `$SRV.INFO` and gathers the answers of all pool members of the catalog's namespace (`$SRV` is
 * global, so pools of other deployments answer too and are skipped by their metadata). Rounds run
 * at start, on an interval, when a pool announces itself, and on demand (a model naming a tool
 * the catalog has not seen).
 *
 * No pool takes over a tool another serves. The tool's name decides its owner (`<domain>_…` only
 * from that domain's pool, `delegate_<agent>` only from that agent's specialist pool, each at the
 * service name and subject its namespace gives it), and the first definition established for a
 * tool stays while any member advertises it: a member advertising another is refused, and only
 * once every member of the one in use is gone may another be established. Each refusal is
 * logged, kept in {@link conflicts} and handed to `onConflict`; calls go only to the subject the
 * owner has, never to one an advertisement names.
 */
export class ToolCatalog {
  readonly #nc: NatsConnection;
  readonly #names: WireNames;
  readonly #logger: Logger;
  readonly #refreshIntervalMs: number;
  readonly #quietPeriodMs: number;
  readonly #validators = new Map<string, z.ZodType>();
  readonly #onConflict: ((conflict: CatalogConflict) => void) | undefined;
  #tools = new Map<string, CatalogTool>();
  readonly #definitions = new Map<string, HeldDefinition>();
  #conflicts: CatalogConflict[] = [];
  readonly #misses = new Map<string, { rounds: number; since: number }>();
  readonly #departed = new Map<string, { tool: CatalogTool; at: number }>();
  readonly #removalGraceMs: number;
  #timer: NodeJS.Timeout | undefined;
  #announcements: Subscription | undefined;
  #round: Promise<void> | undefined;
  #followUp: Promise<void> | undefined;

  constructor(options: ToolCatalogOptions) {
    this.#nc = options.nats;
    this.#names = wireNames(options.namespace);
    this.#logger = (options.logger ?? silentLogger()).child({ component: 'tool-catalog' });
    this.#refreshIntervalMs = options.refreshIntervalMs ?? 5_000;
    this.#quietPeriodMs = options.quietPeriodMs ?? 150;
    this.#removalGraceMs = options.removalGraceMs ?? 10_000;
    this.#onConflict = options.onConflict;
  }

  /** Runs the first discovery round and keeps the catalog fresh until {@link stop}. */
  async start(): Promise<void> {
    this.#announcements = this.#nc.subscribe(this.#names.subjects.poolAnnouncements, { callback: () => void this.refresh() });
    this.#timer = setInterval(() => void this.refresh(), this.#refreshIntervalMs);
    this.#timer.unref();
    await this.refresh();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#announcements?.unsubscribe();
  }

  get(name: string): CatalogTool | undefined {
    return this.#tools.get(name);
  }

  list(): CatalogTool[] {
    return [...this.#tools.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  /**
   * A tool no pool serves now that one served in the last ten minutes, as it was last listed: a
   * session that already used it (or a model that remembers it from an earlier turn) calls it and
   * waits for its pool as for any pool briefly down, instead of being told it does not exist.
   */
  departed(name: string): CatalogTool | undefined {
    const gone = this.#departed.get(name);
    if (!gone || this.#tools.has(name)) return undefined;
    if (Date.now() - gone.at > departedMemoryMs) {
      this.#departed.delete(name);
      return undefined;
    }
    return gone.tool;
  }

  /** The pool members the latest discovery round kept from serving a tool, and why: the catalog's diagnostics. */
  conflicts(): readonly CatalogConflict[] {
    return this.#conflicts;
  }

  /**
   * Resolves after a discovery round that started after this call. Callers during a round share
   * one follow-up round: a pool that announced itself while a round was under way may have missed
   * that round's request.
   */
  refresh(): Promise<void> {
    if (!this.#round) {
      this.#round = this.#discover().finally(() => (this.#round = undefined));
      return this.#round;
    }
    this.#followUp ??= this.#round.then(() => {
      this.#followUp = undefined;
      return this.refresh();
    });
    return this.#followUp;
  }

  /** Resolves once every named tool is served by at least one pool member, or rejects after `timeoutMs`. */
  async waitFor(names: string[], timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const missing = names.filter((n) => !this.#tools.has(n));
      if (missing.length === 0) return;
      if (Date.now() >= deadline) throw new Error(`No running pool serves ${missing.join(', ')} after ${timeoutMs} ms.`);
      await new Promise((r) => setTimeout(r, 100));
      await this.refresh();
    }
  }

  async #discover(): Promise<void> {
    const advertised = new Map<string, Advertisement[]>();
    const conflicts: CatalogConflict[] = [];
    try {
      const replies = await this.#nc.requestMany(serviceDiscoverySubject('INFO'), undefined, {
        strategy: 'stall',
        stall: this.#quietPeriodMs,
        maxWait: 2_000,
      });
      for await (const msg of replies) {
        const decoded = decodeWireMessage(InfoResponse, msg.data, 'A $SRV.INFO answer');
        if (!decoded.ok) {
          this.#logger.warn({ error: decoded.error }, 'ignoring a service that answers discovery with a malformed INFO');
          continue;
        }
        const info = decoded.value;
        if (info.metadata[toolMetadataKeys.kind] !== toolPoolKind) continue;
        // Pools from before namespaces existed carry none: they are of the default namespace, as their subjects are.
        if ((info.metadata[toolMetadataKeys.namespace] ?? defaultNamespace) !== this.#names.namespace) continue;
        const domain = info.metadata[toolMetadataKeys.domain] ?? info.name;
        for (const endpoint of info.endpoints) {
          // Undo endpoints serve rollbacks, not the model.
          if (endpoint.metadata?.[toolMetadataKeys.endpointKind] === 'undo') continue;
          const ad: Advertisement = {
            instance: info.id, service: info.name, domain, specialist: info.metadata[toolMetadataKeys.specialist],
            tool: endpoint.name, subject: endpoint.subject, metadata: endpoint.metadata ?? {},
          };
          const refused = addressConflict(this.#names, ad);
          if (refused) conflicts.push(refused);
          else advertised.set(ad.tool, [...(advertised.get(ad.tool) ?? []), ad]);
        }
      }
    } catch (error) {
      // No responders is an answer: no service of any kind is running, so no tool is available.
      if (!isNoResponders(error)) {
        // Any other failure keeps the previous catalog: better slightly stale than empty during a NATS blip.
        this.#logger.warn({ err: error }, 'tool discovery round failed; keeping the previous catalog');
        return;
      }
    }
    const previous = this.#tools;
    const before = new Set(previous.keys());
    const next = new Map<string, CatalogTool>();
    const refuseOthers = (ads: Advertisement[], definition: HeldDefinition) => {
      for (const ad of ads) if (definitionOf(ad) !== definition.key) conflicts.push(definitionConflict(ad, definition.metadata));
    };
    for (const name of new Set([...this.#tools.keys(), ...advertised.keys()])) {
      const ads = advertised.get(name) ?? [];
      const held = this.#tools.get(name);
      const definition = this.#definitions.get(name);
      // The definition in use stays while any member advertises it; members advertising another are refused.
      if (held && definition) {
        const members = ads.filter((ad) => definitionOf(ad) === definition.key);
        if (members.length > 0) {
          this.#misses.delete(name);
          next.set(name, { ...held, instances: new Set(members.map((ad) => ad.instance)) });
          refuseOthers(ads, definition);
          continue;
        }
        // A tool missing from one round may be a blip (a slow answer, a reconnect): it goes after two in a row, and not within the grace.
        const missed = this.#misses.get(name);
        const misses = { rounds: (missed?.rounds ?? 0) + 1, since: missed?.since ?? Date.now() };
        if (misses.rounds < missedRoundsBeforeRemoval || Date.now() - misses.since < this.#removalGraceMs) {
          this.#misses.set(name, misses);
          next.set(name, held);
          refuseOthers(ads, definition);
          continue;
        }
        // Its members are gone: a definition the remaining members agree on may be established below.
        this.#misses.delete(name);
        this.#definitions.delete(name);
      }
      const key = pickDefinition(ads);
      const first = ads.find((ad) => definitionOf(ad) === key);
      const tool = first ? this.#toCatalogTool(first) : undefined;
      if (!first || !tool) continue;
      const established: HeldDefinition = { key: definitionOf(first), metadata: first.metadata };
      this.#definitions.set(name, established);
      next.set(name, { ...tool, instances: new Set(ads.filter((ad) => definitionOf(ad) === key).map((ad) => ad.instance)) });
      refuseOthers(ads, established);
    }
    this.#tools = next;
    this.#report(conflicts);
    const added = [...next.keys()].filter((n) => !before.has(n));
    const removed = [...before].filter((n) => !next.has(n));
    const now = Date.now();
    for (const name of removed) {
      const tool = previous.get(name);
      if (tool) this.#departed.set(name, { tool, at: now });
    }
    for (const name of next.keys()) this.#departed.delete(name);
    if (added.length > 0 || removed.length > 0) this.#logger.info({ added, removed }, 'tool catalog changed');
  }

  /** Keeps the round's conflicts for {@link conflicts}; logs and hands on each one the first round it appears in. */
  #report(conflicts: CatalogConflict[]): void {
    const keyOf = (c: CatalogConflict) => `${c.reason}|${c.tool}|${c.instance}`;
    const seen = new Set(this.#conflicts.map(keyOf));
    this.#conflicts = conflicts;
    for (const conflict of conflicts) {
      if (seen.has(keyOf(conflict))) continue;
      seen.add(keyOf(conflict));
      this.#logger.warn({ conflict }, `tool conflict: ${conflict.detail}`);
      try {
        this.#onConflict?.(conflict);
      } catch (error) {
        this.#logger.error({ err: error, tool: conflict.tool }, 'could not report a tool conflict');
      }
    }
  }

  /** The tool as `ad` defines it; its address is the one {@link addressConflict} checked. */
  #toCatalogTool(ad: Advertisement): CatalogTool | undefined {
    const { tool: name, domain, subject, metadata } = ad;
    const rawSchema = metadata[toolMetadataKeys.inputSchema] ?? '{"type":"object"}';
    let inputSchema: Record<string, unknown>;
    try {
      inputSchema = JSON.parse(rawSchema) as Record<string, unknown>;
    } catch {
      this.#logger.warn({ tool: name }, 'ignoring a tool whose advertised input schema is not JSON');
      return undefined;
    }
    const timeoutMs = Number(metadata[toolMetadataKeys.timeoutMs] ?? defaultToolTimeoutMs);
    const retry = RetryPolicy.safeParse(parseJsonOr(metadata[toolMetadataKeys.retry], {}));
    const fallbacks = z.array(z.string()).safeParse(parseJsonOr(metadata[toolMetadataKeys.fallbacks], []));
    if (!retry.success || !fallbacks.success) this.#logger.warn({ tool: name }, 'ignoring a malformed advertised retry policy or fallback list');
    return {
      name,
      domain,
      description: metadata[toolMetadataKeys.description] ?? '',
      subject,
      inputSchema,
      validator: this.#validatorFor(name, rawSchema, inputSchema),
      // A pool of another version may advertise more than a timer can wait; the deadline sent must stay within it.
      timeoutMs: Number.isFinite(timeoutMs) && timeoutMs > 0 ? Math.min(timeoutMs, maxTimerDelayMs) : defaultToolTimeoutMs,
      sideEffects: metadata[toolMetadataKeys.sideEffects] === 'true',
      retry: retry.success ? retry.data : RetryPolicy.parse({}),
      fallbacks: fallbacks.success ? fallbacks.data : [],
      requiresApproval: metadata[toolMetadataKeys.requiresApproval] === 'true',
      undoable: metadata[toolMetadataKeys.undoable] === 'true',
      // Only a specialist pool passes the address rule with it, and then for its own delegate_<agent>.
      specialist: ad.specialist ?? null,
      instances: new Set(),
    };
  }

  #validatorFor(name: string, rawSchema: string, schema: Record<string, unknown>): z.ZodType {
    const cached = this.#validators.get(rawSchema);
    if (cached) return cached;
    let validator: z.ZodType;
    try {
      validator = z.fromJSONSchema(schema);
    } catch (error) {
      // The worker validates again with the tool's own zod schema, so nothing unchecked runs.
      this.#logger.warn({ tool: name, err: error }, 'cannot build a validator from the advertised schema; the worker alone will validate');
      validator = z.record(z.string(), z.unknown());
    }
    this.#validators.set(rawSchema, validator);
    return validator;
  }
}

function parseJsonOr(text: string | undefined, fallback: unknown): unknown {
  if (text === undefined) return fallback;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return Symbol('malformed');
  }
}
