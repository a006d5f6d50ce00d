import { execFileSync } from 'node:child_process';
import { chmodSync, rmSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { ConfigurationError } from './environment.ts';

/** The files {@link writeLocalCertificates} writes, by their names in its directory. */
export const certificateFiles = {
  ca: 'ca.pem',
  caKey: 'ca-key.pem',
  serverCert: 'server-cert.pem',
  serverKey: 'server-key.pem',
} as const;

const openssl = (args: string[], cwd: string): void => {
  try {
    execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new ConfigurationError('--tls makes certificates with the openssl command, which is not installed (Debian/Ubuntu: apt-get install -y openssl; macOS: it is there already)');
    const stderr = (error as { stderr?: Buffer }).stderr?.toString().trim();
    throw new ConfigurationError(`openssl failed: ${stderr || (error as Error).message}`);
  }
};

/**
 * Writes a certificate authority of its own and a server certificate it signed, for `hosts`
 * (names and IP addresses, e.g. `127.0.0.1`, `localhost`), into `dir`: `ca.pem` is what clients
 * trust (`--tlsca`); the keys are readable by their owner only. P-256 keys, valid 825 days (the
 * longest browsers and Apple's TLS stack accept for a server certificate). Uses the `openssl`
 * command: Node's crypto can make keys but not certificates.
 */
export function writeLocalCertificates(dir: string, hosts: readonly string[]): void {
  const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  openssl(['req', '-x509', ...key, '-keyout', certificateFiles.caKey, '-out', certificateFiles.ca, '-days', '825', '-subj', '/CN=Troupe local CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  openssl(['req', ...key, '-keyout', certificateFiles.serverKey, '-out', 'server.csr', '-subj', `/CN=${hosts[0] ?? 'localhost'}`], dir);
  const names = hosts.map((host) => (isIP(host) ? `IP:${host}` : `DNS:${host}`)).join(',');
  writeFileSync(join(dir, 'server.ext'), `subjectAltName=${names}\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n`);
  openssl(['x509', '-req', '-in', 'server.csr', '-CA', certificateFiles.ca, '-CAkey', certificateFiles.caKey, '-CAcreateserial',
    '-out', certificateFiles.serverCert, '-days', '825', '-sha256', '-extfile', 'server.ext'], dir);
  for (const scratch of ['server.csr', 'server.ext', 'ca.srl']) rmSync(join(dir, scratch), { force: true });
  chmodSync(join(dir, certificateFiles.caKey), 0o600);
  chmodSync(join(dir, certificateFiles.serverKey), 0o600);
}
