import { describe, expect, it } from 'vitest';
import { pgSafeJson, pgSafeText } from '../../src/store/pg-text';

describe('text Postgres can store', () => {
  it('replaces NUL and lone surrogates with U+FFFD, keeps everything else', () => {
    expect(pgSafeText('plain')).toBe('plain');
    expect(pgSafeText('a\u0000b')).toBe('a\ufffdb');
    expect(pgSafeText('x\ud800y')).toBe('x\ufffdy');
    expect(pgSafeText('x\udc00y')).toBe('x\ufffdy');
    expect(pgSafeText('end\ud83d')).toBe('end\ufffd');
    expect(pgSafeText('😀 paired')).toBe('😀 paired');
    expect(pgSafeText('\udc00\ud800')).toBe('\ufffd\ufffd');
  });

  it('JSON: same rules inside strings at any depth, identical output otherwise', () => {
    const clean = [{ role: 'user', content: 'hi 😀', n: 1 }];
    expect(pgSafeJson(clean)).toBe(JSON.stringify(clean));
    expect(pgSafeJson([{ content: 'a\u0000b', deep: { x: ['\ud800'] } }])).toBe(
      '[{"content":"a\ufffdb","deep":{"x":["\ufffd"]}}]',
    );
    // A literal backslash-u sequence is text, not a NUL: kept.
    expect(JSON.parse(pgSafeJson({ t: '\\u0000' }))).toEqual({ t: '\\u0000' });
  });
});
