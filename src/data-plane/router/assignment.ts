/**
 * Canary assignment: which side of a rollout a request is served by.
 *
 * PURE module (no Node built-ins, no I/O): the router calls it per request, and workflows and tests can
 * import it to reason about who is in the canary.
 *
 * A routing key (a user id) is hashed together with the rollout's salt into a bucket in [0, 10000); the
 * request goes to the candidate ("canary") when `bucket < canaryBps`. Therefore:
 * - sticky: the same key lands in the same bucket for as long as the salt is unchanged, so a user stays on
 *   one side while the share stays the same;
 * - monotonic: raising the share only moves keys from stable to canary (a bucket below 500 is also below
 *   1000), so a user who saw the candidate keeps seeing it as the rollout widens;
 * - per rollout: a new salt reshuffles every key, so the same users are not always the guinea pigs
 *   (the overlap between two rollouts at share p is about p², not p).
 *
 * Why not the seed's `md5(user) % 100`: it only has 1% steps (a 0.1% or 0.5% first canary is impossible),
 * it has no salt (the same 1% of users gets every experiment), and md5 is a cryptographic hash that needs
 * `node:crypto` (unavailable in the workflow sandbox) and costs far more than needed. The hash here is
 * MurmurHash3 (x86, 32-bit) over the UTF-8 bytes of `salt 0xFF key` — 0xFF never occurs in UTF-8, so the
 * (salt, key) pair is encoded unambiguously. Murmur3's finalizer avalanches well, so the 32-bit result is
 * close to uniform; `h % 10000` has a modulo bias of < 2e-6, far below anything measurable.
 */

export const BPS_SCALE = 10_000;

export type AssignmentTag = 'stable' | 'canary';

export interface AssignmentState {
  /** Canary share in basis points, 0..10000. */
  canaryBps: number;
  /** Per-rollout salt. */
  salt: string;
}

let scratch = new Uint8Array(256);

/** Writes the UTF-8 bytes of `s` into `scratch` at `at` (growing it when needed); returns the new offset. */
function writeUtf8(s: string, at: number): number {
  // Worst case 3 bytes per UTF-16 code unit (a surrogate pair is 2 units -> 4 bytes).
  const need = at + s.length * 3 + 1;
  if (need > scratch.length) {
    const bigger = new Uint8Array(Math.max(need, scratch.length * 2));
    bigger.set(scratch.subarray(0, at));
    scratch = bigger;
  }
  const buf = scratch;
  let p = at;
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (c < 0x80) {
      buf[p++] = c;
    } else if (c < 0x800) {
      buf[p++] = 0xc0 | (c >> 6);
      buf[p++] = 0x80 | (c & 0x3f);
    } else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        i++;
        buf[p++] = 0xf0 | (c >> 18);
        buf[p++] = 0x80 | ((c >> 12) & 0x3f);
        buf[p++] = 0x80 | ((c >> 6) & 0x3f);
        buf[p++] = 0x80 | (c & 0x3f);
      } else {
        // Lone high surrogate: encode as U+FFFD like TextEncoder does.
        buf[p++] = 0xef;
        buf[p++] = 0xbf;
        buf[p++] = 0xbd;
      }
    } else if (c >= 0xd800 && c <= 0xdfff) {
      buf[p++] = 0xef;
      buf[p++] = 0xbf;
      buf[p++] = 0xbd;
    } else {
      buf[p++] = 0xe0 | (c >> 12);
      buf[p++] = 0x80 | ((c >> 6) & 0x3f);
      buf[p++] = 0x80 | (c & 0x3f);
    }
  }
  return p;
}

/** MurmurHash3 x86 32-bit over `bytes[0..len)`. Returns an unsigned 32-bit integer. */
export function murmur3(bytes: Uint8Array, len: number = bytes.length, seed = 0): number {
  const c1 = 0xcc9e2d51;
  const c2 = 0x1b873593;
  let h = seed >>> 0;
  const blocks = len & ~3;
  for (let i = 0; i < blocks; i += 4) {
    let k = bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24);
    k = Math.imul(k, c1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, c2);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  let k = 0;
  switch (len & 3) {
    case 3:
      k ^= bytes[blocks + 2] << 16;
    // falls through
    case 2:
      k ^= bytes[blocks + 1] << 8;
    // falls through
    case 1:
      k ^= bytes[blocks];
      k = Math.imul(k, c1);
      k = (k << 15) | (k >>> 17);
      k = Math.imul(k, c2);
      h ^= k;
  }
  h ^= len;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The bucket of a routing key under a salt: an integer in [0, 10000). */
export function bucketOf(salt: string, key: string): number {
  let n = writeUtf8(salt, 0);
  scratch[n++] = 0xff; // separator: never a UTF-8 byte
  n = writeUtf8(key, n);
  return murmur3(scratch, n) % BPS_SCALE;
}

/**
 * Which side serves this request. With a routing key the answer is sticky (bucket < share); without one
 * (anonymous traffic) each request is assigned on its own with `random()` (expected to return [0, 1)).
 * A share of 0 never calls `random`, nor does a share of 10000.
 */
export function assignTag(
  state: AssignmentState,
  key: string | undefined,
  random: () => number,
): AssignmentTag {
  const share = state.canaryBps;
  if (!(share > 0)) return 'stable';
  if (share >= BPS_SCALE) return 'canary';
  if (key === undefined || key === '') return random() * BPS_SCALE < share ? 'canary' : 'stable';
  return bucketOf(state.salt, key) < share ? 'canary' : 'stable';
}

/**
 * Whether a stable request is also sent to the candidate as a shadow. `rate` is a fraction in [0, 1];
 * shadowing is decided per request (not per user) so that the shadow sample covers the whole traffic.
 */
export function shouldShadow(rate: number, random: () => number): boolean {
  if (!(rate > 0)) return false;
  if (rate >= 1) return true;
  return random() < rate;
}
