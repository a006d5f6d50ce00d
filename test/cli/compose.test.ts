import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseConsoleArgs } from '../../cli/consoleCommand.ts';
import { exampleDomains } from '../../domains/exampleDomains.ts';
import { parseInspectArgs } from '../../cli/inspectArgs.ts';
import { mcpTargetOf } from '../../cli/mcpWorkerArgs.ts';

const composeFile = readFileSync(fileURLToPath(new URL('../../compose.yaml', import.meta.url)), 'utf8');

/** The services of compose.yaml with their `command` and `replicas` (the file keeps both on one line each). */
function services(): Map<string, { command?: string[]; replicas?: number; image?: string }> {
  const found = new Map<string, { command?: string[]; replicas?: number; image?: string }>();
  const body = composeFile.slice(composeFile.indexOf('\nservices:\n'), composeFile.indexOf('\nvolumes:\n'));
  let current: string | undefined;
  for (const line of body.split('\n')) {
    const service = /^ {2}([a-z-]+):$/.exec(line)?.[1];
    if (service) found.set((current = service), {});
    const entry = current ? found.get(current) : undefined;
    if (!entry) continue;
    const command = /^ {4}command: (\[.*\])$/.exec(line)?.[1];
    if (command) entry.command = JSON.parse(command) as string[];
    const replicas = /replicas: (\d+)/.exec(line)?.[1];
    if (replicas) entry.replicas = Number(replicas);
    const image = /^ {4}image: (\S+)$/.exec(line)?.[1];
    if (image) entry.image = image;
  }
  return found;
}

describe('compose.yaml', () => {
  const all = services();

  it('runs NATS with JetStream and Jaeger with OTLP in and its UI on 16686', () => {
    expect(all.get('nats')?.command).toContain('-js');
    expect(all.get('jaeger')?.image).toMatch(/^jaegertracing\/jaeger:2\./);
    expect(composeFile).toContain('"16686:16686", "4318:4318"');
    expect(composeFile).toContain('OTEL_EXPORTER_OTLP_ENDPOINT: http://jaeger:4318');
  });

  it('runs every example pool and the analyst specialist with several replicas, with the commands the tests start', () => {
    for (const domain of Object.keys(exampleDomains)) {
      expect(all.get(`worker-${domain}`), domain).toEqual({ command: ['worker', domain], replicas: 2 });
    }
    expect(all.get('specialist-analyst')).toEqual({ command: ['worker', '--agent', 'analyst'], replicas: 2 });
    expect(all.get('model')?.command?.slice(0, 2)).toEqual(['model', 'serve']);
  });

  it('starts the refunds pool only with its profile, on the workspace volume the files pool writes to', () => {
    const block = (service: string) => composeFile.slice(composeFile.indexOf(`\n  ${service}:\n`) + 1).split(/\n(?=  \S)/)[0] ?? '';
    expect(block('worker-refunds')).toContain('profiles: ["refund-desk"]');
    expect(block('worker-refunds')).toContain('volumes: ["workspace:/workspace"]');
    expect(block('worker-files')).toContain('volumes: ["workspace:/workspace"]');
    for (const service of all.keys()) if (service !== 'worker-refunds' && service !== 'client') expect(block(service), service).not.toContain('profiles:');
  });

  it('serves the operator console beyond the container only with a token, as the CLI requires', () => {
    const command = all.get('console')?.command ?? [];
    expect(command[0]).toBe('console');
    expect(parseConsoleArgs(command.slice(1), { TROUPE_CONSOLE_TOKEN: 'sixteen-chars-or-more' })).toEqual({ host: '0.0.0.0', port: 7070, readOnly: false, token: 'sixteen-chars-or-more' });
    expect(composeFile).toContain('TROUPE_CONSOLE_TOKEN: ${TROUPE_CONSOLE_TOKEN:-}');
    expect(composeFile).toContain('"7070:7070"');
  });

  it('runs a pool backed by the reference MCP server, installed in the image, with a command the CLI accepts', () => {
    const command = all.get('worker-everything')?.command ?? [];
    expect(all.get('worker-everything')?.replicas).toBe(2);
    expect(command.slice(0, 4)).toEqual(['worker', 'everything', '--mcp', '--']);
    expect(mcpTargetOf({ mcp: true }, command.slice(4))).toEqual({ kind: 'stdio', command: 'node', args: ['/app/node_modules/@modelcontextprotocol/server-everything/dist/index.js', 'stdio'] });
    expect(readFileSync(fileURLToPath(new URL('../../Dockerfile', import.meta.url)), 'utf8')).toContain('@modelcontextprotocol/server-everything@');
  });

  it('runs the orchestrator with the inspector and a Prometheus endpoint, with arguments the CLI accepts', () => {
    const command = all.get('orchestrator')?.command ?? [];
    expect(command[0]).toBe('orchestrator');
    expect(parseInspectArgs(command.slice(1), 'usage')).toEqual({ port: 8080 });
    expect(composeFile).toContain('TROUPE_PROMETHEUS_PORT: "9464"');
    expect(composeFile).toContain('JAEGER_URL: http://jaeger:16686');
  });
});

describe('Dockerfile', () => {
  const dockerfile = readFileSync(fileURLToPath(new URL('../../Dockerfile', import.meta.url)), 'utf8');
  const dockerignore = readFileSync(fileURLToPath(new URL('../../.dockerignore', import.meta.url)), 'utf8').split('\n');
  const stages = dockerfile.split(/^FROM /m).slice(1);

  it('builds the package in one stage and runs the packed package, production dependencies only, as a non-root user', () => {
    expect(stages).toHaveLength(2);
    expect(stages[0]).toMatch(/^node:24\S* AS build/);
    expect(stages[0]).toContain('npm ci');
    expect(stages[0]).toMatch(/bash bin\/build[\s\S]*npm pack --ignore-scripts/);
    expect(stages[1]).toMatch(/^node:24/);
    expect(stages[1]).toContain('npm install --omit=dev');
    expect(stages[1]).toMatch(/^USER node$/m);
    expect(stages[1]).toContain('ENTRYPOINT ["/app/node_modules/.bin/troupe"]');
    // The checkout's wrapper installs a Node of its own: an image never runs it.
    expect(dockerfile).not.toMatch(/^RUN .*bin\/toolchain/m);
  });

  it('keeps what the build must not copy out of its context, and compose builds every service from it', () => {
    expect(dockerignore).toEqual(expect.arrayContaining(['.git', 'node_modules', '.toolchain', 'dist', 'test', 'bench', '.troupe']));
    expect(composeFile).toMatch(/^ {2}build: \.$/m);
    expect(composeFile).not.toContain('dockerfile_inline');
  });
});
