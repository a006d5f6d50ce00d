import { parseArgs } from 'node:util';
import { createLogger } from '../observability/logger.ts';
import { bundledScriptsDir, loadScripts } from '../scriptedModel/scriptLibrary.ts';
import { startScriptedModelServer } from '../scriptedModel/server.ts';
import { readEnvironment } from './environment.ts';
import { UsageError } from './usageError.ts';


/** `troupe model serve`: the scripted OpenAI-compatible server, until SIGTERM. */
export async function modelServeCommand(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: { port: { type: 'string', default: '8787' }, host: { type: 'string', default: '127.0.0.1' }, scripts: { type: 'string', multiple: true } },
    strict: true,
    allowPositionals: false,
  });
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--port must be a port number, not "${values.port}"`);
  const env = readEnvironment();
  const logger = createLogger({ name: 'model', level: env.LOG_LEVEL });
  const dirs = [bundledScriptsDir, ...(env.TROUPE_SCRIPTS?.split(':').filter(Boolean) ?? []), ...(values.scripts ?? [])];
  const scripts = await loadScripts(dirs);
  const server = await startScriptedModelServer({ scripts, port, host: values.host, logger });
  logger.info({ url: server.url, scripts: dirs }, 'scripted model listening');
  const stop = () => void server.close().finally(() => process.exit(0));
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}
