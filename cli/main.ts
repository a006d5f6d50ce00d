#!/usr/bin/env node
import { NoOrchestratorError, SessionRejectedError } from '../client/sessionClient.ts';
import { FaultCountsDirectoryError } from '../actors/worker/faultCounts.ts';
import { McpServerUnreachableError } from '../mcp/mcpServerConnection.ts';
import { mcpServeCommand } from './mcpServeCommand.ts';
import { FaultSpecificationError } from '../actors/worker/workerFaults.ts';
import { WorkerConfigurationError } from '../actors/worker/toolWorker.ts';
import { accessDenialOf, NatsUnreachableError } from '../transport/natsConnection.ts';
import { NatsCredentialsError } from '../transport/natsCredentials.ts';
import { authCommand } from './authInitCommand.ts';
import { consoleCommand } from './consoleCommand.ts';
import { demoCommand, upCommand } from './demoCommand.ts';
import { evalCommand } from './evalCommand.ts';
import { initCommand } from './initCommand.ts';
import { ConfigurationError } from './environment.ts';
import { StackStartError } from './localStack.ts';
import { modelServeCommand } from './modelServeCommand.ts';
import { takeNamespaceArg } from './namespaceArg.ts';
import { takeNatsConnectionArgs } from './natsConnectionArgs.ts';
import { orchestratorCommand } from './orchestratorCommand.ts';
import { runCommand } from './runCommand.ts';
import { sessionsCommand } from './sessionsCommand.ts';
import { traceCommand } from './traceCommand.ts';
import { UsageError } from './usageError.ts';
import { workerCommand } from './workerCommand.ts';

const usage = `troupe — production AI agents as statecharts over NATS

usage:
  troupe demo                      start everything needed, run the demo task, stop
  troupe up                        start the same stack and leave it running
  troupe init <dir>                write a starter project: a tool domain, an agent, an end-to-end test
  troupe run "<task>" [--json] [--agent <name>] [--timeout <s>]
             [--max-steps N] [--max-tool-calls-per-turn N] [--max-tokens N] [--max-cost USD] [--max-wall-clock S]
                                   run a session on the running stack and follow it (--max-*: budgets tighter than the agent's)
  troupe run --attach <id> [--json] follow an existing session: replay its events, then the rest
  troupe sessions list|show|approve|deny|interrupt|redirect|cancel|resume|takeover|call|handback|rollback …
                                   see and steer sessions (troupe sessions for details)
  troupe eval <dataset>… [--running] [--concurrency N] [--repeat K] [--filter ID]… [--json] [--junit FILE] [--html FILE] [--baseline FILE [--fail-on-regression]]
                                   run datasets of cases as real sessions and report how each did
  troupe trace <sessionId> [--json] a session's span tree with durations, tokens and cost, from Jaeger (JAEGER_URL)
  troupe console [--port 7070] [--host 127.0.0.1 [--token T]] [--read-only]
                                   the operator console in a browser: sessions, statecharts live, timelines, controls, pools
  troupe orchestrator [--agents <file>] [--inspect]
                                   host sessions of the agents (yours from --agents; --inspect: watch their statecharts)
  troupe worker <domain>           serve a tool domain (files, db, calc, refunds) as a pool member
  troupe worker <domain> --module <file>
                                   serve the tools your module exports as the <domain> pool
  troupe worker --agent <name> [--agents <file>]
                                   serve an agent (analyst, or yours from --agents) as a specialist pool member
  troupe worker <domain> --mcp -- <command> [args…] | --mcp-url <url> [--mcp-header "Name: value"]…
                                   serve an MCP server's tools as the <domain> pool
  troupe mcp serve [--agent <name>]… [--http <port> [--host H] [--token T]]
                                   the agents as MCP tools for any MCP client (stdio unless --http)
  troupe model serve [--port N] [--scripts <dir>]
                                   the scripted OpenAI-compatible model server
  troupe auth init --out <dir> [--domains files,db,calc,refunds] [--agents analyst] [--tls]
                                   a nats-server.conf with one nkey user per role, least privilege, and their seeds
  troupe demo|up --auth <dir>      the same stack with every process on its own role's seed
  troupe demo|up --cluster         the same stack on a three-node nats-server cluster on loopback
                                   (streams and buckets at three replicas; with --auth, every server enforces the roles)
  troupe demo|up --refund-desk     also start the refunds pool (refunds_issue, refunds recorded under TROUPE_WORKSPACE/refunds/),
                                   left out by default so the assistant is not offered it

every command that talks to NATS takes
  --namespace <ns>                 the deployment to join or talk to (TROUPE_NAMESPACE, default troupe);
                                   deployments that share a NATS cluster need different namespaces
  --nkey <seed file> | --creds <file> | --user <u> --password <p> | --token <t>
                                   how to authenticate (NATS_NKEY, NATS_CREDS, NATS_USER/NATS_PASSWORD, NATS_TOKEN;
                                   after "run", --user is the session's user: give NATS_USER instead)
  --tlsca <file> [--tlscert <file> --tlskey <file>]
                                   the server's CA, and a client certificate (NATS_CA, NATS_CERT, NATS_KEY)

configuration: environment variables, see README.md (NATS_URL, OPENAI_BASE_URL, OPENAI_API_KEY, TROUPE_MODEL, …)`;

