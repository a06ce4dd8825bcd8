/**
 * Webhook gates: the POST of a rollout's state to a hook configured on the worker by name, signed like the
 * alert webhooks. A hook that does not answer in time, is busy (408, 429) or fails (5xx) throws, so
 * Temporal retries it by the activity's retry policy; any other answer is the hook's word: 2xx yes, the
 * rest no. Errors and answers name the hook, never its URL (they are stored in the workflow history), and
 * the body carries the rollout's state only: names, shares, phases, decisions, never a URL or a secret.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import { signatureHeaders } from '../src/control-plane/alerts/channels';
import { failureKind } from '../src/control-plane/gates/named-config';
import { excerpt } from '../src/control-plane/gates/sources/kind';
import { loadWebhookGates, type WebhookGates } from '../src/control-plane/gates/webhooks';
import { SOURCE_KINDS, type MetricSources } from '../src/control-plane/gates/sources';
import { logger } from '../src/logger';

export type HookType = 'gate' | 'pre-rollout' | 'confirm-promotion' | 'post-rollout' | 'rollback' | 'event';

/** What a hook is sent: which hook and why, and the rollout's state (plain JSON, no secrets). */
export interface HookPayload {
  hook: string;
  type: HookType;
  rollout: Record<string, unknown>;
  /** For `event` hooks: what happened. */
  event?: { kind: string } & Record<string, unknown>;
}

export interface HookAnswer {
  /** A 2xx answer: the rollout may go on (for a `rollback` hook: roll back). */
  ok: boolean;
  status: number;
  /** The start of the answer's body, for the status and the evidence. */
  answer: string;
}

export interface GateDeps {
  hooks?: WebhookGates;
  sources?: MetricSources;
}

export function createGateActivities(deps: GateDeps = {}) {
  const hooks = deps.hooks ?? loadWebhookGates();
  const sources = deps.sources ?? new Map();
  const names = (m: ReadonlyMap<string, unknown>) =>
    m.size ? [...m.keys()].map((n) => `'${n}'`).join(', ') : 'none configured';

  return {
    async callHook(payload: HookPayload): Promise<HookAnswer> {
      const hook = hooks.get(payload?.hook);
      if (!hook)
        throw ApplicationFailure.nonRetryable(
          `unknown webhook ${/[:/]/.test(String(payload?.hook)) ? '(a URL, not a hook name)' : `'${payload?.hook}'`}: ` +
            `this worker has ${names(hooks)} (WEBHOOK_GATES_FILE)`,
          'UnknownWebhook',
        );
      const body = JSON.stringify({ ...payload, sentAt: new Date().toISOString() });
      const info = activityInfo();
      let res: Response;
      let text: string;
      try {
        res = await fetch(hook.url, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            // One id per call, the same on every retry of it: a receiver can tell a retry from a new ask.
            'x-model-rollout-delivery': info.key,
            ...signatureHeaders(hook.secret, body),
          },
          body,
          redirect: 'manual',
          signal: AbortSignal.timeout(info.timeoutMs),
        });
        text = await res.text();
      } catch (err) {
        logger.warn(
          { hook: payload.hook, type: payload.type, attempt: info.attempt },
          'webhook did not answer',
        );
        throw new Error(`webhook '${payload.hook}' did not answer (${failureKind(err)})`);
      }
      if (res.status === 408 || res.status === 429 || res.status >= 500)
        throw new Error(`webhook '${payload.hook}' answered ${res.status}`);
      return { ok: res.status >= 200 && res.status < 300, status: res.status, answer: excerpt(text) };
    },

    /**
     * The named hooks and metric sources a rollout will call, checked once when it starts: the names this
     * worker does not have, and sources of another kind than the check's provider, as sentences.
     */
    async checkGateNames(req: {
      hooks: string[];
      sources: Array<{ name: string; type: string }>;
    }): Promise<string[]> {
      const problems: string[] = [];
      for (const name of new Set(req.hooks))
        if (!hooks.has(name))
          problems.push(
            `webhook '${name}' is not configured on the worker (it has ${names(hooks)}; WEBHOOK_GATES_FILE)`,
          );
      for (const { name, type } of req.sources) {
        const source = sources.get(name);
        if (!source)
          problems.push(
            `metric source '${name}' is not configured on the worker (it has ${names(sources)}; METRIC_SOURCES_FILE)`,
          );
        else if (source.type !== type)
          problems.push(`metric source '${name}' is a ${source.type} source, not ${type}`);
        else if (!SOURCE_KINDS.has(type)) problems.push(`no metric source kind '${type}'`);
      }
      return problems;
    },
  };
}

function activityInfo(): { key: string; attempt: number; timeoutMs: number } {
  try {
    const { info } = Context.current();
    return {
      key: `${info.workflowExecution?.runId ?? 'direct'}/${info.activityId}`,
      attempt: info.attempt,
      timeoutMs: Math.max(1, (info.startToCloseTimeoutMs ?? 10_000) - 50),
    };
  } catch {
    return { key: `direct-${Date.now()}`, attempt: 1, timeoutMs: 10_000 }; // outside an activity (a script)
  }
}
