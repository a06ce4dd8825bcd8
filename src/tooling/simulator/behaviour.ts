import type { Random } from './random';
import { ERROR_KINDS, type ErrorKind, type ModelBehaviour } from './scenario';

/** A behaviour with every field decided: what the dice are rolled against. */
export interface ResolvedBehaviour {
  latencyMs: { median: number; p99: number };
  errorRate: number;
  errorKinds: Partial<Record<ErrorKind, number>>;
  accuracy: number;
  outputTokens: number;
  streamChunkDelayMs: number;
  retryAfterSeconds: number;
  failFirst: number;
  contextWindowTokens: number | undefined;
  streamStallAfterChunks: number | undefined;
}

export const DEFAULT_BEHAVIOUR: ResolvedBehaviour = {
  latencyMs: { median: 5, p99: 20 },
  errorRate: 0,
  errorKinds: { server_error: 1 },
  accuracy: 0.9,
  outputTokens: 40,
  streamChunkDelayMs: 0,
  retryAfterSeconds: 1,
  failFirst: 0,
  contextWindowTokens: undefined,
  streamStallAfterChunks: undefined,
};

/**
 * Layers behaviours left to right over the built-in defaults (built-ins, then the scenario's default,
 * then the model's own), so a scenario can set latency once and vary only accuracy per model.
 */
export function resolveBehaviour(...layers: (ModelBehaviour | undefined)[]): ResolvedBehaviour {
  const resolved: ResolvedBehaviour = { ...DEFAULT_BEHAVIOUR };
  for (const layer of layers) {
    if (!layer) continue;
    if (layer.latencyMs) {
      // Without a p99, keep the default spread (p99 = 4 x median) rather than a fixed tail.
      const { median, p99 = median * 4 } = layer.latencyMs;
      resolved.latencyMs = { median, p99 };
    }
    if (layer.errorRate !== undefined) resolved.errorRate = layer.errorRate;
    if (layer.errorKinds) resolved.errorKinds = layer.errorKinds;
    if (layer.accuracy !== undefined) resolved.accuracy = layer.accuracy;
    if (layer.outputTokens !== undefined) resolved.outputTokens = layer.outputTokens;
    if (layer.streamChunkDelayMs !== undefined) resolved.streamChunkDelayMs = layer.streamChunkDelayMs;
    if (layer.retryAfterSeconds !== undefined) resolved.retryAfterSeconds = layer.retryAfterSeconds;
    if (layer.failFirst !== undefined) resolved.failFirst = layer.failFirst;
    if (layer.contextWindowTokens !== undefined) resolved.contextWindowTokens = layer.contextWindowTokens;
    if (layer.streamStallAfterChunks !== undefined)
      resolved.streamStallAfterChunks = layer.streamStallAfterChunks;
  }
  return resolved;
}

/** The outcome of one request, decided up front so the wire code only has to act it out. */
export interface RequestPlan {
  latencyMs: number;
  error: ErrorKind | null;
  /** Whether a known question gets its reference answer (irrelevant for unknown prompts). */
  correct: boolean;
}

// z(0.99) of the standard normal: for a lognormal, p99 / median = exp(sigma * 2.326).
const Z_99 = 2.3263;
const MAX_LATENCY_MS = 120_000;

/**
 * Rolls the dice for one request. The draws happen in a fixed order and always all happen, so with a
 * seed the answer correctness of request n does not depend on whether request n - 1 failed.
 */
export function planRequest(
  behaviour: ResolvedBehaviour,
  random: Random,
  requestNumber = Infinity,
): RequestPlan {
  const errorRoll = random.next();
  const kindRoll = random.next();
  const latencyRoll = random.normal();
  const correctRoll = random.next();
  const fails = requestNumber <= behaviour.failFirst || errorRoll < behaviour.errorRate;
  return {
    error: fails ? pickErrorKind(behaviour.errorKinds, kindRoll) : null,
    latencyMs: sampleLatency(behaviour.latencyMs, latencyRoll),
    correct: correctRoll < behaviour.accuracy,
  };
}

function sampleLatency({ median, p99 }: { median: number; p99: number }, z: number): number {
  if (median <= 0) return 0;
  const sigma = p99 > median ? Math.log(p99 / median) / Z_99 : 0;
  return Math.min(MAX_LATENCY_MS, median * Math.exp(sigma * z));
}

function pickErrorKind(weights: Partial<Record<ErrorKind, number>>, roll: number): ErrorKind {
  const total = ERROR_KINDS.reduce((sum, kind) => sum + (weights[kind] ?? 0), 0);
  if (total <= 0) return 'server_error';
  let threshold = roll * total;
  let lastWeighted: ErrorKind = 'server_error';
  for (const kind of ERROR_KINDS) {
    const weight = weights[kind] ?? 0;
    if (weight <= 0) continue;
    if (threshold < weight) return kind;
    threshold -= weight;
    lastWeighted = kind;
  }
  // Only reachable through floating-point rounding at the very top of the range.
  return lastWeighted;
}