/** Exit codes: 0 success (a completed session), 1 a session that did not complete, 2 a usage or configuration error, 3 infrastructure. */
async function main(argv: string[]): Promise<number | undefined> {
  // Read before any command, so every command (and every process demo|up starts) has them in its environment.
  const [command, ...rest] = takeNatsConnectionArgs(takeNamespaceArg(argv));
  switch (command) {
    case 'demo':
      return await demoCommand(rest);
    case 'up':
      return await upCommand(rest);
    case 'init':
      return await initCommand(rest);
    case 'auth':
      return await authCommand(rest);
    case 'run':
      return await runCommand(rest);
    case 'eval':
      return await evalCommand(rest);
    case 'sessions':
      return await sessionsCommand(rest);
    case 'trace':
      return await traceCommand(rest);
    case 'orchestrator':
      await orchestratorCommand(rest);
      return undefined;
    case 'worker':
      await workerCommand(rest);
      return undefined;
    case 'console':
      await consoleCommand(rest);
      return undefined;
    case 'mcp':
      if (rest[0] !== 'serve') throw new UsageError('usage: troupe mcp serve [--agent NAME]… [--agents FILE] [--http PORT [--host H] [--token T]]');
      await mcpServeCommand(rest.slice(1));
      return undefined;
    case 'model':
      if (rest[0] !== 'serve') throw new UsageError('usage: troupe model serve [--port N] [--scripts <dir>]');
      await modelServeCommand(rest.slice(1));
      return undefined;
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(`${usage}\n`);
      return command === undefined ? 2 : 0;
    default:
      throw new UsageError(`unknown command "${command}"\n\n${usage}`);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    // Long-running commands return undefined and live until their signal handlers exit.
    if (code !== undefined) process.exit(code);
  },
  (error: unknown) => {
    // NATS refusing the credentials or a subject, however deep it surfaced: one line saying which, exit 3.
    const denial = accessDenialOf(error, process.env.NATS_URL ?? '');
    if (denial) {
      process.stderr.write(`troupe: ${denial.message}\n`);
      process.exit(3);
    }
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`troupe: ${message}\n`);
    const isUsage = error instanceof UsageError || error instanceof ConfigurationError || error instanceof NatsCredentialsError || error instanceof FaultSpecificationError || error instanceof FaultCountsDirectoryError || error instanceof WorkerConfigurationError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
    const isInfrastructure = error instanceof NatsUnreachableError || error instanceof NoOrchestratorError || error instanceof StackStartError || error instanceof McpServerUnreachableError;
    process.exit(isUsage ? 2 : isInfrastructure || error instanceof SessionRejectedError ? 3 : 1);
  },
);
