import { describe, expect, it } from 'vitest';
import { runPipeline } from '../../src/decision/scoring/pipeline';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('runPipeline', () => {
  it('keeps at most `concurrency` evaluations in flight and commits every result once, in small chunks', async () => {
    let inFlight = 0;
    let peak = 0;
    const chunks: number[][] = [];
    const items = Array.from({ length: 50 }, (_, i) => i);
    const done = await runPipeline({
      items,
      concurrency: 8,
      chunkSize: 5,
      async evaluate(item) {
        inFlight += 1;
        peak = Math.max(peak, inFlight);
        await sleep(5 + (item % 3));
        inFlight -= 1;
        return item * 2;
      },
      async commit(results) {
        chunks.push(results.map((r) => r.item));
      },
    });
    expect(peak).toBe(8);
    expect(done).toEqual({ started: 50, committed: 50, remaining: 0 });
    expect(chunks.every((c) => c.length <= 5)).toBe(true);
    expect(chunks.flat().sort((a, b) => a - b)).toEqual(items);
  });

  it('commits a partial chunk after flushMs, so slow evaluations still reach the database as they finish', async () => {
    const commits: number[] = [];
    const run = runPipeline({
      items: [1, 2],
      concurrency: 1,
      chunkSize: 100,
      flushMs: 20,
      async evaluate(item) {
        await sleep(item === 1 ? 1 : 200);
        return item;
      },
      async commit(results) {
        commits.push(...results.map((r) => r.item));
      },
    });
    await sleep(120);
    expect(commits).toEqual([1]); // committed while item 2 was still being judged
    await run;
    expect(commits).toEqual([1, 2]);
  });

  it('starts nothing new after the deadline, when mayStart says no, or once cancelled', async () => {
    let started = 0;
    const byDeadline = await runPipeline({
      items: [1, 2, 3, 4],
      concurrency: 1,
      deadlineMs: Date.now() + 30,
      async evaluate(item) {
        started += 1;
        await sleep(20);
        return item;
      },
      async commit() {},
    });
    expect(byDeadline.remaining).toBeGreaterThan(0);
    expect(byDeadline.started).toBe(started);

    const budget = await runPipeline({
      items: [1, 2, 3, 4],
      concurrency: 1,
      mayStart: () => budgetUsed < 2,
      async evaluate(item) {
        budgetUsed += 1;
        return item;
      },
      async commit() {},
    });
    expect(budget).toMatchObject({ started: 2, remaining: 2 });

    const controller = new AbortController();
    const committed: number[] = [];
    const cancelled = runPipeline({
      items: [1, 2, 3, 4],
      concurrency: 2,
      signal: controller.signal,
      async evaluate(item, signal) {
        await sleep(30);
        return signal.aborted ? -1 : item;
      },
      async commit(results) {
        committed.push(...results.map((r) => r.result));
      },
    });
    setTimeout(() => controller.abort(), 10);
    const after = await cancelled;
    expect(after.started).toBe(2);
    expect(committed).toEqual([]); // an aborted attempt's in-flight results are left to its retry
  });

  it('reports progress after each commit and fails the run when a commit fails', async () => {
    const progress: number[] = [];
    await runPipeline({
      items: [1, 2, 3],
      concurrency: 1,
      chunkSize: 1,
      evaluate: async (i) => i,
      commit: async () => {},
      progress: (p) => progress.push(p.committed),
    });
    expect(progress).toEqual([1, 2, 3]);
    await expect(
      runPipeline({
        items: [1, 2, 3],
        concurrency: 1,
        chunkSize: 1,
        evaluate: async (i) => i,
        commit: async () => {
          throw new Error('database gone');
        },
      }),
    ).rejects.toThrow('database gone');
  });
});

let budgetUsed = 0;
