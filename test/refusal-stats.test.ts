/**
 * Refusals and attempts in the arm statistics (issue 19, findings 1 and 11), from the rollups and from the
 * raw events alike: refusals counted per arm and per kind, beside the requests (never errors or latency);
 * hang-ups left out on both arms; provider attempts and the failed ones summed over the served requests.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { armStats } from '../src/store/arm-statistics';
import { armStatsRaw } from '../src/store/arm-statistics-raw';
import { createEventWriter, type RequestEvent } from '../src/store/event-writer';
import { createTestDatabase, type TestDatabase } from './helpers/db';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.close();
});

const ROUTE = 'refusal-stats';
const MINUTE = 60_000;
/** A window of whole minutes plus partial first and last minutes, ended in the past. */
const FROM = Math.floor(Date.now() / MINUTE) * MINUTE - 30 * MINUTE + 20_000;
const TO = FROM + 20 * MINUTE;

let n = 0;
function event(tag: 'stable' | 'canary', at: number, over: Partial<RequestEvent> = {}): RequestEvent {
  n++;
  return {
    requestId: `rs-${n}`,
    route: ROUTE,
    tag,
    target: tag === 'stable' ? 'openai:stable' : 'openai:candidate',
    latencyMs: 300,
    createdAt: new Date(at),
    ...over,
  };
}

describe('refusals and attempts per arm', () => {
  it('the rollups and the raw events agree; hang-ups are out, refusals beside the requests', async () => {
    const writer = createEventWriter({ pool: db.pool, flushIntervalMs: 10 });
    // Spread over the window: the first and last few in its partial minutes, read from the raw events.
    const times = [FROM + 1_000, FROM + 5 * MINUTE, FROM + 12 * MINUTE, TO - 2_000];
    for (const at of times) {
      writer.record(event('canary', at)); // served, one attempt
      writer.record(event('canary', at, { attempts: 3, attemptErrors: 2 })); // two failed, the third answered
      writer.record(event('canary', at, { errorClass: 'server_error', attempts: 3, attemptErrors: 3 }));
      writer.record(event('canary', at, { errorClass: 'refused_unsupported_parameter', latencyMs: 40 }));
      writer.record(event('canary', at, { errorClass: 'refused_unsupported_parameter', latencyMs: 40 }));
      writer.record(event('canary', at, { errorClass: 'refused_bad_request', latencyMs: 40 }));
      writer.record(event('canary', at, { errorClass: 'client_cancelled', latencyMs: 90_000 }));
      writer.record(event('stable', at));
      writer.record(event('stable', at));
      // Written before refusals were told apart: still a refusal.
      writer.record(event('stable', at, { errorClass: 'client_bad_request' }));
      writer.record(event('stable', at, { errorClass: 'client_timeout', latencyMs: 30_000 }));
    }
    await writer.flush();
    await writer.close();

    const q = { route: ROUTE, fromMs: FROM, toMs: TO, slowThresholdMs: 1000 };
    const canary = await armStats(db.pool, { ...q, tag: 'canary' });
    const rawCanary = await armStatsRaw(db.pool, { ...q, tag: 'canary' });
    expect(canary).toMatchObject({
      requests: 12,
      errors: 4,
      slow: 0, // the hang-ups' 90 s are not a latency sample, nor are the refusals' 40 ms
      refusals: 12,
      refusalKinds: { unsupported_parameter: 8, bad_request: 4 },
      attempts: 28,
      attemptErrors: 20,
    });
    expect(rawCanary).toMatchObject({
      requests: canary.requests,
      errors: canary.errors,
      slow: canary.slow,
      refusals: canary.refusals,
      refusalKinds: canary.refusalKinds,
      attempts: canary.attempts,
      attemptErrors: canary.attemptErrors,
    });
    // The p95 is of served requests only (300 ms; the histogram's bucket edge is at most 7.2% above).
    expect(rawCanary.p95LatencyMs).toBe(300);
    expect(canary.p95LatencyMs).toBeGreaterThanOrEqual(300);
    expect(canary.p95LatencyMs).toBeLessThan(300 * 1.073);

    const stable = await armStats(db.pool, { ...q, tag: 'stable' });
    const rawStable = await armStatsRaw(db.pool, { ...q, tag: 'stable' });
    expect(stable).toMatchObject({
      requests: 8,
      errors: 0,
      refusals: 4,
      refusalKinds: { bad_request: 4 },
      attempts: 8,
      attemptErrors: 0,
    });
    expect(rawStable).toMatchObject({ requests: 8, errors: 0, refusals: 4, attempts: 8, attemptErrors: 0 });
  });
});
