import type pg from 'pg';
import { createPartitionsAhead, deleteExpiredRollups, dropExpiredPartitions } from '../src/store/partitions';

export interface RetentionDeps {
  pool: pg.Pool;
}

export interface PurgeRequest {
  /** Captured text older than this is deleted, milliseconds. */
  retentionMs: number;
  /** Rows per statement, so one purge never holds a long transaction on a busy table. */
  batchSize?: number;
}

export interface EventRetentionRequest {
  /** Raw events (and shadow comparisons) are dropped a whole day at a time once past this, milliseconds. */
  eventRetentionMs: number;
  /** Per-minute rollups (what decisions read) are deleted past this, milliseconds. */
  rollupRetentionMs: number;
  /** Daily partitions created ahead of today. */
  partitionsAhead: number;
}

/**
 * Deletes captured prompts and answers (and feedback comments) past the retention period. The events
 * themselves stay: their numbers (latency, errors, cost, scores) are the rollouts' evidence and audit.
 */
export function createRetentionActivities(deps: RetentionDeps) {
  const { pool } = deps;
  return {
    /** Creates the days ahead, drops the days past the event retention, deletes expired rollups. */
    async maintainEventPartitions(
      req: EventRetentionRequest,
    ): Promise<{ created: number; dropped: string[]; rollupsDeleted: number }> {
      const created = await createPartitionsAhead(pool, req.partitionsAhead);
      const dropped = await dropExpiredPartitions(pool, req.eventRetentionMs);
      const rollupsDeleted = await deleteExpiredRollups(pool, req.rollupRetentionMs);
      return { created, dropped, rollupsDeleted };
    },

    async purgeCapturedText(req: PurgeRequest): Promise<{ events: number; feedback: number }> {
      const batch = req.batchSize ?? 5_000;
      let events = 0;
      for (;;) {
        const { rowCount } = await pool.query(
          `UPDATE request_events SET prompt = NULL, answer = NULL, tool_calls = NULL
            WHERE (id, created_at) IN (SELECT id, created_at FROM request_events
                          WHERE (prompt IS NOT NULL OR answer IS NOT NULL OR tool_calls IS NOT NULL)
                            AND created_at < now() - make_interval(secs => $1::float8 / 1000)
                          LIMIT $2)`,
          [req.retentionMs, batch],
        );
        events += rowCount ?? 0;
        if ((rowCount ?? 0) < batch) break;
      }
      const fb = await pool.query(
        `UPDATE feedback SET comment = NULL
          WHERE comment IS NOT NULL AND created_at < now() - make_interval(secs => $1::float8 / 1000)`,
        [req.retentionMs],
      );
      return { events, feedback: fb.rowCount ?? 0 };
    },
  };
}
