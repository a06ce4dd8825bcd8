import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Worker } from '@temporalio/worker';
import { workflowBundle } from '../src/control-plane/temporal/worker';

/**
 * Determinism guard: histories of real runs, one per story (test/fixtures/histories, written by
 * test/rollout-stories.test.ts with RECORD_HISTORIES=1), must replay against the current workflow code. A
 * change that fails here would break running rollouts: follow workflows/VERSIONING.md.
 */
const FIXTURES = path.join(__dirname, 'fixtures', 'histories');

describe('workflow replay', () => {
  const files = fs.existsSync(FIXTURES) ? fs.readdirSync(FIXTURES).filter((f) => f.endsWith('.json')) : [];

  it('has recorded histories to replay', () => {
    expect(files.length).toBeGreaterThanOrEqual(3);
  });

  it.each(files)(
    'replays %s without nondeterminism',
    async (file) => {
      const history = JSON.parse(fs.readFileSync(path.join(FIXTURES, file), 'utf8'));
      await Worker.runReplayHistory(
        { workflowBundle: await workflowBundle() },
        history,
        file.replace(/\.json$/, ''),
      );
    },
    60_000,
  );
});
