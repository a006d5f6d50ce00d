import type { SubjectPermissions } from '../transport/rolePermissions.ts';

/** One user of the configuration: a role authenticated by its nkey. */
export interface ConfiguredUser {
  /** The role's name, written as a comment above its entry. */
  readonly role: string;
  /** The user's nkey public key: the configuration never holds a seed. */
  readonly publicKey: string;
  readonly permissions: SubjectPermissions;
}

/** Where the server's certificate, key and CA are, as the server will see the paths. */
export interface ServerTls {
  readonly certFile: string;
  readonly keyFile: string;
  readonly caFile: string;
}

// Subjects hold `$` (which the config format reads as a variable outside quotes) and spaces (queue groups): always quoted.
const quoted = (text: string): string => JSON.stringify(text);
const list = (items: readonly string[], indent: string): string =>
  items.length === 0 ? '[]' : `[\n${items.map((item) => `${indent}  ${quoted(item)}`).join('\n')}\n${indent}]`;

/**
 * A nats-server configuration that enforces the roles: JetStream on, no anonymous access, one
 * user per role authenticated by its nkey with exactly its permissions (and `allow_responses`,
 * as many answers per request as it runs services, where it answers requests), and with `tls` a TLS block that makes every client connection
 * encrypted. The port and the JetStream store are left to the command line (`-p`, `-sd`).
 */
export function natsServerConfig(options: { users: readonly ConfiguredUser[]; tls?: ServerTls; header?: string }): string {
  const lines = [
    ...(options.header ? options.header.split('\n').map((line) => `# ${line}`.trimEnd()) : []),
    '',
    'jetstream: enabled',
    '',
  ];
  if (options.tls) {
    lines.push(
      'tls {',
      `  cert_file: ${quoted(options.tls.certFile)}`,
      `  key_file: ${quoted(options.tls.keyFile)}`,
      `  ca_file: ${quoted(options.tls.caFile)}`,
      '  timeout: 2',
      '}',
      '',
    );
  }
  lines.push('authorization {', '  users: [');
  for (const user of options.users) {
    const { publish, subscribe, allowResponses } = user.permissions;
    lines.push(
      `    # ${user.role}`,
      '    {',
      `      nkey: ${quoted(user.publicKey)}`,
      '      permissions: {',
      `        publish: { allow: ${list(publish, '        ')} }`,
      `        subscribe: { allow: ${list(subscribe, '        ')} }`,
      ...(allowResponses === 1 ? ['        allow_responses: true'] : allowResponses > 1 ? [`        allow_responses: { max: ${allowResponses} }`] : []),
      '      }',
      '    }',
    );
  }
  lines.push('  ]', '}', '');
  return lines.join('\n');
}
