import { readFileSync } from 'node:fs';
import { fromSeed } from '@nats-io/nkeys';
import { credsAuthenticator, nkeyAuthenticator, type NodeConnectionOptions } from '@nats-io/transport-node';
import { userInboxPrefix } from './subjects.ts';

/**
 * How a process proves who it is to NATS and checks that the server is the right one: the options
 * the `nats` CLI takes (`--user/--password`, `--token`, `--nkey`, `--creds`, `--tlsca/--tlscert/--tlskey`),
 * with files named by path. At most one way of authenticating; credentials in the URL
 * (`nats://user:pass@host`, `nats://token@host`) count as one, and explicit ones win over them.
 */
export interface NatsCredentials {
  user?: string;
  password?: string;
  token?: string;
  /** A file holding an nkey seed (`SU…`), as `troupe auth init` writes one per role. */
  nkeySeedFile?: string;
  /** A `.creds` file: a user JWT and its nkey seed (decentralised authentication). */
  credsFile?: string;
  /** The CA that signed the server's certificate, when it is not one the system trusts. */
  tlsCaFile?: string;
  /** A client certificate and its key, for servers that verify clients (`verify: true`). */
  tlsCertFile?: string;
  tlsKeyFile?: string;
  /**
   * Where replies to this process's requests arrive. With an nkey it defaults to that user's own
   * ({@link userInboxPrefix}), which is what the role permissions `troupe auth init` writes allow.
   */
  inboxPrefix?: string;
}

/** Credentials that cannot be used as given: a file missing or malformed, two ways of authenticating at once. */
export class NatsCredentialsError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** An nkey read from a seed file: its seed (to authenticate and to sign) and public key (to be recognised by). */
export interface NkeySeed {
  readonly seed: Uint8Array;
  readonly publicKey: string;
}

/**
 * Reads an nkey seed file: the seed alone, or among other lines (comments, a `.creds`-style
 * block). Throws a {@link NatsCredentialsError} naming the file when it is unreadable or holds no
 * valid seed.
 */
export function readNkeySeed(file: string): NkeySeed {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new NatsCredentialsError(`cannot read the nkey seed file ${file}: ${(error as Error).message}`, { cause: error });
  }
  const seed = /\bS[A-Z][A-Z2-7]{50,}\b/.exec(text)?.[0];
  try {
    if (!seed) throw new Error('no seed in it');
    const bytes = new TextEncoder().encode(seed);
    return { seed: bytes, publicKey: fromSeed(bytes).getPublicKey() };
  } catch (error) {
    throw new NatsCredentialsError(`${file} does not hold an nkey seed (a line starting with "SU", as troupe auth init or nk -gen user writes)`, { cause: error });
  }
}

const readable = (what: string, file: string): string => {
  try {
    readFileSync(file);
    return file;
  } catch (error) {
    throw new NatsCredentialsError(`cannot read ${what} ${file}: ${(error as Error).message}`, { cause: error });
  }
};

/** What `connect()` needs besides its name and reconnect policy: servers without credentials, and how to authenticate. */
export interface NatsConnectSettings {
  /** The servers as nats.js takes them, credentials removed. */
  readonly servers: string[];
  readonly options: Pick<NodeConnectionOptions, 'authenticator' | 'user' | 'pass' | 'token' | 'tls' | 'inboxPrefix'>;
  /** The nkey's public key when connecting with one: the user this process is to the server. */
  readonly nkeyPublicKey?: string;
}

/**
 * Turns a NATS URL (one, or several separated by commas) and credentials into connect options:
 * credentials found in the URL are taken out of it (nats.js would ignore them) and used unless
 * explicit ones are given; files are read now, so a wrong path fails before connecting; a
 * `tls://` URL requires TLS. Throws a {@link NatsCredentialsError} for unusable credentials.
 */
