import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createUser } from '@nats-io/nkeys';
import { describe, expect, it } from 'vitest';
import { NatsCredentialsError, natsConnectSettings, readNkeySeed } from '../../transport/natsCredentials.ts';

const dir = mkdtempSync(join(tmpdir(), 'troupe-credentials-'));
const user = createUser();
const seedFile = join(dir, 'worker-calc.nk');
writeFileSync(seedFile, `${new TextDecoder().decode(user.getSeed())}\n`);
const caFile = join(dir, 'ca.pem');
writeFileSync(caFile, '-----BEGIN CERTIFICATE-----\n');

describe('natsConnectSettings', () => {
  it('takes a user and password out of the URL, so the servers nats.js gets carry none', () => {
    expect(natsConnectSettings('nats://ada:s3cr%40t@nats.example.com:4222')).toEqual({ servers: ['nats://nats.example.com:4222'], options: { user: 'ada', pass: 's3cr@t' } });
  });

  it('reads a URL with only a user part as a token, as nats tooling does', () => {
    expect(natsConnectSettings('nats://t0ken@127.0.0.1:4222')).toEqual({ servers: ['nats://127.0.0.1:4222'], options: { token: 't0ken' } });
  });

  it('keeps every server of a list, each without its credentials', () => {
    expect(natsConnectSettings('nats://a:b@one:4222, nats://a:b@two:4222').servers).toEqual(['nats://one:4222', 'nats://two:4222']);
  });

  it('lets explicit credentials win over the URL\'s', () => {
    expect(natsConnectSettings('nats://ada:old@host:4222', { token: 'explicit' }).options).toEqual({ token: 'explicit' });
  });

  it('authenticates with an nkey seed file and reads replies under that user\'s own inbox', () => {
    const settings = natsConnectSettings('nats://host:4222', { nkeySeedFile: seedFile });
    expect(settings.nkeyPublicKey).toBe(user.getPublicKey());
    expect(settings.options.inboxPrefix).toBe(`_INBOX.${user.getPublicKey()}`);
    expect(typeof settings.options.authenticator).toBe('function');
    expect(natsConnectSettings('nats://host:4222', { nkeySeedFile: seedFile, inboxPrefix: '_INBOX.mine' }).options.inboxPrefix).toBe('_INBOX.mine');
  });

  it('requires TLS for a tls:// URL or when given a CA, and not otherwise', () => {
    expect(natsConnectSettings('tls://host:4222').options.tls).toEqual({});
    expect(natsConnectSettings('nats://host:4222', { tlsCaFile: caFile }).options.tls).toEqual({ caFile });
    expect(natsConnectSettings('nats://host:4222').options.tls).toBeUndefined();
  });

  it('refuses two ways of authenticating at once, a password without a user, a certificate without its key', () => {
    expect(() => natsConnectSettings('nats://host:4222', { token: 't', nkeySeedFile: seedFile })).toThrow('choose one way to authenticate to NATS, not a token and an nkey');
    expect(() => natsConnectSettings('nats://host:4222', { password: 'p' })).toThrow(NatsCredentialsError);
    expect(() => natsConnectSettings('nats://host:4222', { tlsCertFile: caFile })).toThrow(/needs its key/);
  });

  it('names a file it cannot read, or one that holds no seed, before connecting', () => {
    expect(() => natsConnectSettings('nats://host:4222', { nkeySeedFile: join(dir, 'absent.nk') })).toThrow(/cannot read the nkey seed file .*absent\.nk/);
    expect(() => natsConnectSettings('nats://host:4222', { credsFile: join(dir, 'absent.creds') })).toThrow(/cannot read the credentials file/);
    expect(() => readNkeySeed(caFile)).toThrow(/does not hold an nkey seed/);
  });
});
