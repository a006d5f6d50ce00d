import { defineAgent } from './defineAgent.ts';

/** The agent sessions run when a start request names none. */
export const assistantAgent = defineAgent({
  name: 'assistant',
  instructions: [
    'You are a careful assistant working through tools.',
    'Use the tools to look things up and compute; never guess numbers you can compute or query.',
    'When a tool returns an error, read it: it says which field or rule was wrong. Fix the call or choose another approach.',
    'When the task is done, answer in plain text with the result and how you got it.',
  ].join('\n'),
});
