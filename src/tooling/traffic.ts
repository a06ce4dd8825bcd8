import type { Router } from '../data-plane/router/router';
import { loadQuestions, type Question } from '../decision/scoring/reference-set/questions';

/**
 * A steady stream of requests from the bundled question set through a router, as a live application would
 * send them: many users (routing keys), each question carrying its reference id so answers can be graded.
 * Used by the demo and by the control-plane tests.
 */
export interface TrafficOptions {
  router: Router;
  route: string;
  /** Requests started per second. */
  ratePerSec: number;
  /** Distinct routing keys (users). */
  users?: number;
  /** Requests in flight at most; beyond that, ticks are skipped (and counted). */
  maxInFlight?: number;
  /**
   * Open prompts to send instead of the question set (no reference id: as production traffic, only a
   * judge or the team's evaluators can score the answers).
   */
  prompts?: readonly string[];
  random?: () => number;
}

export interface TrafficStats {
  sent: number;
  ok: number;
  failed: number;
  skipped: number;
  byTag: Record<string, number>;
  byTarget: Record<string, number>;
  errors: Record<string, number>;
}

export interface Traffic {
  stats(): TrafficStats;
  /** Resets the counters (e.g. between demo acts) and returns the old ones. */
  reset(): TrafficStats;
  stop(): Promise<TrafficStats>;
}

export function startTraffic(options: TrafficOptions): Traffic {
  const questions: readonly Question[] = loadQuestions();
  const random = options.random ?? Math.random;
  const users = options.users ?? 500;
  const maxInFlight = options.maxInFlight ?? 64;
  const fresh = (): TrafficStats => ({
    sent: 0,
    ok: 0,
    failed: 0,
    skipped: 0,
    byTag: {},
    byTarget: {},
    errors: {},
  });
  let stats = fresh();
  let inFlight = 0;
  const pending = new Set<Promise<void>>();
  const bump = (map: Record<string, number>, key: string) => (map[key] = (map[key] ?? 0) + 1);

  const fire = () => {
    if (inFlight >= maxInFlight) {
      stats.skipped += 1;
      return;
    }
    const open = options.prompts?.length
      ? options.prompts[Math.floor(random() * options.prompts.length)]
      : undefined;
    const question = questions[Math.floor(random() * questions.length)];
    const key = `user-${Math.floor(random() * users)}`;
    const counted = stats;
    counted.sent += 1;
    inFlight += 1;
    const call = options.router
      .complete(options.route, {
        key,
        referenceId: open === undefined ? question.id : undefined,
        messages: [{ role: 'user', content: open ?? question.prompt }],
        params: open === undefined && question.kind === 'json' ? { json: true } : undefined,
      })
      .then(
        (result) => {
          counted.ok += 1;
          bump(counted.byTag, result.tag);
          bump(counted.byTarget, result.target);
        },
        (err: { errorClass?: string; message?: string }) => {
          counted.failed += 1;
          bump(counted.errors, err.errorClass ?? err.message ?? 'error');
        },
      )
      .finally(() => {
        inFlight -= 1;
        pending.delete(call);
      });
    pending.add(call);
  };

  // A fixed tick with a per-tick quota keeps the rate right even when the timer is late.
  const started = Date.now();
  let fired = 0;
  const timer = setInterval(() => {
    const due = Math.floor(((Date.now() - started) / 1000) * options.ratePerSec);
    while (fired < due) {
      fired += 1;
      fire();
    }
  }, 20);

  return {
    stats: () => stats,
    reset() {
      const old = stats;
      stats = fresh();
      return old;
    },
    async stop() {
      clearInterval(timer);
      await Promise.allSettled([...pending]);
      return stats;
    },
  };
}
