import { ToolFailureCode, toolFailure } from '../../tools/toolFailure.ts';
import type { ToolReply } from '../../transport/messages.ts';
import { encodeWireMessage } from '../../transport/wireMessage.ts';

/** Room left under the server's `max_payload` for the reply's headers and the protocol's framing. */
export const replyHeadroomBytes = 4_096;

const encoder = new TextEncoder();

/** A reply as it will be sent: its encoded body, and the size of the original when it had to be replaced. */
export interface FittedReply {
  reply: ToolReply;
  data: Uint8Array;
  /** Set when the reply was too large for one message and was replaced. */
  oversizedBytes?: number;
}

/**
 * A reply that fits one NATS message of `maxPayload` bytes: the reply itself when it does, else a
 * small one in its place (a reply over the limit would never arrive: the caller would time out
 * and retry). What replaces it depends on what happened:
 * - a side-effecting call that succeeded stays a success: it changed something, and saying it
 *   failed would have the model do it again; the result is replaced by a note and the undo
 *   reference is kept, so the call can still be rolled back;
 * - anything else becomes INVALID_INPUT asking for less, which the caller can act on.
 *
 * What a specialist spent travels in both: it was spent all the same.
 */
export function fitReply(body: ToolReply, maxPayload: number, options: { tool: string; sideEffects: boolean }): FittedReply {
  const data = encoder.encode(encodeWireMessage(body));
  if (data.byteLength <= maxPayload - replyHeadroomBytes) return { reply: body, data };
  const spent = body.spent ? { spent: body.spent } : {};
  const reply: ToolReply = body.status === 'ok' && options.sideEffects
    ? {
        type: 'tool.reply', status: 'ok', callId: body.callId,
        result: `${options.tool} succeeded, but its result is ${data.byteLength} bytes, more than one message can carry (${maxPayload}), so it is not shown. Do not repeat the call: it was carried out.`,
        ...(body.compensation !== undefined ? { compensation: body.compensation } : {}),
        ...spent,
      }
    : {
        type: 'tool.reply', status: 'error', callId: body.callId,
        failure: toolFailure(ToolFailureCode.INVALID_INPUT, `The result is ${data.byteLength} bytes, more than one message can carry (${maxPayload}). Ask for less: a narrower query, a LIMIT, a smaller range.`),
        ...spent,
      };
  return { reply, data: encoder.encode(encodeWireMessage(reply)), oversizedBytes: data.byteLength };
}
