import { KvWatchInclude, type KV, type KvEntry } from '@nats-io/kv';

/**
 * The bucket's live entries (of the keys `key` matches: all by default) as they were when called: the latest value of every key whose latest
 * operation is a put (deleted and purged keys are left out).
 *
 * Not `kv.keys()`: it stops only once nothing is pending on its consumer, so it never ends while
 * other processes keep writing to the bucket, as orchestrators renewing their leases always do.
 * This reads the same last-value-per-key feed and stops at whichever comes first: the number of
 * entries pending when it began (a snapshot, however busy the bucket), or nothing pending (a
 * quiet bucket, where entries removed meanwhile would leave that number out of reach).
 */
export async function latestEntries(kv: KV, key = '>'): Promise<KvEntry[]> {
  // A watcher of an empty bucket would wait for the first write; so would one whose filter no key
  // matches, in a bucket holding other keys (checkpoints' journal segments and no checkpoint, say).
  if ((await kv.status()).values === 0) return [];
  if (key !== '>') {
    let matched = false;
    for await (const _ of await kv.keys(key)) {
      matched = true;
      break;
    }
    if (!matched) return [];
  }
  const watcher = await kv.watch({ key, include: KvWatchInclude.LastValue });
  const entries: KvEntry[] = [];
  try {
    for await (const entry of watcher) {
      if (entry.operation === 'PUT') entries.push(entry);
      // The watcher marks the last of the entries pending at the start as the first "update".
      if (entry.isUpdate || entry.delta === 0) break;
    }
  } finally {
    watcher.stop();
  }
  return entries;
}
