import crypto from 'node:crypto';
import type { ChatMessage } from '../providers/types';
import type { RouteState } from '../../store/routing-state';

/**
 * Which requests keep their prompt and answer (for scoring), and in what form.
 *
 * - `rollouts` (the default): a route under rollout (owned, a canary share or a shadow rate) captures, others
 *   do not. Scoring needs the text exactly while a rollout is deciding, and not otherwise.
 * - `all` / `off`: every request, or none.
 * Per-route modes override the default. Prompts are kept as sent (`full`), with emails, phone and card-like
 * numbers masked (`redact`), or as a hash only (`hash`: a judge then sees no question, only the answer).
 * Captured text is deleted after the retention period (`captureRetentionWorkflow`); events stay.
 */
export type CaptureMode = 'off' | 'rollouts' | 'all';
export type PromptCapture = 'full' | 'redact' | 'hash';

export interface CaptureOptions {
  /** Legacy switch: true is `mode: 'all'`, false is `mode: 'off'`. */
  enabled?: boolean;
  mode?: CaptureMode;
  /** Per-route modes, overriding `mode`. */
  routes?: Record<string, CaptureMode>;
  prompts?: PromptCapture;
}

export interface CapturePolicy {
  /** Whether a request on this route (in this routing state) keeps its text. */
  captures(route: string, state: RouteState | undefined): boolean;
  /** The prompt as stored. */
  prompt(messages: readonly ChatMessage[]): unknown;
}

export function capturePolicy(options: CaptureOptions | undefined): CapturePolicy {
  const mode: CaptureMode =
    options?.mode ?? (options?.enabled === true ? 'all' : options?.enabled === false ? 'off' : 'rollouts');
  const routes = options?.routes ?? {};
  const prompts = options?.prompts ?? 'full';
  return {
    captures(route, state) {
      const m = routes[route] ?? mode;
      if (m === 'all') return true;
      if (m === 'off' || !state) return false;
      return state.owner !== null || state.canaryBps > 0 || state.shadowRate > 0;
    },
    prompt(messages) {
      if (prompts === 'full') return messages;
      return messages.map((m) => ({
        role: m.role,
        content: prompts === 'hash' ? hashText(m.content) : redactText(m.content),
      }));
    },
  };
}

export function hashText(text: string): string {
  return `sha256:${crypto.createHash('sha256').update(text).digest('hex')}`;
}

const EMAIL = /[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}/g;
// Card-like and phone-like runs of digits (with spaces, dots or dashes between groups).
const LONG_NUMBER = /\+?\d(?:[\d .-]{6,}\d)/g;

/** Masks the personal data a prompt most often carries; what remains is still gradable text. */
export function redactText(text: string): string {
  return text.replace(EMAIL, '[email]').replace(LONG_NUMBER, '[number]');
}

/** `route=mode` pairs (CLI) into a per-route map; throws naming the bad pair. */
export function parseRouteModes(pairs: readonly string[]): Record<string, CaptureMode> {
  const out: Record<string, CaptureMode> = {};
  for (const pair of pairs) {
    const m = /^([^=]+)=(off|rollouts|all)$/.exec(pair.trim());
    if (!m) throw new Error(`expected ROUTE=off|rollouts|all, got "${pair}"`);
    out[m[1]] = m[2] as CaptureMode;
  }
  return out;
}