export function natsConnectSettings(url: string, credentials: NatsCredentials = {}): NatsConnectSettings {
  let fromUrl: { user?: string; password?: string; token?: string } = {};
  let requireTls = false;
  const servers = url.split(',').map((entry) => entry.trim()).filter((entry) => entry !== '').map((entry) => {
    const match = /^([a-z][a-z0-9+.-]*:\/\/)?(?:([^@/]*)@)?(.*)$/i.exec(entry) as RegExpExecArray;
    const [, scheme = '', userinfo, rest = ''] = match;
    if (scheme.toLowerCase() === 'tls://' || scheme.toLowerCase() === 'wss://') requireTls = true;
    if (userinfo !== undefined && fromUrl.user === undefined && fromUrl.token === undefined) {
      const colon = userinfo.indexOf(':');
      fromUrl = colon === -1
        ? { token: decodeURIComponent(userinfo) }
        : { user: decodeURIComponent(userinfo.slice(0, colon)), password: decodeURIComponent(userinfo.slice(colon + 1)) };
    }
    return `${scheme}${rest}`;
  });
  const explicit = credentials.user !== undefined || credentials.password !== undefined || credentials.token !== undefined || credentials.nkeySeedFile !== undefined || credentials.credsFile !== undefined;
  const chosen = explicit ? credentials : { ...credentials, ...fromUrl };
  const ways = [
    chosen.user !== undefined || chosen.password !== undefined ? 'a user and password' : undefined,
    chosen.token !== undefined ? 'a token' : undefined,
    chosen.nkeySeedFile !== undefined ? 'an nkey' : undefined,
    chosen.credsFile !== undefined ? 'a credentials file' : undefined,
  ].filter((way) => way !== undefined);
  if (ways.length > 1) throw new NatsCredentialsError(`choose one way to authenticate to NATS, not ${ways.join(' and ')}`);
  if (chosen.password !== undefined && chosen.user === undefined) throw new NatsCredentialsError('a NATS password needs a user (--user / NATS_USER)');
  if ((credentials.tlsCertFile === undefined) !== (credentials.tlsKeyFile === undefined)) {
    throw new NatsCredentialsError('a TLS client certificate needs its key and the key its certificate (--tlscert with --tlskey, NATS_CERT with NATS_KEY)');
  }
  const options: NatsConnectSettings['options'] = {};
  let nkeyPublicKey: string | undefined;
  if (chosen.user !== undefined) Object.assign(options, { user: chosen.user, ...(chosen.password !== undefined ? { pass: chosen.password } : {}) });
  if (chosen.token !== undefined) options.token = chosen.token;
  if (chosen.nkeySeedFile !== undefined) {
    const nkey = readNkeySeed(chosen.nkeySeedFile);
    options.authenticator = nkeyAuthenticator(nkey.seed);
    nkeyPublicKey = nkey.publicKey;
  }
  if (chosen.credsFile !== undefined) options.authenticator = credsAuthenticator(readFileSync(readable('the credentials file', chosen.credsFile)));
  const tls = {
    ...(credentials.tlsCaFile !== undefined ? { caFile: readable('the TLS CA file', credentials.tlsCaFile) } : {}),
    ...(credentials.tlsCertFile !== undefined ? { certFile: readable('the TLS certificate', credentials.tlsCertFile) } : {}),
    ...(credentials.tlsKeyFile !== undefined ? { keyFile: readable('the TLS key', credentials.tlsKeyFile) } : {}),
  };
  // Any tls object makes nats.js insist on TLS: given only when asked for, so a plain server still works.
  if (requireTls || Object.keys(tls).length > 0) options.tls = tls;
  const inboxPrefix = credentials.inboxPrefix ?? (nkeyPublicKey ? userInboxPrefix(nkeyPublicKey) : undefined);
  if (inboxPrefix !== undefined) options.inboxPrefix = inboxPrefix;
  return { servers, options, ...(nkeyPublicKey ? { nkeyPublicKey } : {}) };
}

