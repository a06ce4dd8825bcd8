import type pg from 'pg';
import { createScoringActivities } from '../../../activities/scoring';

/** One act of the demo: a time window on the route. */
export interface ActWindow {
  number: number;
  title: string;
  fromMs: number;
  toMs: number;
  outcome?: string;
  manualRollbackMs?: number;
}

export interface ActSummary extends ActWindow {
  requests: number;
  errors: number;
  quality: Record<'stable' | 'canary' | 'shadow', number | null>;
  decisions: number;
  rollbacks: number;
  /** From the decision (or command) to roll back until the routing changed, in ms. */
  timeToRollbackMs: number | null;
}

/** The demo's closing table, computed from the database (after grading every captured answer). */
export async function summarizeActs(pool: pg.Pool, route: string, acts: ActWindow[]): Promise<ActSummary[]> {
  if (acts.length === 0) return [];
  const scoring = createScoringActivities({ pool });
  while ((await scoring.scoreAnswers({ route, fromMs: acts[0].fromMs, limit: 5000 })).scored > 0) {
    // grade everything the acts captured, in bounded batches
  }
  const out: ActSummary[] = [];
  for (const act of acts) {
    const window = [route, act.fromMs, act.toMs];
    const served = await pool.query<{ requests: number; errors: number }>(
      `SELECT count(*)::int AS requests, count(*) FILTER (WHERE error_class IS NOT NULL)::int AS errors
         FROM request_events WHERE route = $1 AND tag IN ('stable', 'canary')
          AND created_at >= to_timestamp($2::float8 / 1000) AND created_at < to_timestamp($3::float8 / 1000)`,
      window,
    );
    const quality = await pool.query<{ tag: 'stable' | 'canary' | 'shadow'; mean: number | null }>(
      `SELECT tag, avg(quality_score)::float8 AS mean FROM request_events
        WHERE route = $1 AND created_at >= to_timestamp($2::float8 / 1000) AND created_at < to_timestamp($3::float8 / 1000)
        GROUP BY tag`,
      window,
    );
    const decisions = await pool.query<{ n: number; rollbacks: number; first_rollback: Date | null }>(
      `SELECT count(*)::int AS n, count(*) FILTER (WHERE action = 'rollback')::int AS rollbacks,
              min(created_at) FILTER (WHERE action = 'rollback') AS first_rollback
         FROM rollout_decisions WHERE route = $1
          AND created_at >= to_timestamp($2::float8 / 1000) AND created_at < to_timestamp($3::float8 / 1000)`,
      window,
    );
    const restored = await pool.query<{ at: Date | null }>(
      `SELECT min(created_at) AS at FROM routing_changes
        WHERE route = $1 AND created_at >= $2 AND (after->>'canaryBps')::int = 0 AND (before->>'canaryBps')::int > 0`,
      [route, decisions.rows[0].first_rollback ?? new Date(8.64e15)],
    );
    const firstRollback = decisions.rows[0].first_rollback;
    const mean = (tag: string) => quality.rows.find((r) => r.tag === tag)?.mean ?? null;
    out.push({
      ...act,
      requests: served.rows[0].requests,
      errors: served.rows[0].errors,
      quality: { stable: mean('stable'), canary: mean('canary'), shadow: mean('shadow') },
      decisions: decisions.rows[0].n,
      rollbacks: decisions.rows[0].rollbacks,
      timeToRollbackMs:
        act.manualRollbackMs ??
        (firstRollback && restored.rows[0].at
          ? restored.rows[0].at.getTime() - firstRollback.getTime()
          : null),
    });
  }
  return out;
}

export function formatSummary(acts: ActSummary[]): string {
  // Scores are on [0, 1]: shown as a share of the best grade, which reads without knowing the scale.
  const q = (x: number | null) => (x === null ? '  -' : `${Math.round(x * 100)}%`);
  const header = [
    'act',
    'requests',
    'errors',
    'quality stable',
    'canary',
    'shadow',
    'decisions',
    'time to rollback',
    'what happened',
  ];
  const rows = acts.map((a) => [
    String(a.number),
    String(a.requests),
    String(a.errors),
    q(a.quality.stable),
    q(a.quality.canary),
    q(a.quality.shadow),
    a.rollbacks ? `${a.decisions} (${a.rollbacks} rollback)` : String(a.decisions),
    a.timeToRollbackMs === null ? '-' : `${a.timeToRollbackMs} ms`,
    a.outcome ? `${a.title} -> ${a.outcome.split(':')[0]}` : a.title,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join('  ');
  return [
    'Summary (from the database; quality is the mean reference grade, 100% = every answer right):',
    line(header),
    line(widths.map((w) => '-'.repeat(w))),
    ...rows.map(line),
  ].join('\n');
}
