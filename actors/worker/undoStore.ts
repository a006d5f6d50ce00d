import { createHash } from 'node:crypto';
import { Objm, type ObjectStore } from '@nats-io/obj';
import { nanos, type NatsConnection } from '@nats-io/transport-node';
import * as z from 'zod';
import { ToolError, ToolFailureCode } from '../../tools/toolFailure.ts';
import { jetStreamReplicas } from '../../transport/jetStreamReplicas.ts';
import type { WireNames } from '../../transport/subjects.ts';

/**
 * The largest capture a pool keeps for one call, as JSON: 8 MiB. A capture over it refuses the call
 * before its handler runs, so nothing is changed that could not be put back.
 */
export const maxUndoBytes = 8 * 1024 * 1024;

/** How long captures are kept when `open` is given no `ttlMs`: a rollback after that finds nothing to restore from. */
export const defaultUndoTtlMs = 7 * 24 * 60 * 60 * 1000;

/**
 * What a reply (and so the session's ledger and checkpoint) carries for an undoable call instead of
 * its capture: a capture can be as large as the file it saved, far more than a NATS message. The
 * orchestrator keeps it as it is and sends it back in the undo request; only the pool reads it.
 * The hash says which capture the session saw: the pool restores from that one or from none.
 */
export const StoredUndo = z.object({
  kind: z.literal('troupe.undo.stored'),
  bytes: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
});
export type StoredUndo = z.infer<typeof StoredUndo>;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

// Session ids are subject tokens (letters, digits, "-" and "_"), so "/" cannot blur the two parts.
const objectName = (sessionId: string, callId: string) => `${sessionId}/${callId}`;

/**
 * Captures of one domain's undoable calls, kept by the pool in the JetStream object store
 * `<namespace>_undo_<domain>` under session and call id. The pool writes a capture before the
 * call's handler runs and reads it back for an undo request; nobody else needs it.
 */
export class UndoStore {
  readonly #store: ObjectStore;

  private constructor(store: ObjectStore) {
    this.#store = store;
  }

  /** Opens the domain's store, creating it (with `ttlMs` as its objects' age limit) if missing. Throws when JetStream is not available. */
  static async open(nc: NatsConnection, names: WireNames, domain: string, options: { ttlMs?: number } = {}): Promise<UndoStore> {
    const store = await new Objm(nc).create(names.objectStores.undo(domain), {
      description: `What undoing the ${domain} pool's calls needs, by session and call id`,
      ttl: nanos(options.ttlMs ?? defaultUndoTtlMs),
      replicas: jetStreamReplicas(nc),
    });
    return new UndoStore(store);
  }

  /**
   * Keeps a call's capture and returns what the reply carries instead. Throws a {@link ToolError}
   * the caller gets as the call's failure: FORBIDDEN for a capture over {@link maxUndoBytes} or not
   * JSON, UNAVAILABLE (retryable) when the store cannot be written. Either way the handler must not run.
   */
  async keep(sessionId: string, callId: string, captured: unknown, tool: string): Promise<StoredUndo> {
    let json: string;
    try {
      json = JSON.stringify(captured ?? null);
    } catch (error) {
      throw new ToolError(ToolFailureCode.INTERNAL, `${tool} could not record what undoing it needs (${error instanceof Error ? error.message : String(error)}), so it was not run.`, { retryable: false, cause: error });
    }
    const bytes = encoder.encode(json);
    if (bytes.byteLength > maxUndoBytes) {
      throw new ToolError(
        ToolFailureCode.FORBIDDEN,
        `${tool} was not run: undoing it would need ${bytes.byteLength} bytes kept, more than the ${maxUndoBytes} bytes a pool keeps for one call, and it changes nothing it could not put back.`,
      );
    }
    try {
      await this.#store.putBlob({ name: objectName(sessionId, callId) }, bytes);
    } catch (error) {
      throw new ToolError(ToolFailureCode.UNAVAILABLE, `${tool} was not run: what undoing it needs cannot be kept right now (${error instanceof Error ? error.message : String(error)}).`, { cause: error });
    }
    return { kind: 'troupe.undo.stored', bytes: bytes.byteLength, sha256: sha256(bytes) };
  }

  /**
   * The capture an undo request refers to: the one kept for its session and call, provided it is
   * the one `reference` describes. Throws a {@link ToolError}: INVALID_INPUT for a reference that
   * is not one this store made or a capture that differs from it, NOT_FOUND when none is kept
   * (never, or expired), UNAVAILABLE when the store cannot be read.
   */
  async take(sessionId: string, callId: string, reference: unknown, tool: string): Promise<unknown> {
    const parsed = StoredUndo.safeParse(reference);
    if (!parsed.success) {
      throw new ToolError(ToolFailureCode.INVALID_INPUT, `The undo request for ${tool} does not refer to a capture the pool kept; a pool restores only from what it recorded itself when the call ran.`);
    }
    let bytes: Uint8Array | null;
    try {
      bytes = await this.#store.getBlob(objectName(sessionId, callId));
    } catch (error) {
      throw new ToolError(ToolFailureCode.UNAVAILABLE, `What undoing this ${tool} call needs cannot be read right now (${error instanceof Error ? error.message : String(error)}).`, { cause: error });
    }
    if (bytes === null) {
      throw new ToolError(ToolFailureCode.NOT_FOUND, `Nothing is kept to undo this ${tool} call with: captures are kept for a limited time (${Math.round(defaultUndoTtlMs / 86_400_000)} days by default).`);
    }
    if (bytes.byteLength !== parsed.data.bytes || sha256(bytes) !== parsed.data.sha256) {
      throw new ToolError(ToolFailureCode.INVALID_INPUT, `The capture kept for this ${tool} call is not the one the session recorded, so it was not used.`);
    }
    return JSON.parse(decoder.decode(bytes)) as unknown;
  }
}
