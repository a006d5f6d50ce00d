// `scheme://userinfo@`: what a URL carries credentials in (`nats://user:pass@host`, `nats://token@host`).
const userinfo = /([a-z][a-z0-9+.-]*:\/\/)[^\s/?#@,]+@/gi;

/**
 * The text with the credentials of every URL in it replaced by `[redacted]`: the host, port and
 * path stay readable, so a log line still says where a process connects, never as whom. Works on
 * a single URL, on a comma-separated list of them (`NATS_URL`) and on a message that quotes one.
 */
export function redactUrlCredentials(text: string): string {
  return text.replace(userinfo, '$1[redacted]@');
}
