import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { roleOf } from '../../transport/rolePermissions.ts';

const read = (file: string) => readFileSync(fileURLToPath(new URL(`../../${file}`, import.meta.url)), 'utf8');
const servicesOf = (text: string) => [...text.slice(text.indexOf('\nservices:\n')).matchAll(/^ {2}([a-z-]+):$/gm)].map((m) => m[1] as string);

describe('compose.auth.yaml', () => {
  const auth = read('compose.auth.yaml');
  const nkeys = Object.fromEntries([...auth.matchAll(/^ {2}([a-z-]+):\n(?: {4}.*\n)*? {4}environment: \{[^}]*NATS_NKEY: \/auth\/([a-z-]+)\.nk \}/gm)].map((m) => [m[1], m[2]]));

  // The console is a person's tool: it connects as the operator.
  const roleOfService: Record<string, string> = { console: 'operator' };

  it('puts every service of compose.yaml that talks to NATS on the seed of the role it is named after (the console: the operator)', () => {
    const natsClients = servicesOf(read('compose.yaml')).filter((service) => !['nats', 'jaeger', 'model'].includes(service));
    expect(natsClients.length).toBeGreaterThan(4);
    for (const service of natsClients) {
      const role = roleOfService[service] ?? service;
      expect(nkeys[service], service).toBe(role);
      expect(roleOf(role), service).toBeDefined();
    }
  });

  it('starts NATS with the configuration troupe auth init wrote, and connects over TLS to the name the certificate is for', () => {
    expect(auth).toContain('command: ["-c", "/auth/nats-server.conf", "-js", "-sd", "/data", "-m", "8222"]');
    expect(auth).toContain('NATS_URL: tls://nats:4222');
    expect(auth).toContain('bin/troupe auth init --out ./auth --domains files,db,calc,refunds,everything --tls --tls-host nats --server-dir /auth');
  });
});
