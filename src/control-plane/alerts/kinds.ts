/**
 * Which alerts go to which named channels (pure: the workflows import it). A spec names channels, each for
 * every kind of alert or for some kinds only; the URLs behind the names live on the worker
 * (`src/control-plane/alerts/channels.ts`).
 */
export const ALERT_KINDS = [
  'rollback',
  'promotion',
  'trigger',
  'pause',
  'resume',
  'completed',
  'approval-needed',
  'hold',
  'no-quality-evidence',
  /** A progress deadline or an approval timeout passed, and what was done about it. */
  'deadline',
  /** A metric check failed, or has been inconclusive (its source unreachable) for `holdAfter`. */
  'analysis',
  /** A webhook gate refused, or did not answer, and the rollout holds or rolls back. */
  'webhook',
] as const;

export type AlertKind = (typeof ALERT_KINDS)[number];

export interface AlertChannelRef {
  name: string;
  /** Only these kinds; every kind when absent. */
  kinds?: AlertKind[];
}

/** The names of the channels that want this kind of alert, each once. */
export function channelsFor(refs: readonly AlertChannelRef[] | undefined, kind: AlertKind): string[] {
  const names = (refs ?? []).filter((r) => !r.kinds || r.kinds.includes(kind)).map((r) => r.name);
  return [...new Set(names)];
}
