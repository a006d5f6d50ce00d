import { parseArgs } from 'node:util';
import { describeChaos, runChaos } from './chaosRun.ts';

/**
 * `npm run chaos -- [--sessions N] [--kills N] [--seed N] [--concurrency N] [--logs DIR]`: the chaos run at a size
 * for people (the test suite runs a bounded one). Exits 1 when a session was lost or an effect
 * duplicated, printing the seed that replays it.
 */
const { values } = parseArgs({
  options: {
    sessions: { type: 'string', default: '2000' },
    kills: { type: 'string', default: '300' },
    seed: { type: 'string', default: String(Date.now() % 1_000_000) },
    concurrency: { type: 'string', default: '40' },
    logs: { type: 'string' },
  },
});
const number = (name: keyof typeof values) => {
  const value = Number(values[name]);
  if (!Number.isInteger(value) || value < 1) {
    console.error(`--${name} must be a whole number above 0, not ${JSON.stringify(values[name])}`);
    process.exit(2);
  }
  return value;
};
const report = await runChaos({
  seed: number('seed'),
  sessions: number('sessions'),
  calmSessions: 20,
  concurrency: number('concurrency'),
  minKills: number('kills'),
  killEveryMs: [300, 1_500],
  killNatsNode: true,
  settleWithinMs: 180_000,
  log: (line) => console.log(line),
  namespace: `chaos-${number('seed')}`,
  ...(values.logs ? { logDir: values.logs } : {}),
});
console.log(describeChaos(report));
if (report.lost > 0 || report.duplicated.length > 0) {
  console.error(`FAILED: ${report.lost} lost, ${report.duplicated.length} duplicated. Replay with --seed ${report.seed}.`);
  process.exit(1);
}
