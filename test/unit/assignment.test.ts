import { describe, expect, it } from 'vitest';
import { assignTag, bucketOf, murmur3, shouldShadow } from '../../src/data-plane/router/assignment';

/** Deterministic PRNG (mulberry32) so the statistical checks are reproducible. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomKeys(n: number, seed = 1): string[] {
  const r = prng(seed);
  const keys: string[] = [];
  for (let i = 0; i < n; i++) keys.push(`user-${Math.floor(r() * 1e12).toString(36)}-${i}`);
  return keys;
}

const KEYS = randomKeys(100_000);

describe('murmur3', () => {
  const enc = new TextEncoder();
  it('matches the reference vectors', () => {
    expect(murmur3(enc.encode(''), undefined, 0)).toBe(0);
    expect(murmur3(enc.encode(''), undefined, 1)).toBe(0x514e28b7);
    expect(murmur3(enc.encode('hello'), undefined, 0)).toBe(0x248bfa47);
    expect(murmur3(enc.encode('The quick brown fox jumps over the lazy dog'), undefined, 0)).toBe(0x2e4ff723);
  });

  it('bucketOf hashes the UTF-8 bytes of salt 0xFF key', () => {
    for (const [salt, key] of [
      ['s', 'k'],
      ['rollout-42', 'user-é漢字😀'],
      ['', ''],
      ['x'.repeat(300), 'y'.repeat(1000)],
    ]) {
      const s = enc.encode(salt);
      const k = enc.encode(key);
      const bytes = new Uint8Array(s.length + 1 + k.length);
      bytes.set(s, 0);
      bytes[s.length] = 0xff;
      bytes.set(k, s.length + 1);
      expect(bucketOf(salt, key)).toBe(murmur3(bytes) % 10000);
    }
  });
});

describe('canary assignment', () => {
  it('buckets are in [0, 10000) and roughly uniform', () => {
    const counts = new Array(10).fill(0);
    let bad = 0;
    for (const k of KEYS) {
      const b = bucketOf('salt-a', k);
      if (!(Number.isInteger(b) && b >= 0 && b < 10000)) bad++;
      counts[Math.floor(b / 1000)]++;
    }
    expect(bad).toBe(0);
    // Chi-square with 9 degrees of freedom; 27.9 is the 0.999 quantile.
    const expected = KEYS.length / 10;
    const chi2 = counts.reduce((acc, c) => acc + (c - expected) ** 2 / expected, 0);
    expect(chi2).toBeLessThan(27.9);
  });

  it.each([100, 500, 2000, 5000, 8000])(
    'canary fraction within 1%% of a share of %i bps over 100 000 keys',
    (bps) => {
      const never = () => {
        throw new Error('keyed requests must not use random()');
      };
      let canary = 0;
      for (const k of KEYS)
        if (assignTag({ canaryBps: bps, salt: 'rollout-1' }, k, never) === 'canary') canary++;
      expect(Math.abs(canary / KEYS.length - bps / 10000)).toBeLessThan(0.01);
    },
  );

  it('is sticky: the same key gets the same side while the share and salt are unchanged', () => {
    const state = { canaryBps: 2000, salt: 'rollout-1' };
    const first = KEYS.slice(0, 10_000).map((k) => assignTag(state, k, Math.random));
    for (let round = 0; round < 3; round++) {
      expect(KEYS.slice(0, 10_000).map((k) => assignTag(state, k, Math.random))).toEqual(first);
    }
  });

  it('is monotonic: when the share doubles, every canary key stays canary', () => {
    for (const [from, to] of [
      [100, 200],
      [500, 1000],
      [2500, 5000],
      [5000, 10000],
    ]) {
      let moved = 0;
      let lost = 0;
      for (const k of KEYS) {
        const before = assignTag({ canaryBps: from, salt: 'r' }, k, Math.random);
        const after = assignTag({ canaryBps: to, salt: 'r' }, k, Math.random);
        if (before === 'canary' && after !== 'canary') lost++;
        if (before === 'stable' && after === 'canary') moved++;
      }
      expect(lost).toBe(0);
      expect(Math.abs(moved / KEYS.length - (to - from) / 10000)).toBeLessThan(0.01);
    }
  });

  it('a new salt reshuffles: the overlap of two rollouts is about share², not share', () => {
    const bps = 2000;
    let both = 0;
    let first = 0;
    for (const k of KEYS) {
      const a = assignTag({ canaryBps: bps, salt: 'rollout-1' }, k, Math.random) === 'canary';
      const b = assignTag({ canaryBps: bps, salt: 'rollout-2' }, k, Math.random) === 'canary';
      if (a) first++;
      if (a && b) both++;
    }
    const overlap = both / KEYS.length;
    expect(Math.abs(overlap - 0.04)).toBeLessThan(0.005); // share² = 0.04; without a salt it would be 0.2
    expect(first).toBeGreaterThan(0);
  });

  it('keyless requests are assigned per request with random()', () => {
    const r = prng(7);
    let canary = 0;
    let calls = 0;
    const counting = () => {
      calls++;
      return r();
    };
    for (let i = 0; i < 100_000; i++)
      if (assignTag({ canaryBps: 500, salt: 's' }, undefined, counting) === 'canary') canary++;
    expect(calls).toBe(100_000);
    expect(Math.abs(canary / 100_000 - 0.05)).toBeLessThan(0.01);
    // An empty key is no key either.
    expect(assignTag({ canaryBps: 500, salt: 's' }, '', () => 0)).toBe('canary');
    expect(assignTag({ canaryBps: 500, salt: 's' }, '', () => 0.999)).toBe('stable');
  });

  it('edges: 0 bps is always stable, 10000 always canary, without calling random', () => {
    const never = () => {
      throw new Error('not expected');
    };
    expect(
      KEYS.slice(0, 1000).every((k) => assignTag({ canaryBps: 0, salt: 's' }, k, never) === 'stable'),
    ).toBe(true);
    expect(assignTag({ canaryBps: 0, salt: 's' }, undefined, never)).toBe('stable');
    expect(
      KEYS.slice(0, 1000).every((k) => assignTag({ canaryBps: 10000, salt: 's' }, k, never) === 'canary'),
    ).toBe(true);
    expect(assignTag({ canaryBps: 10000, salt: 's' }, undefined, never)).toBe('canary');
  });

  it('shouldShadow follows the rate', () => {
    const r = prng(3);
    let n = 0;
    for (let i = 0; i < 100_000; i++) if (shouldShadow(0.1, r)) n++;
    expect(Math.abs(n / 100_000 - 0.1)).toBeLessThan(0.01);
    expect(shouldShadow(0, () => 0)).toBe(false);
    expect(shouldShadow(1, () => 0.9999)).toBe(true);
  });
});
