import type pg from 'pg';
import { pgSafeText } from '../../store/pg-text';
import { GatewayError } from './errors';
import type { ServedReceipts } from './receipts';
import type { FeedbackBody } from './schema';

/**
 * User feedback is evidence a rollout acts on, so it is accepted only from whoever was served: for a request
 * the gateway answered to the same API key (request ids are the gateway's own, so a client cannot aim at
 * another's), within a window after the answer, and once per request; a change is an explicit update
 * (`PUT /v1/feedback`). Another key's request and a request never served get the same 404, so a key learns
 * nothing about requests that are not its own. A stable request outside the event sample has no row: it is
 * found by its receipt (see receipts.ts) while this replica still holds one.
 */
export const DEFAULT_FEEDBACK_WINDOW_MS = 24 * 60 * 60 * 1000;

export interface FeedbackStore {
  pool: pg.Pool;
  /** How long after the answer feedback is taken. */
  windowMs: number;
  /** Writes the events recorded so far (a feedback may arrive before its request's event is stored). */
  flush: () => Promise<void>;
  /** Receipts of recently served stable requests (whose events may not be rows). */
  receipts?: ServedReceipts;
}

export interface StoredFeedback {
  object: 'feedback';
  id: number;
  request_id: string;
}

const SERVED = `
  SELECT (created_at >= now() - $2::float8 * interval '1 millisecond') AS in_window,
         caller IS NOT DISTINCT FROM $3::text AS same_caller
    FROM request_events
   WHERE request_id = $1 AND tag <> 'shadow'
   ORDER BY id
   LIMIT 1`;

const CREATE = `
  INSERT INTO feedback (request_id, score, thumbs, comment, caller) VALUES ($1, $2, $3, $4, $5)
  ON CONFLICT (request_id) DO NOTHING
  RETURNING id`;

const UPDATE = `
  INSERT INTO feedback (request_id, score, thumbs, comment, caller) VALUES ($1, $2, $3, $4, $5)
  ON CONFLICT (request_id) DO UPDATE
     SET score = EXCLUDED.score, thumbs = EXCLUDED.thumbs, comment = EXCLUDED.comment, updated_at = now()
   WHERE feedback.caller IS NOT DISTINCT FROM EXCLUDED.caller
  RETURNING id`;

/** Stores feedback from `caller` (the key's name; null without keys), or throws the GatewayError to send. */
export async function storeFeedback(
  store: FeedbackStore,
  fb: FeedbackBody,
  caller: string | null,
  mode: 'create' | 'update',
): Promise<StoredFeedback> {
  // A NUL in a request id matches nothing (ids never hold one); in a comment it is kept as U+FFFD.
  const requestId = pgSafeText(fb.request_id);
  const served = async () =>
    (
      await store.pool.query<{ in_window: boolean; same_caller: boolean }>(SERVED, [
        requestId,
        store.windowMs,
        caller,
      ])
    ).rows[0];
  let row = await served();
  // No row: a stable request outside the sample, known by its receipt (the row, when there is one, is what
  // counts: it is what every replica sees).
  const receipt = row ? undefined : store.receipts?.get(fb.request_id);
  if (receipt)
    row = { in_window: Date.now() - receipt.at <= store.windowMs, same_caller: receipt.caller === caller };
  if (!row) {
    // Its event may still be in this replica's write buffer (feedback right after the answer).
    await Promise.race([store.flush(), new Promise((resolve) => setTimeout(resolve, 2000).unref())]);
    row = await served();
  }
  if (!row || !row.same_caller) {
    throw new GatewayError(
      404,
      'invalid_request_error',
      'request_not_found',
      'request_id: no request with this id was served to this API key (or it was a stable request outside ' +
        'the event sample, served by another gateway replica or too long ago for this one to hold its receipt)',
      'request_id',
    );
  }
  if (!row.in_window) {
    throw new GatewayError(
      400,
      'invalid_request_error',
      'feedback_window_closed',
      `request_id: feedback is taken within ${Math.round(store.windowMs / 60_000)} minutes of the answer`,
      'request_id',
    );
  }
  const { rows } = await store.pool.query<{ id: string }>(mode === 'create' ? CREATE : UPDATE, [
    requestId,
    fb.score ?? null,
    fb.thumbs ?? null,
    fb.comment === undefined ? null : pgSafeText(fb.comment),
    caller,
  ]);
  if (rows.length === 0) {
    throw new GatewayError(
      409,
      'invalid_request_error',
      'feedback_exists',
      'request_id: this request already has feedback; send PUT /v1/feedback to change it',
      'request_id',
    );
  }
  return { object: 'feedback', id: Number(rows[0].id), request_id: fb.request_id };
}
