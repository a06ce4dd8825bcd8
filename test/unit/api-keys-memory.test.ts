/**
 * The README says gateway keys are held as SHA-256 digests only: after keys are presented (valid and not),
 * no presented key may remain in the process's heap in plain text (a heap snapshot or core dump would give
 * working keys). Runs in a small child process with --expose-gc so the snapshot is quick.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const HERE = path.dirname(fileURLToPath(import.meta.url));

it('a key store holds no presented key in plain text once the requests are gone', () => {
  const child = spawnSync(
    process.execPath,
    ['--expose-gc', '--import', 'tsx', path.join(HERE, '..', 'helpers', 'api-key-heap.ts')],
    { encoding: 'utf8', timeout: 60_000 },
  );
  expect(child.status, child.stderr).toBe(0);
  const result = JSON.parse(child.stdout.trim().split('\n').pop()!);
  // The five valid keys were recognised, and nothing of the 505 presented keys is left in the heap.
  expect(result).toEqual({ found: 5, held: 0, keys: 5 });
});
