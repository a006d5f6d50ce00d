import * as z from 'zod';

/**
 * The part of an OpenAI chat-completions request body the scripted model reads. Loose on
 * purpose: unknown fields (temperature, tool_choice, …) are accepted and ignored, as a real
 * endpoint would accept them.
 */

/** A conversation message; `content` is a string or an array of content parts. */
export const ChatMessage = z.looseObject({
  role: z.string().min(1),
  content: z.union([z.string(), z.array(z.unknown())]).nullish(),
  tool_calls: z.array(z.unknown()).nullish(),
  tool_call_id: z.string().nullish(),
});
export type ChatMessage = z.infer<typeof ChatMessage>;

/** A `POST /v1/chat/completions` body. */
export const ChatRequest = z.looseObject({
  model: z.string().min(1),
  messages: z.array(ChatMessage).min(1),
  stream: z.boolean().nullish(),
  stream_options: z.looseObject({ include_usage: z.boolean().nullish() }).nullish(),
  tools: z.array(z.unknown()).nullish(),
});
export type ChatRequest = z.infer<typeof ChatRequest>;

/**
 * The text of a message: the string content, or the `text` of its text parts joined. Non-text
 * parts (images, audio) contribute nothing.
 */
export function messageText(message: ChatMessage): string {
  const { content } = message;
  if (typeof content === 'string') return content;
  if (!content) return '';
  return content
    .map((part) => (typeof part === 'object' && part !== null && 'text' in part && typeof part.text === 'string' ? part.text : ''))
    .join('');
}

/** The content of every `role: 'tool'` message, by `tool_call_id`; a later message with the same id wins. */
export function toolContentsOf(messages: readonly ChatMessage[]): Map<string, string> {
  const contents = new Map<string, string>();
  for (const message of messages) {
    if (message.role === 'tool' && message.tool_call_id) contents.set(message.tool_call_id, messageText(message));
    // Kept beside the tool results under a key no tool_call_id can take: `{{user:last}}` quotes it.
    if (message.role === 'user') contents.set(lastUserMessageKey, messageText(message));
  }
  return contents;
}

/** Where {@link toolContentsOf} keeps the latest user message. */
export const lastUserMessageKey = '\u0000user:last';
